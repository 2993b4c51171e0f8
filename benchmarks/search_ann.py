"""Approximate search with FAISS: IVF-Flat (nlist, nprobe) and HNSW (M, efSearch), recall@10 against exact search vs queries/s.

    python benchmarks/search_ann.py [--gallery 1000000] [--dim 256] [--queries 1000] [--threads 1] [--data clustered|gaussian]

The exact baseline is `evaluation.exact_topk` on the same queries in the same run. Target (issue 17): a setting with
recall@10 >= 0.95 at >= 10 x the exact search's queries/s. Build time and index size are printed.
`--data clustered` (default): unit vectors around 10,000 centres (like real embeddings); `gaussian`: uniform on the
sphere, the worst case for any ANN index. Writes benchmarks/results/search_ann_<data>.json."""
import argparse, time
import numpy as np
from _common import unit_gaussian, clustered, set_threads, machine, peak_rss_mb, save
from crossmodal_course.evaluation import exact_topk, ivf_flat_index, hnsw_index, recall_qps_curve, index_nbytes

p = argparse.ArgumentParser()
p.add_argument("--gallery", type=int, default=1_000_000); p.add_argument("--dim", type=int, default=256)
p.add_argument("--queries", type=int, default=1000); p.add_argument("--threads", type=int, default=1)
p.add_argument("--build-threads", type=int, default=None, help="threads for building the indexes (default: --threads)")
p.add_argument("--data", default="clustered", choices=["clustered", "gaussian"])
p.add_argument("--nlist", type=int, default=1024); p.add_argument("--M", type=int, default=16)
p.add_argument("--ef-construction", type=int, default=40); p.add_argument("--skip-hnsw", action="store_true")
a = p.parse_args()
make = clustered if a.data == "clustered" else unit_gaussian
gallery, queries = make(a.gallery, a.dim, 0), make(a.queries, a.dim, 1)
set_threads(a.threads)
t0 = time.perf_counter(); _, exact_ids = exact_topk(queries, gallery, 10); t_exact = time.perf_counter() - t0
exact_qps = a.queries / t_exact
print(f"{a.data} gallery {gallery.shape}: exact search {t_exact:.2f} s = {exact_qps:.0f} queries/s ({a.threads} thread(s))", flush=True)
res = {"data": a.data, "gallery": a.gallery, "dim": a.dim, "queries": a.queries, "threads": a.threads,
       "exact_s": t_exact, "exact_qps": exact_qps, "indexes": {}}
builds = [("ivf", f"IVF-Flat nlist={a.nlist}", lambda: ivf_flat_index(gallery, a.nlist, n_train=64 * a.nlist), [1, 2, 4, 8, 16, 32, 64, 128])]
if not a.skip_hnsw:
    builds.append(("hnsw", f"HNSW M={a.M} efConstruction={a.ef_construction}", lambda: hnsw_index(gallery, a.M, a.ef_construction), [16, 32, 64, 128, 256, 512]))
for key, name, build, values in builds:
    set_threads(a.build_threads or a.threads)
    t0 = time.perf_counter(); index = build(); t_build = time.perf_counter() - t0
    set_threads(a.threads)
    rows = recall_qps_curve(index, queries, exact_ids, values)
    for r in rows: r["x_exact"] = r["qps"] / exact_qps
    res["indexes"][key] = {"name": name, "build_s": t_build, "build_threads": a.build_threads or a.threads,
                           "index_mb": index_nbytes(index) / 1e6, "curve": rows}
    print(f"{name}: built in {t_build:.1f} s ({a.build_threads or a.threads} thread(s)), {index_nbytes(index) / 1e6:.0f} MB", flush=True)
    for r in rows: print(f"   param {r['param']:>4}: recall@10 {r['recall']:.3f}, {r['qps']:8.0f} queries/s = {r['x_exact']:6.1f} × exact", flush=True)
    del index
good = [(res["indexes"][k]["name"], r) for k in res["indexes"] for r in res["indexes"][k]["curve"] if r["recall"] >= 0.95 and r["x_exact"] >= 10]
best = max(good, key=lambda t: t[1]["x_exact"]) if good else None
res.update(machine(), peak_rss_mb=peak_rss_mb())
res["summary"] = {"data": a.data, "exact_qps": round(exact_qps, 1), "target": "recall@10 >= 0.95 at >= 10x exact qps", "met": bool(good),
                  "best": None if best is None else {"index": best[0], "param": best[1]["param"], "recall": round(best[1]["recall"], 4),
                                                      "x_exact": round(best[1]["x_exact"], 1)}}
print("target met:" if good else "target NOT met", "" if best is None else f"{best[0]} param {best[1]['param']}: recall {best[1]['recall']:.3f} at {best[1]['x_exact']:.1f} × exact")
print("saved", save(f"search_ann_{a.data}", res))
