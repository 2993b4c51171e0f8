"""Helpers shared by the search benchmarks: galleries, thread settings, result files."""
import json, os, platform, resource, time
from pathlib import Path
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

def set_threads(n: int) -> None:
    "Same thread count for torch, FAISS (OpenMP) and numpy's BLAS where it can still be set."
    import torch, faiss, threadpoolctl                 # threadpoolctl comes with scikit-learn
    torch.set_num_threads(n); faiss.omp_set_num_threads(n)
    threadpoolctl.threadpool_limits(n, user_api="blas")   # numpy's OpenBLAS: `exact_topk` multiplies with numpy

def unit_gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    "`n` unit vectors drawn uniformly on the sphere (no neighbourhood structure)."
    rng = np.random.default_rng(seed)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        b = rng.standard_normal((min(100_000, n - s), dim), dtype=np.float32)
        x[s:s + len(b)] = b / np.linalg.norm(b, axis=1, keepdims=True)
    return x

def clustered(n: int, dim: int, seed: int, n_centres: int = 10_000, noise: float = 1.0) -> np.ndarray:
    "`n` unit vectors around `n_centres` random centres (isotropic noise `noise` × the centres' scale): clustered like real embeddings."
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((n_centres, dim), dtype=np.float32)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        b = centres[rng.integers(0, n_centres, m)] + noise * rng.standard_normal((m, dim), dtype=np.float32)
        x[s:s + m] = b / np.linalg.norm(b, axis=1, keepdims=True)
    return x

def machine() -> dict:
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "load_avg": os.getloadavg(),
            "note": "shared machine: other jobs were running; compare ratios measured in this run"}

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path
