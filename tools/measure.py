"""Record measured times and sizes for the README (nbs/results/measurements.json), with the date and machine.

    python tools/measure.py time NAME -- COMMAND...   # run COMMAND, record its wall time under NAME (its exit code is kept)
    python tools/measure.py venv [PATH]               # record the size of a virtualenv (default .venv) and what fills it

The README (nbs/index.ipynb) states these figures; `make measure` refreshes the ones it needs."""
import json, os, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path
from crossmodal_course.files import atomic_write
from crossmodal_course.results import machine, RESULTS_DIR

OUT = RESULTS_DIR / "measurements.json"

def du(path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())

def record(name, entry):
    data = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    data[name] = entry | {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
                          "load_average": round(os.getloadavg()[0], 1)}
    atomic_write(OUT, json.dumps(data, indent=2, sort_keys=True) + "\n")

def main(argv):
    if argv[:1] == ["time"] and "--" in argv:
        name, cmd = argv[1], argv[argv.index("--") + 1:]
        t0 = time.perf_counter(); rc = subprocess.call(cmd)
        record(name, {"seconds": round(time.perf_counter() - t0, 1), "command": " ".join(cmd), "exit_code": rc})
        return rc
    if argv[:1] == ["venv"]:
        venv = Path(argv[1] if len(argv) > 1 else ".venv")
        site = next(venv.glob("lib/python*/site-packages"))
        nvidia = [p for p in site.glob("nvidia*") if p.is_dir() and not p.name.endswith(".dist-info")]
        nvidia_dists = [p for p in site.glob("nvidia_*.dist-info")]
        record("venv", {"bytes": du(venv), "torch_bytes": du(site / "torch"), "triton_bytes": du(site / "triton"),
                        "nvidia_bytes": sum(du(p) for p in nvidia), "nvidia_packages": len(nvidia_dists)})
        return 0
    sys.exit(__doc__)

if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
