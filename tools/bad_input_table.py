"""Issue 12's closing table, measured: every case of tests/test_bad_input.py with its exit code and message before
and after the fixes, and the count of cases that were tracebacks, silent or misleading.

Run from the repository root (takes several minutes; keep CPU modest):

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 CROSSMODAL_COURSE_PROGRESS=0 nice -n 10 /work/main/.venv/bin/python tools/bad_input_table.py

(any Python of the project's virtual environment; the console script is taken from next to it, as the tests do).

Options: `--before REV` (default `dadb8b5^`, the parent of the commit that made the fixes), `--cap S` (kill a
console-script call after S seconds, default 150), `-k EXPR` (only the tests pytest's -k selects), `--keep`.
The markdown goes to stdout and to benchmarks/results/bad_input_table.md (ignored by git).

How it measures:
* "before" is REV checked out in a temporary git worktree (removed at the end); "after" is this working tree.
* The CURRENT tests/test_bad_input.py runs twice under pytest, the same cases both times. Its `assert`s are
  rewritten into soft checks (tools/bad_input_plugin.py records each failure and goes on), so a case that fails
  does not hide the cases after it in the same test; a test with a failed check still fails.
* The pytest process itself always imports this tree (the tests' fixture writers); only the console-script
  subprocesses are pointed at the tree under test, by PYTHONPATH plus a generated `sitecustomize` that removes the
  editable install's finder (without that, modules missing from the old tree were imported from the editable
  install) and writes, at exit, which `crossmodal_course` files the subprocess imported: every call is checked to
  have run only the intended tree's code. "before" subprocesses get a private cache folder.
* A case is one `fails(r, ...)` call of a test, or a whole test that has none (its case call is the first call
  after the setup calls named in SETUP_CALLS). Its kind, per side: `ok` (every check of the case passed),
  `traceback` ('Traceback' on stderr), `silent` (exit 0 where the test expects an error, a count or another
  result; or still running at the cap and killed), `option missing` (argparse: the option or command did not
  exist), `misleading` (any other non-zero exit: a message the test's checks reject), `not run` (the test stopped
  before reaching it).
"""
import argparse, ast, json, os, re, shlex, shutil, subprocess, sys, tempfile, time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "test_bad_input.py"
OUT = REPO / "benchmarks" / "results" / "bad_input_table.md"
# tests without a `fails(...)` call: how many console-script calls prepare the case before the case call itself
SETUP_CALLS = {"test_corrupt_cache_is_rebuilt_with_one_warning": 1, "test_orphan_temporary_files_are_cleaned_and_modes_normal": 1,
               "test_utf16_token_file_is_read": 1}
KINDS = ["ok", "traceback", "silent", "misleading", "option missing", "not run"]

SHIM = '''import atexit, json, os, sys
_ED = "__editable___crossmodal_course"
sys.meta_path[:] = [f for f in sys.meta_path if _ED not in str(getattr(f, "__module__", ""))]
sys.path_hooks[:] = [h for h in sys.path_hooks if _ED not in str(getattr(h, "__module__", ""))]
sys.path_importer_cache.clear()
def _dump():
    d = os.environ.get("BAD_INPUT_MODLOG")
    if not d: return
    files = sorted({str(getattr(m, "__file__", None)) for n, m in list(sys.modules.items())
                    if n == "crossmodal_course" or n.startswith("crossmodal_course.")})
    with open(os.path.join(d, f"{os.getpid()}.json"), "w") as f: json.dump(files, f)
atexit.register(_dump)
'''

def soft_copy(src: str) -> str:
    "The test module with every `assert test, msg` turned into `_soft_check(line, source, lambda: test, lambda: msg)`."
    tree = ast.parse(src)
    class Soft(ast.NodeTransformer):
        def visit_Assert(self, node):
            lam = lambda body: ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                                          body=body)
            call = ast.Call(func=ast.Name("_soft_check", ast.Load()),
                            args=[ast.Constant(node.lineno), ast.Constant(ast.get_source_segment(src, node.test)),
                                  lam(node.test), lam(node.msg) if node.msg else ast.Constant(None)], keywords=[])
            return ast.copy_location(ast.Expr(call), node)
    tree = Soft().visit(tree)
    tree.body.insert(1, ast.ImportFrom("bad_input_plugin", [ast.alias("soft_check", "_soft_check")], 0))
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"

def run_side(mode: str, tree: Path, work: Path, cap: float, select) -> dict:
    d = work / mode
    for sub in ("tests", "modlog", "cache", "shim"): (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "shim" / "sitecustomize.py").write_text(SHIM)
    (d / "tests" / "test_bad_input.py").write_text(soft_copy(TESTS.read_text()))
    (d / "tests" / "pytest.ini").write_text("[pytest]\n")
    log = d / "events.jsonl"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(d / "shim"), str(REPO / "tools"), str(REPO)]),
                        "OMP_NUM_THREADS": "1", "CROSSMODAL_COURSE_PROGRESS": "0", "BAD_INPUT_MODE": mode,
                        "BAD_INPUT_TREE": str(tree), "BAD_INPUT_SHIM": str(d / "shim"), "BAD_INPUT_LOG": str(log),
                        "BAD_INPUT_MODLOG": str(d / "modlog"), "BAD_INPUT_CACHE": str(d / "cache"),
                        "BAD_INPUT_CAP": str(cap)}
    cmd = ["nice", "-n", "10", sys.executable, "-m", "pytest", "-q", "-p", "bad_input_plugin", "-p", "no:cacheprovider",
           "-c", str(d / "tests" / "pytest.ini"), "--rootdir", str(d / "tests"), "--basetemp", str(d / "t"),
           str(d / "tests" / "test_bad_input.py")] + (["-k", select] if select else [])
    t0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=d / "tests")
    secs = time.time() - t0
    events = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    summary = (p.stdout.strip().splitlines() or [""])[-1]
    return {"mode": mode, "tree": tree, "events": events, "seconds": secs, "pytest_rc": p.returncode, "summary": summary,
            "basetemp": d / "t", "cache": d / "cache", "stdout": p.stdout, "stderr": p.stderr}

def cases(side: dict) -> dict:
    "{(test, k): case} with k the number of the `fails` call, or 0 for a test without one."
    ev = side["events"]
    by_test = {}
    for e in ev: by_test.setdefault(e["test"], []).append(e)
    out = {}
    for test, es in by_test.items():
        base = test.split("[")[0]
        failed = [e for e in es if e["type"] == "assert"]
        exc = [e for e in es if e["type"] == "exception" and not e["error"].startswith("AssertionError: soft assertions")]
        fcases = [e for e in es if e["type"] == "case"]
        outcome = next((e["outcome"] for e in es if e["type"] == "outcome" and e["when"] == "call"), "error")
        if fcases:
            calls = [e for e in es if e["type"] == "call"]
            for c in fcases:
                k = c["case"]
                # the call that `fails` was given: the last one made since the previous case, with the same arguments
                made = [e for e in calls if e["case"] == k - 1 and e["args"] == c["args"] and e["returncode"] == c["returncode"]]
                if made: c = c | {"killed": made[-1]["killed"], "seconds": made[-1]["seconds"]}
                out[(test, k)] = {"rec": c, "failed": [a for a in failed if max(a["case"], 1) == k],
                                  "exc": [x for x in exc if x["case"] == k], "outcome": outcome}
        else:
            n = SETUP_CALLS.get(base, 0) + 1
            rec = next((e for e in es if e["type"] == "call" and e["n"] == n), None)
            out[(test, 0)] = {"rec": rec, "failed": failed, "exc": exc, "outcome": outcome}
    return out

def kind(c) -> str:
    r = c and c["rec"]
    if not r: return "not run"
    if r.get("killed"): return "silent"
    if r["traceback"]: return "traceback"
    if not c["failed"] and not c["exc"]: return "ok"
    last = r["stderr_last"] + " " + r["stderr_first"]
    if r["returncode"] == 2 and ("unrecognized arguments" in last or "invalid choice" in last): return "option missing"
    return "silent" if r["returncode"] == 0 else "misleading"

def shorten(s: str, side: dict, n: int = 120) -> str:
    for path, name in [(side["basetemp"], "<tmp>"), (side["cache"], "<cache>"), (side["tree"], "<tree>"),
                       (Path(sys.executable).parent, "<venv>/bin")]:
        s = s.replace(str(path), name)
    s = re.sub(r"<tmp>/[^/ ]+?\d+/", "<tmp>/", s).replace("|", "\\|").replace("`", "'").replace("\n", " ⏎ ")
    return s if len(s) <= n else s[:n - 1] + "…"

def cell(c, side) -> tuple:
    k = kind(c)
    if k == "not run": return "-", k, "(test stopped earlier: " + shorten("; ".join(x["error"] for x in c["exc"]) if c and c["exc"] else "not reached") + ")"
    r = c["rec"]
    line = r["stderr_last"] if r["traceback"] or r.get("killed") else r["stderr_first"]
    note = f"killed after {r.get('seconds')} s, still running; " if r.get("killed") else ""
    msg = f"{note}`{shorten(line, side)}` ({r['stderr_lines']} line{'s' if r['stderr_lines'] != 1 else ''})" if line else f"{note}(no stderr)"
    return str(r["returncode"]), k, msg

def module_check(side) -> str:
    calls = [e for e in side["events"] if e["type"] == "call"]
    tree = str(side["tree"]) + os.sep
    bad = [c for c in calls if c["modules"] and any(not m.startswith(tree) for m in c["modules"])]
    unknown = [c for c in calls if not c["modules"]]
    return (f"{len(calls)} console-script calls; {len(calls) - len(bad) - len(unknown)} imported crossmodal_course only "
            f"from `{side['tree']}`, {len(bad)} from elsewhere, {len(unknown)} not known (killed before exit)")

def report(before, after, rev, sha_before, sha_after, dirty, cap, total) -> str:
    cb, ca = cases(before), cases(after)
    keys = sorted(set(cb) | set(ca), key=lambda k: ([e["test"] for e in after["events"] + before["events"]].index(k[0]), k[1]))
    lines = ["# Bad input and faults (issue 12): before and after, measured",
             "", f"before: `{rev}` = {sha_before}; after: {sha_after}{' + uncommitted changes' if dirty else ''}. "
             f"Produced by `tools/bad_input_table.py` in {total:.0f} s on a shared, loaded 2-core machine "
             f"(before {before['seconds']:.0f} s, after {after['seconds']:.0f} s; calls killed after {cap:.0f} s).",
             f"pytest on tests/test_bad_input.py (soft checks): before `{before['summary']}`; after `{after['summary']}`.",
             f"Code actually run — before: {module_check(before)}; after: {module_check(after)}.", "",
             "Message: the first stderr line (for a traceback, the exception line; for a killed call, its last line), temporary paths shortened; "
             "(n lines) counts non-blank stderr lines.", "",
             "| # | case | before: exit | kind | message | after: exit | kind | message |",
             "|---|---|---|---|---|---|---|---|"]
    details = []
    for i, key in enumerate(keys, 1):
        c0, c1 = cb.get(key), ca.get(key)
        r = (c1 or c0 or {}).get("rec") or (c0 or {}).get("rec")
        side = after if c1 and c1["rec"] else before
        args = shorten(shlex.join(r["args"]), side, 80) if r else ""
        many = sum(k[0] == key[0] for k in keys) > 1
        name = key[0] + (f" #{key[1]}" if many else "")
        lines.append(f"| {i} | {name}: `crossmodal-course {args}` | " + " | ".join(cell(c0, before)) + " | "
                     + " | ".join(cell(c1, after)) + " |")
        for label, c, s in (("before", c0, before), ("after", c1, after)):
            if c and (c["failed"] or c["exc"]):
                why = c["failed"][0] if c["failed"] else None
                txt = (f"line {why['line']}: `{shorten(why['source'], s, 70)}` — {shorten(why['message'], s, 120)}" if why
                       else shorten(c["exc"][0]["error"], s, 150))
                more = len(c["failed"]) + len(c["exc"]) - 1
                details.append(f"- {i} {label}: {txt}" + (f" (+{more} more)" if more > 0 else ""))
    kb, ka = Counter(kind(cb.get(k)) for k in keys), Counter(kind(ca.get(k)) for k in keys)
    lines += ["", f"Counts over {len(keys)} cases:", "", "| kind | before | after |", "|---|---|---|"]
    lines += [f"| {k} | {kb[k]} | {ka[k]} |" for k in KINDS]
    lines += ["", f"Tracebacks, silent or misleading: before {kb['traceback'] + kb['silent'] + kb['misleading']}, "
              f"after {ka['traceback'] + ka['silent'] + ka['misleading']}"
              f" (option missing: before {kb['option missing']}, after {ka['option missing']}).",
              "", "First failed check of each case that is not ok:", ""] + details
    return "\n".join(lines) + "\n"

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="dadb8b5^"); ap.add_argument("--cap", type=float, default=150.0)
    ap.add_argument("-k", dest="select"); ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    git = lambda *args: subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()
    sha_before = git("rev-parse", "--short", a.before)
    sha_after, dirty = git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no"))
    work = Path(tempfile.mkdtemp(prefix="bad_input_table_"))
    old = work / "before_tree"
    t0 = time.time()
    git("worktree", "add", "--detach", str(old), sha_before)
    try:
        before = run_side("before", old, work, a.cap, a.select)
        after = run_side("after", REPO, work, a.cap, a.select)
    finally:
        git("worktree", "remove", "--force", str(old))
    for s in (before, after):
        if not s["events"]: sys.exit(f"{s['mode']}: pytest recorded nothing:\n{s['stdout'][-3000:]}\n{s['stderr'][-3000:]}")
    md = report(before, after, a.before, sha_before, sha_after, dirty, a.cap, time.time() - t0)
    OUT.parent.mkdir(parents=True, exist_ok=True); OUT.write_text(md)
    print(md)
    if a.keep: print(f"kept {work}", file=sys.stderr)
    else: shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__": main()
