"""Seconds and rSum of the registered `gxn` method on the embedded set (quick and full), against the budget of a registered
method on this CPU (≤ 8 s quick, ≤ 45 s full). The proxy CNN comes from the cache when another method or notebook made it.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/gxn_budget.py [--seed 0] [--only quick|full]
"""
import argparse, os, time

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("quick", "full"), default=None)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from crossmodal_course.core import retrieval_metrics
    from crossmodal_course.data import shapes_dataset
    from crossmodal_course.generative import gxn_method
    from crossmodal_course.image import proxy_image_encoder
    from crossmodal_course.data import train_subset
    train, test = shapes_dataset("train"), shapes_dataset("test")
    for quick in (True, False):
        if args.only and args.only != ("quick" if quick else "full"): continue
        t0 = time.perf_counter()
        proxy_image_encoder(train_subset(train, 3000 if quick else None, args.seed), quick=quick, seed=args.seed)   # warm the CNN cache first
        t_cnn = time.perf_counter() - t0
        t0 = time.perf_counter()
        sims = gxn_method(train, test, quick=quick, seed=args.seed)
        secs = time.perf_counter() - t0
        m = retrieval_metrics(sims, img_of_caption=test.img_of_caption)
        budget = 8 if quick else 45
        print(f"gxn quick={quick} seed={args.seed}: {secs:.1f} s (budget {budget} s, CNN cache {t_cnn:.1f} s before), rSum {m['rsum']:.1f}, "
              f"load average {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main()
