"""Does the best registered joint method beat `cnn-cca` by ≥ 1.15× — over seeds, the way `reproduce` runs them?

    python benchmarks/joint_vs_cca.py [--seeds 0 1 2] [--methods cnn-cca infonce-top] [--quick]

Runs `crossmodal_course.results.reproduce` on the embedded shapes set (train → test split, the registered methods as
`crossmodal-course reproduce --methods ... --seed S` runs them: each seed trains its own proxy CNN, holds out 10% of the
training images for epoch selection) once per seed, and prints each method's rSum per seed, the mean ± sd, and the
ratio of the best joint method to `cnn-cca` per seed and as mean ± sd. Writes benchmarks/results/joint_vs_cca.json.
A seed's proxy CNN is trained (and cached) the first time it is used; its seconds are part of the first method's."""
import argparse, time
import numpy as np
import torch
from _common import machine, save
from crossmodal_course.results import reproduce

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=["cnn-cca", "infonce-top"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows, t0 = {m: [] for m in a.methods}, time.perf_counter()
    for s in a.seeds:
        res = reproduce("shapes", methods=",".join(a.methods), seed=s, quick=a.quick, log=lambda *x: None)
        for m in a.methods: rows[m].append((res["methods"][m]["rsum"], res["methods"][m]["train_seconds"]))
        print(f"seed {s}: " + ", ".join(f"{m} rSum {rows[m][-1][0]:.1f} ({rows[m][-1][1]:.0f} s)" for m in a.methods), flush=True)
    base = np.array([r for r, _ in rows["cnn-cca"]])
    out = {"seeds": a.seeds, "quick": a.quick, "machine": machine(), "seconds": time.perf_counter() - t0, "methods": {}}
    for m in a.methods:
        r = np.array([x for x, _ in rows[m]])
        sd = lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
        out["methods"][m] = {"rsum": r.tolist(), "mean": float(r.mean()), "sd": sd(r), "seconds": [x for _, x in rows[m]]}
        line = f"{m:12s} rSum {r.mean():.1f} ± {sd(r):.1f}"
        if m != "cnn-cca":
            ratio = r / base
            out["methods"][m] |= {"ratio_per_seed": ratio.tolist(), "ratio_mean": float(ratio.mean()), "ratio_sd": sd(ratio),
                                  "ratio_of_means": float(r.mean() / base.mean())}
            line += f"   / cnn-cca: {ratio.mean():.3f} ± {sd(ratio):.3f} (per seed {', '.join(f'{x:.3f}' for x in ratio)}; ratio of means {r.mean() / base.mean():.3f})"
        print(line)
    print(f"{len(a.seeds)} seeds in {out['seconds']:.0f} s; load average {machine()['load_avg']}")
    save("joint_vs_cca" + ("_quick" if a.quick else ""), out)

if __name__ == "__main__": main()
