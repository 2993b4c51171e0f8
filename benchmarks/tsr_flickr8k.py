"""TSR against VSE++ on Flickr8k with 25 % of the training images paired: the real-photo check of `07_two_step`.

    python benchmarks/tsr_flickr8k.py [--root ../shared/data/flickr8k] [--seeds 0 1 2] [--fraction 0.25] [--threads 1]

Runs `crossmodal_course.results.reproduce` on Flickr8k (train → dev) once per seed with `--paired-fraction F --pretrained`:
`tsr` gets the whole training split with F of its images paired and the rest as unpaired images and unpaired captions
(`data.partial_pairing`, from the seed); `vsepp` trains on the paired images only. Both read frozen ImageNet
EfficientNet-Lite0 features (`joint.PRETRAINED_SIDE`; cached on disk, so only the first run extracts them); VSE++'s words
start from GloVe 6B, TSR's caption autoencoder learns its own. Each holds out 10 % of its training images for epoch
selection; dev is only reported. Prints rSum per seed, mean ± sd, the difference and the seconds per run (wall clock,
load average printed). Writes benchmarks/results/tsr_flickr8k.json."""
import argparse, os, time
from pathlib import Path
import numpy as np
import torch
from _common import machine, save
from crossmodal_course.joint import better_by_seeds
from crossmodal_course.results import reproduce

DEFAULT_ROOT = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--methods", nargs="+", default=["tsr", "vsepp"])
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    if not (a.root / "Flickr8k_text").is_dir() and not any(a.root.glob("*token*")):
        raise SystemExit(f"{a.root}: no Flickr8k copy there; pass --root or set CROSSMODAL_FLICKR8K")
    torch.set_num_threads(a.threads)
    rows, t0 = {m: [] for m in a.methods}, time.perf_counter()
    for s in a.seeds:
        res = reproduce("flickr8k", root=a.root, eval_split="dev", methods=",".join(a.methods), seed=s,
                        paired_fraction=a.fraction, pretrained=True, log=lambda *x: print(*x, flush=True))
        for m in a.methods: rows[m].append(res["methods"][m] | {"seed": s})
        print(f"seed {s}: " + ", ".join(f"{m} rSum {rows[m][-1]['rsum']:.1f} ({rows[m][-1]['train_seconds']:.0f} s)" for m in a.methods), flush=True)
    sd = lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    out = {"dataset": "flickr8k", "eval_split": "dev", "paired_fraction": a.fraction, "seeds": a.seeds, "threads": a.threads,
           "machine": machine(), "seconds": time.perf_counter() - t0, "methods": {}}
    for m in a.methods:
        r = np.array([x["rsum"] for x in rows[m]]); secs = [x["train_seconds"] for x in rows[m]]
        out["methods"][m] = {"rsum": r.tolist(), "mean": float(r.mean()), "sd": sd(r), "seconds": secs, "runs": rows[m]}
        print(f"{m:6s} rSum {r.mean():.1f} ± {sd(r):.1f}  (per seed {', '.join(f'{x:.1f}' for x in r)}; seconds {', '.join(f'{x:.0f}' for x in secs)})")
    if {"tsr", "vsepp"} <= set(a.methods):
        d = np.array(out["methods"]["tsr"]["rsum"]) - np.array(out["methods"]["vsepp"]["rsum"])
        verdict = better_by_seeds(rows["tsr"], rows["vsepp"]).replace("A", "TSR").replace("B", "VSE++")   # the course's rule (04a_joint)
        out["difference"] = {"per_seed": d.tolist(), "mean": float(d.mean()), "verdict": verdict}
        print(f"TSR − VSE++ at {a.fraction:.0%} paired: {d.mean():+.1f} rSum (per seed {', '.join(f'{x:+.1f}' for x in d)}): {verdict} "
              f"(means apart by more than the two sds added = a difference)")
    print(f"{len(a.seeds)} seeds in {out['seconds']:.0f} s; load average {machine()['load_avg']}")
    save("tsr_flickr8k", out)

if __name__ == "__main__": main()
