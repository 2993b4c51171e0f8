"""Speed of the vectorised retrieval metrics against the plain sorting loop, measured in one run.

    python benchmarks/metrics_speed.py [--images 5000] [--captions-per-image 5] [--loop-sample 200]

The loop is timed on a random sample of rows and columns and scaled to the full matrix (the full loop takes
minutes); the ratio is the figure to quote. Also checks that both give the same ranks on the sample."""
import argparse, json, os, platform
import numpy as np
from crossmodal_course.core import time_metrics, i2t_ranks, i2t_ranks_loop, t2i_ranks, t2i_ranks_loop

p = argparse.ArgumentParser()
p.add_argument("--images", type=int, default=5000)
p.add_argument("--captions-per-image", type=int, default=5)
p.add_argument("--loop-sample", type=int, default=200)
a = p.parse_args()
small = np.random.default_rng(1).normal(size=(300, 1500)).round(1)          # with ties
assert (i2t_ranks(small) == i2t_ranks_loop(small)).all() and (t2i_ranks(small) == t2i_ranks_loop(small)).all()
r = time_metrics(a.images, a.captions_per_image, a.loop_sample)
print(json.dumps({"cpus": os.cpu_count(), "machine": platform.machine(), **r}, indent=2))
print(f"vectorised metrics on {r['shape'][0]} x {r['shape'][1]}: {r['vectorised_s']:.2f} s; "
      f"sorting loop (estimated): {r['loop_s_estimated']:.1f} s; speed-up x{r['speedup']:.1f}")
