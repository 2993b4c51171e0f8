"""pytest plugin for `tools/bad_input_table.py` (not a test helper of its own; see that script's docstring).

Loaded with `-p bad_input_plugin` into a pytest run of a copy of tests/test_bad_input.py whose `assert` statements
were rewritten into `soft_check(...)` calls. It

* records every call of the `crossmodal-course` console script (through `subprocess.Popen`, which `subprocess.run`
  uses too): arguments, exit code, stderr lines, 'Traceback' or not, stdout size, seconds, and the files of the
  `crossmodal_course` modules the subprocess imported (written at exit by the generated `sitecustomize` shim);
* in mode `before` (env BAD_INPUT_MODE) points those subprocesses at the old tree (env BAD_INPUT_TREE) through
  PYTHONPATH and gives them a private cache folder when the test did not choose one;
* kills a console-script call that runs past BAD_INPUT_CAP seconds (recorded as `killed`), instead of waiting for
  the test's own timeout (an old `reproduce --methods ""` trains every method for tens of minutes);
* turns every call of the test module's `fails(r, ...)` into one case, and records each failed assertion (with the
  case it happened in), each exception and each test's outcome; a test with a failed soft assertion is failed.

Everything goes as JSON lines to the file named by env BAD_INPUT_LOG.
"""
import json, os, subprocess, time
from pathlib import Path
import pytest

_REAL_POPEN = subprocess.Popen
_state = {"test": None, "case": 0, "calls": 0, "soft": []}

def _log(rec: dict):
    with open(os.environ["BAD_INPUT_LOG"], "a") as f: f.write(json.dumps(rec) + "\n")

def _lines(s: str) -> list:
    return [l for l in (s or "").splitlines() if l.strip()]

def _summary(args, returncode, stdout, stderr) -> dict:
    lines = _lines(stderr)
    return {"args": [str(a) for a in args][1:], "returncode": returncode, "stderr_lines": len(lines),
            "stderr_first": lines[0] if lines else "", "stderr_last": lines[-1] if lines else "",
            "traceback": "Traceback" in (stderr or ""), "stdout_bytes": len((stdout or "").encode())}

def _is_console(args) -> bool:
    return isinstance(args, (list, tuple)) and bool(args) and Path(str(args[0])).name == "crossmodal-course"

class RecordingPopen(_REAL_POPEN):
    def __init__(self, args, *a, **kw):
        self._console = _is_console(args)
        if self._console:
            env = dict(kw.get("env") or os.environ)
            env["PYTHONPATH"] = os.pathsep.join([os.environ["BAD_INPUT_SHIM"], os.environ["BAD_INPUT_TREE"]])
            env["BAD_INPUT_MODLOG"] = os.environ["BAD_INPUT_MODLOG"]
            if os.environ.get("BAD_INPUT_MODE") == "before" and "CROSSMODAL_COURSE_CACHE" not in (kw.get("env") or {}):
                env["CROSSMODAL_COURSE_CACHE"] = os.environ["BAD_INPUT_CACHE"]
            kw["env"] = env
            _state["calls"] += 1
            self._n, self._case, self._test, self._t0 = _state["calls"], _state["case"], _state["test"], time.time()
        super().__init__(args, *a, **kw)

    def communicate(self, input=None, timeout=None):
        if not self._console: return super().communicate(input, timeout)
        cap = float(os.environ.get("BAD_INPUT_CAP", "150"))
        killed = False
        try: out, err = super().communicate(input, cap if timeout is None else min(timeout, cap))
        except subprocess.TimeoutExpired:
            self.kill(); killed = True
            out, err = super().communicate()
        rec = _summary(self.args, self.returncode, out, err)
        modfile = Path(os.environ["BAD_INPUT_MODLOG"]) / f"{self.pid}.json"
        modules = json.loads(modfile.read_text()) if modfile.exists() else None
        _log({"type": "call", "test": self._test, "case": self._case, "n": self._n, "killed": killed,
              "seconds": round(time.time() - self._t0, 1), "modules": modules} | rec)
        return out, err

def soft_check(lineno: int, source: str, cond, msg):
    "Replaces `assert cond, msg`: records a failure (or an exception while checking) and goes on."
    try: ok, why = bool(cond()), None
    except Exception as e: ok, why = False, f"{type(e).__name__}: {e}"
    if ok: return
    if why is None:
        try: why = "" if msg is None else str(msg())
        except Exception as e: why = f"(message failed: {type(e).__name__}: {e})"
    _state["soft"].append(lineno)
    _log({"type": "assert", "test": _state["test"], "case": _state["case"], "line": lineno, "source": source,
          "message": why[:400]})

def _wrap_fails(fails):
    if getattr(fails, "_bad_input_wrapped", False): return fails
    def wrapped(r, *expected):
        _state["case"] += 1
        _log({"type": "case", "test": _state["test"], "case": _state["case"], "expected": [str(e) for e in expected]}
             | _summary(r.args, r.returncode, r.stdout, r.stderr))
        return fails(r, *expected)
    wrapped._bad_input_wrapped = True
    return wrapped

def pytest_configure(config):
    subprocess.Popen = RecordingPopen

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _state.update(test=item.nodeid.split("::", 1)[-1], case=0, calls=0, soft=[])
    mod = item.module
    if hasattr(mod, "fails"): mod.fails = _wrap_fails(mod.fails)
    outcome = yield
    exc = outcome.excinfo
    if exc is not None:
        _log({"type": "exception", "test": _state["test"], "case": _state["case"],
              "error": f"{exc[0].__name__}: {str(exc[1])[:300]}"})
    elif _state["soft"]:
        outcome.force_exception(AssertionError(f"soft assertions failed on lines {_state['soft']}"))

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        _log({"type": "outcome", "test": report.nodeid.split("::", 1)[-1], "when": report.when,
              "outcome": report.outcome, "seconds": round(report.duration, 1)})
