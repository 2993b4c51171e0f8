"""Training throughput of `fit` with 1 and 2 processes under `torchrun` (DDP; Gloo on CPU, NCCL on GPUs).

    python benchmarks/ddp_speed.py                      # 1 and 2 processes, prints pairs/s and the backend
    python benchmarks/ddp_speed.py --nprocs 1,2,4 --pairs 16384 --threads 1

The workload is `04_ranking`'s joint model (GRU text branch, linear image projection from 512-d features) trained
with InfoNCE over negatives gathered from every process, on synthetic features and token ids: the same code path as
`torchrun -m crossmodal_course.training train`, without data loading or evaluation. The batch is per process
(weak scaling): with N processes a step sees N × batch pairs and an epoch has 1/N of the steps. Timed: the epochs
after one warm-up epoch. Each process uses --threads torch threads (default 1).
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def worker(args):
    import torch
    from crossmodal_course.joint import JointEmbedding, make_text_encoder
    from crossmodal_course.losses import infonce_loss
    from crossmodal_course.training import fit, init_distributed, dist_device
    torch.set_num_threads(args.threads)
    info = init_distributed()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(args.pairs, 512, generator=g)
    lengths = torch.randint(5, 16, (args.pairs,), generator=g)
    tokens = torch.randint(4, 1000, (args.pairs, 16), generator=g) * (torch.arange(16)[None] < lengths[:, None])
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(feats, tokens, lengths), batch_size=args.batch_size,
                                     shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    model = JointEmbedding(make_text_encoder("gru", range(1000), seed=0), 512, 256)
    def loss_fn(model, batch):
        x, tok, ln = batch
        return infonce_loss(model.sim(model.embed_images(x), model.embed_captions(tok, ln)), 0.07)   # gathered under DDP
    fit(model, loss_fn, dl, 1, lr=1e-3, desc="warm-up")
    t = time.perf_counter()
    hist = fit(model, loss_fn, dl, args.epochs, lr=1e-3, desc="timed")
    seconds = time.perf_counter() - t
    if info.rank == 0:
        steps = len(hist.losses)
        out = {"processes": info.world_size, "backend": info.backend or "none (one process)",
               "device": str(dist_device(info) if info.world_size > 1 else next(model.parameters()).device),
               "batch_per_process": args.batch_size, "global_batch": args.batch_size * info.world_size, "steps": steps,
               "pairs": steps * args.batch_size * info.world_size, "seconds": seconds}
        out["pairs_per_s"] = out["pairs"] / seconds
        Path(args.out).write_text(json.dumps(out))

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nprocs", default="1,2", help="comma-separated process counts (default 1,2)")
    p.add_argument("--pairs", type=int, default=4096); p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS); p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker: return worker(args)
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "CROSSMODAL_COURSE_PROGRESS": "0",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in [int(x) for x in args.nprocs.split(",")]:
            out = Path(d) / f"{n}.json"
            cmd = launcher + ["--standalone", "--nproc_per_node", str(n), __file__, "--worker", "--out", str(out),
                              "--pairs", str(args.pairs), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                              "--threads", str(args.threads)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f"torchrun with {n} process(es) failed:\n{r.stderr[-3000:]}")
            rows.append(json.loads(out.read_text()))
    base = rows[0]["pairs_per_s"]
    print(f"fit throughput, InfoNCE with gathered negatives, {args.pairs} synthetic pairs, batch {args.batch_size} per process, "
          f"{args.threads} thread(s) per process, {os.cpu_count()} CPU(s) visible")
    print(f"{'processes':>9} {'backend':>20} {'device':>7} {'global batch':>12} {'steps':>6} {'seconds':>8} {'pairs/s':>9} {'vs first':>8}")
    for r in rows:
        print(f"{r['processes']:>9} {r['backend']:>20} {r['device']:>7} {r['global_batch']:>12} {r['steps']:>6} "
              f"{r['seconds']:>8.2f} {r['pairs_per_s']:>9.0f} {r['pairs_per_s'] / base:>7.2f}x")

if __name__ == "__main__":
    main()
