"""CI's check that the README's results table is still what the code produces (`make results-check`).

1. Both committed results files (nbs/results/shapes-full.json, shapes-quick.json) were made by the current code
   (their code fingerprints match `crossmodal_course.results.code_fingerprint()`).
2. A quick-budget run, repeated now with the committed file's settings, gives the committed numbers: exactly for the
   deterministic methods (`EXACT_METHODS`), within a tolerance for the learned ones; no method appears or disappears.
3. README.md shows the table of the committed full-budget file.

Exit code 0 when all hold; 1 with one line per problem otherwise. `--no-rerun` skips step 2 (seconds instead of minutes)."""
import json, sys
from pathlib import Path
from crossmodal_course.results import RESULTS_DIR, check_results, markdown_table, results_table

def main(argv):
    rerun = "--no-rerun" not in argv
    problems = check_results(rerun=rerun, log=lambda s: print(s, file=sys.stderr, flush=True))
    full = RESULTS_DIR / "shapes-full.json"
    if full.is_file():
        table = markdown_table(results_table(json.loads(full.read_text(encoding="utf-8"))))
        if table not in Path("README.md").read_text(encoding="utf-8"):
            problems.append(f"README.md does not show the table of {full}: execute nbs/index.ipynb, then `make readme`")
    for p in problems: print(f"stale results: {p}", file=sys.stderr)
    if not problems: print(f"results check passed{'' if rerun else ' (fingerprints and README only; no rerun)'}")
    return 1 if problems else 0

if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
