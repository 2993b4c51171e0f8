"""The retrieval metrics against vsepp's evaluation loop, measured in one run, with the same numbers and peak memory.

    python benchmarks/metrics_speed.py [--images 5000] [--threads 1] [--sample 0]

vsepp's `i2t`/`t2i` loop (argsort of each image's row over all captions, argsort of each caption's column over all images,
`numpy.where` to find the ground truth) is reimplemented faithfully in `evaluation.vsepp_loop_ranks` and run on the whole
matrix (`--sample N` times it on N images and scales instead). It is compared with `core.retrieval_metrics` (chunked) and
`evaluation.fast_retrieval_metrics` (one pass). End to end: a fresh Python process that loads the .npy file and prints the
metrics, start-up included. Target (issue 17): >= 100 x vsepp's loop on 5,000 x 25,000. Writes benchmarks/results/metrics_speed.json."""
import argparse, json, subprocess, sys, tempfile, time, tracemalloc
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, save
from crossmodal_course.core import retrieval_metrics
from crossmodal_course.evaluation import fast_ranks, fast_retrieval_metrics, vsepp_loop_ranks, vsepp_loop_seconds, vsepp_metrics

p = argparse.ArgumentParser()
p.add_argument("--images", type=int, default=5000); p.add_argument("--threads", type=int, default=1)
p.add_argument("--sample", type=int, default=0, help="time vsepp's loop on this many images and scale (0: the whole loop)")
a = p.parse_args()
n = a.images
sims = np.random.default_rng(0).standard_normal((n, 5 * n), dtype=np.float32)
print(f"matrix {sims.shape} float32, {sims.nbytes / 1e6:.0f} MB", flush=True)

def timed(fn, repeats: int = 2):
    "Best wall-clock time of `repeats` calls without tracing (tracemalloc slows every numpy allocation down), then one traced call for the peak memory."
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t0)
    tracemalloc.start(); tracemalloc.reset_peak(); fn()
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return out, best, peak / 1e6

(fast_m, t_fast, mem_fast) = timed(lambda: fast_retrieval_metrics(sims, threads=1))
print(f"one pass, 1 thread: {t_fast:.2f} s, peak extra memory {mem_fast:.1f} MB", flush=True)
(_, t_fast2, mem_fast2) = timed(lambda: fast_retrieval_metrics(sims, threads=2))
print(f"one pass, 2 threads: {t_fast2:.2f} s, peak extra memory {mem_fast2:.1f} MB", flush=True)
(core_m, t_core, mem_core) = timed(lambda: retrieval_metrics(sims))
print(f"core.retrieval_metrics (chunked): {t_core:.2f} s, peak extra memory {mem_core:.1f} MB", flush=True)
assert fast_m == core_m
if a.sample:
    t_vsepp, same = vsepp_loop_seconds(sims, a.sample), None
else:
    t0 = time.perf_counter(); vi, vt = vsepp_loop_ranks(sims); t_vsepp = time.perf_counter() - t0     # one run: it is slow
    i2t, t2i = fast_ranks(sims)
    m = np.repeat(np.arange(n), 5)
    # float32 scores can tie exactly; vsepp orders ties by its reversed argsort, the course by the smaller index.
    # Every rank that differs must come from a tie at the ground-truth score.
    bad_i = [i for i in np.nonzero(vi + 1 != i2t)[0] if (sims[i] == sims[i, 5 * i:5 * i + 5].max()).sum() < 2]
    bad_t = [j for j in np.nonzero(vt + 1 != t2i)[0] if (sims[:, j] == sims[m[j], j]).sum() < 2]
    assert not bad_i and not bad_t, (bad_i[:5], bad_t[:5])
    same = {"i2t_differ": int((vi + 1 != i2t).sum()), "t2i_differ": int((vt + 1 != t2i).sum()), "all_differences_are_ties": True}
    vm = {"i2t": vsepp_metrics(vi), "t2i": vsepp_metrics(vt)}
    same["vsepp_metrics"] = vm
    same["max_metric_diff"] = max(abs(vm[d][k] - fast_m[d][k]) for d in ("i2t", "t2i") for k in ("r1", "r5", "r10", "meanr"))
print(f"vsepp loop{' (estimated from %d images)' % a.sample if a.sample else ''}: {t_vsepp:.1f} s; ranks compared: "
      + ("not compared" if same is None else f"{same['i2t_differ']} image→text and {same['t2i_differ']} text→image ranks differ, all at exact ties; "
         f"largest metric difference {same['max_metric_diff']:.2g}"), flush=True)

with tempfile.TemporaryDirectory() as tmp:
    f = Path(tmp) / "sims.npy"; np.save(f, sims)
    code = ("import sys, json, time, resource; t0 = time.perf_counter(); import numpy as np; "
            "from crossmodal_course.evaluation import fast_retrieval_metrics; "
            f"m = fast_retrieval_metrics(np.load(sys.argv[1]), threads={a.threads}); "
            "print(json.dumps({'rsum': m['rsum'], 'inner_s': time.perf_counter() - t0, 'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    t_e2e = float("inf")
    for _ in range(3):                                   # best of three fresh processes
        t0 = time.perf_counter(); out = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, check=True)
        t_e2e = min(t_e2e, time.perf_counter() - t0)
    e2e = json.loads(out.stdout)
    assert abs(e2e["rsum"] - fast_m["rsum"]) < 1e-9
    prog = Path(sys.executable).parent / "crossmodal-course"
    t_cli = None
    if prog.exists():
        t_cli = float("inf")
        for _ in range(3):
            t0 = time.perf_counter(); subprocess.run([str(prog), "metrics", str(f), "--json"], capture_output=True, check=True)
            t_cli = min(t_cli, time.perf_counter() - t0)
print(f"end to end (fresh process: start-up, np.load, one pass, {a.threads} thread): {t_e2e:.2f} s, max RSS {e2e['maxrss_mb']:.0f} MB"
      + (f"; `crossmodal-course metrics` (best of 3): {t_cli:.2f} s" if t_cli else ""), flush=True)
res = {"shape": list(sims.shape), "vsepp_loop_s": t_vsepp, "vsepp_loop_estimated": bool(a.sample), "vsepp_comparison": same,
       "fast_1thread_s": t_fast, "fast_2threads_s": t_fast2, "core_chunked_s": t_core,
       "peak_extra_mb": {"fast_1thread": mem_fast, "fast_2threads": mem_fast2, "core_chunked": mem_core, "matrix": sims.nbytes / 1e6},
       "end_to_end_s": t_e2e, "end_to_end_maxrss_mb": e2e["maxrss_mb"], "cli_metrics_today_s": t_cli, **machine()}
res["summary"] = {"vsepp_over_fast_1thread": round(t_vsepp / t_fast, 1), "vsepp_over_fast_2threads": round(t_vsepp / t_fast2, 1),
                  "vsepp_over_end_to_end": round(t_vsepp / t_e2e, 1), "vsepp_over_cli": round(t_vsepp / t_cli, 1) if t_cli else None, "core_over_fast": round(t_core / t_fast, 1),
                  "target": ">= 100x vsepp's loop", "met_1thread": t_vsepp / t_fast >= 100}
print(json.dumps(res["summary"]))
print("saved", save("metrics_speed", res))
