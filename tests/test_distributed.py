"""`fit` under `torchrun --nproc_per_node 2` on CPU (Gloo): disjoint shards, gathered negatives equal to one process on the
global batch, rank-0 evaluation and checkpoints, exact resume, and a 2-process checkpoint resumed by one process.

One torchrun launch (tests/ddp_worker.py) does the distributed work; the single-process references are computed here."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker as W
import crossmodal_course.training as T

ROOT = Path(__file__).resolve().parents[1]
# Tolerances of "equal to one process": float32 sums in a different order (the gathered batch is ordered by rank)
LOSS_RTOL, LOSS_ATOL, GRAD_RTOL, GRAD_ATOL = 1e-5, 1e-6, 1e-5, 1e-6

def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]

@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "CROSSMODAL_COURSE_PROGRESS": "0"}
    env.pop("WORLD_SIZE", None)
    cmd = _torchrun() + ["--standalone", "--nproc_per_node", "2", str(Path(__file__).with_name("ddp_worker.py")), str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, f"torchrun failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    res = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    return out, res

def test_ranks_and_backend(ranks):
    _, res = ranks
    assert [r["info"] for r in res] == [(0, 2, "gloo"), (1, 2, "gloo")]

def test_disjoint_shards_cover_the_data(ranks):
    _, res = ranks
    for epoch in (0, 1):
        shard = [[i for e, ids in r["seen"] if e == epoch for i in ids] for r in res]
        assert len(shard[0]) == len(shard[1]) == W.N_PAIRS // 2
        assert not set(shard[0]) & set(shard[1])
        assert sorted(shard[0] + shard[1]) == list(range(W.N_PAIRS))
    order = lambda r, e: [i for ep, ids in r["seen"] if ep == e for i in ids]
    assert order(res[0], 0) != order(res[0], 1)              # set_epoch: reshuffled each epoch

def _one_process_step(kind):
    model = W.TinyJoint(); data = W.Pairs(); n = 2 * W.LOCAL_BATCH
    loss = W.make_loss(kind)(model, (data.img[:n], data.cap[:n], torch.arange(n)))
    loss.backward()
    return loss.item(), W.grads_of(model)

@pytest.mark.parametrize("kind", ["infonce", "vse0", "vsepp", "instance"])
def test_gathered_loss_and_gradients_equal_one_process(ranks, kind):
    _, res = ranks
    ref_loss, ref_grads = _one_process_step(kind)
    for r in res:
        loss, grads = r["step"][kind, True]
        if kind == "instance": loss = (res[0]["step"][kind, True][0] + res[1]["step"][kind, True][0]) / 2   # a per-rank mean
        assert loss == pytest.approx(ref_loss, rel=LOSS_RTOL, abs=LOSS_ATOL)
        assert grads.keys() == ref_grads.keys()
        for name in ref_grads: torch.testing.assert_close(grads[name], ref_grads[name], rtol=GRAD_RTOL, atol=GRAD_ATOL)
    if kind == "instance":                                   # needs no gathering: DDP's average is already exact
        for name in ref_grads: torch.testing.assert_close(res[0]["step"][kind, False][1][name], ref_grads[name], rtol=GRAD_RTOL, atol=GRAD_ATOL)
    else:                                                    # contrastive: each rank's own negatives only is another loss
        own = [r["step"][kind, False] for r in res]
        assert abs((own[0][0] + own[1][0]) / 2 - ref_loss) > 1e-3
        assert max((own[0][1][n] - ref_grads[n]).abs().max().item() for n in ref_grads) > 1e-4

def test_fit_two_processes_equals_one_process_on_global_batch(ranks):
    _, res = ranks
    model = W.TinyJoint()
    hist = T.fit(model, W.make_loss("infonce"), W.loader(2 * W.LOCAL_BATCH, shuffle=False), 2, lr=1e-2, seed=0)
    assert len(res[0]["fit_losses"]) == len(hist.losses) == 2 * W.N_PAIRS // (2 * W.LOCAL_BATCH)
    assert res[0]["fit_losses"] == res[1]["fit_losses"]      # every rank records the same (averaged) loss
    assert res[0]["fit_losses"] == pytest.approx(hist.losses, rel=LOSS_RTOL, abs=LOSS_ATOL)
    for k, v in model.state_dict().items(): torch.testing.assert_close(res[0]["fit_state"][k], v, rtol=0, atol=1e-5)
    for k, v in res[1]["fit_state"].items(): assert torch.equal(v, res[0]["fit_state"][k])   # replicas stay identical

def test_rank0_evaluates_and_checkpoints_and_resume_is_exact(ranks):
    out, res = ranks
    assert res[0]["evals"] == 3 + 1 + 2 + 2 and res[1]["evals"] == 0
    assert len(res[0]["saves"]) == 3 + 1 + 2 + 2 and res[1]["saves"] == []
    assert res[0]["resume"]["full"][1] == res[1]["resume"]["full"][1]           # metrics broadcast to every rank
    for r in res:
        assert r["resume"]["resumed"] == r["resume"]["full"] and r["resume"]["same_weights"]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == []

def test_two_process_checkpoint_resumes_in_one_process(ranks):
    out, res = ranks
    ck = T.load_checkpoint(out / "for_one.pt")
    assert ck["epoch"] == 1 and ck["world_size"] == 2 and len(ck["rng_ranks"]) == 2
    assert sorted(ck["model"]) == sorted(W.TinyJoint().state_dict())               # no DDP "module." prefix
    losses, metrics = res[0]["for_one"]
    path = out / "one.pt"; shutil.copy(out / "for_one.pt", path)
    model = W.TinyJoint(dropout=0.2, seed=3)
    evals = lambda m: {"r1": 0.0}
    hist = T.fit(model, W.make_loss("vse0"), W.loader(W.LOCAL_BATCH, True), 3, lr=1e-2, eval_fn=evals, select="r1", ckpt_path=path)
    assert hist.losses[:len(losses)] == losses and hist.metrics[:2] == metrics
    assert len(hist.epoch_losses) == 3 and len(hist.losses) == len(losses) + W.N_PAIRS // W.LOCAL_BATCH
    assert T.load_checkpoint(path)["epoch"] == 2 and "rng_ranks" not in T.load_checkpoint(path)

def test_single_process_fit_is_the_plain_loop():
    "Without torchrun, fit is the plain loop: the same losses, bit for bit, as a hand-written one."
    model, ref = W.TinyJoint(dropout=0.2), W.TinyJoint(dropout=0.2)
    hist = T.fit(model, W.make_loss("infonce"), W.loader(8, True), 2, lr=1e-2, seed=0)
    assert not torch.distributed.is_initialized()
    from crossmodal_course.core import progress, set_seed
    set_seed(0); opt = torch.optim.Adam(ref.parameters(), lr=1e-2); dl = W.loader(8, True); losses = []
    for epoch in range(2):
        dl.dataset.set_epoch(epoch); ref.train()
        for batch in progress(dl, total=len(dl)):       # (tqdm starts the loader's iterator: the order depends on it)
            loss = W.make_loss("infonce")(ref, batch); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            losses.append(loss.item())
    assert hist.losses == losses
    for a, b in zip(model.state_dict().values(), ref.state_dict().values()): assert torch.equal(a, b)

def test_train_parser_and_recipes():
    "The `train` command's options (04a_joint), and its recipes are exactly the registered joint methods."
    import argparse
    import crossmodal_course.joint as J
    from crossmodal_course.core import METHODS
    p = argparse.ArgumentParser(); J.add_train_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(["train", "--method", "infonce", "--batch-size", "64", "--quick", "--ckpt", "ck.pt"])
    assert (a.method, a.batch_size, a.quick, a.ckpt, a.dataset, a.func) == ("infonce", 64, True, "ck.pt", "shapes", J.train_command)
    for name, (cfg, stage2, _) in J.JOINT_RECIPES.items():
        cfgs = [c.cell_contents for c in METHODS[name]["fn"].__closure__ if isinstance(c.cell_contents, J.JointConfig)]
        assert cfgs == [c for c in (cfg, stage2) if c is not None], f"train recipe {name} drifted from the registered method"
