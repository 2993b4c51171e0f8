"""Run by tests/test_distributed.py as `torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR`.

Each rank trains a tiny joint model with `fit` under DDP (Gloo on CPU) and saves what it saw and computed to
OUT_DIR/rank{r}.pt; the test compares it with single-process runs. The builders below are shared with the test."""
import sys
from pathlib import Path
import torch
from torch import nn
import torch.nn.functional as F

N_PAIRS, LOCAL_BATCH, IMG_DIM, TXT_DIM, EMB_DIM = 32, 4, 6, 5, 4

class TinyJoint(nn.Module):
    "Two linear projections into one L2-normalised space (dot-product `sim`), an instance classifier, optional dropout."
    def __init__(self, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.img_proj, self.txt_proj = nn.Linear(IMG_DIM, EMB_DIM), nn.Linear(TXT_DIM, EMB_DIM)
        self.classifier, self.drop = nn.Linear(EMB_DIM, N_PAIRS, bias=False), nn.Dropout(dropout)
    def embed_images(self, x): return F.normalize(self.img_proj(self.drop(x)), dim=-1)
    def embed_captions(self, x): return F.normalize(self.txt_proj(x), dim=-1)
    def sim(self, a, b): return a @ b.T

class Pairs(torch.utils.data.Dataset):
    "Fixed random image/caption features; `set_epoch` is recorded so that the loss function knows the epoch."
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.img, self.cap, self.epoch = torch.randn(N_PAIRS, IMG_DIM, generator=g), torch.randn(N_PAIRS, TXT_DIM, generator=g), 0
    def set_epoch(self, epoch): self.epoch = epoch
    def __len__(self): return N_PAIRS
    def __getitem__(self, i): return self.img[i], self.cap[i], i

def loader(batch_size: int, shuffle: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(Pairs(), batch_size=batch_size, shuffle=shuffle, drop_last=True,
                                       generator=torch.Generator().manual_seed(0))

def make_loss(kind: str, seen: list | None = None):
    "`loss_fn(model, batch)` of `kind` (infonce, vse0, vsepp, instance); appends (epoch, item ids) to `seen`."
    from crossmodal_course.losses import infonce_loss, instance_loss, triplet_ranking_loss
    def loss_fn(model, batch):
        img, cap, idx = batch
        if seen is not None: seen.append((loader_epoch[0], idx.tolist()))
        v, t = model.embed_images(img), model.embed_captions(cap)
        if kind == "instance": return instance_loss(v, t, idx, model.classifier, 5.0)
        sims = model.sim(v, t)                 # under fit's DDP with gather_negatives: the global batch
        if kind == "infonce": return infonce_loss(sims, 0.1)
        return triplet_ranking_loss(sims, 0.2, hardest=kind == "vsepp")
    return loss_fn

loader_epoch = [0]

def grads_of(model): return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}

def main(out: Path):
    import crossmodal_course.training as T
    info = T.init_distributed()
    assert info.world_size == 2 and info.backend == "gloo", info
    res = {"info": (info.rank, info.world_size, info.backend)}
    saves = []
    real_save = T.atomic_torch_save
    T.atomic_torch_save = lambda obj, path: (saves.append(str(path)), real_save(obj, path))[1]

    # (b1) one step on a fixed global batch of 8: rank r holds pairs 4r..4r+3; DDP averages the gradients
    data = Pairs(); mine = slice(info.rank * LOCAL_BATCH, (info.rank + 1) * LOCAL_BATCH)
    batch = (data.img[mine], data.cap[mine], torch.arange(N_PAIRS)[mine])
    res["step"] = {}
    for kind in ("infonce", "vse0", "vsepp", "instance"):
        for gather in (True, False):
            model = TinyJoint()
            step = T.DDP(T._LossModule(model, make_loss(kind), gather), **T._ddp_args(torch.device("cpu"), None))   # as fit wraps it
            loss = step(batch); loss.backward()
            res["step"][kind, gather] = (loss.item(), grads_of(model))

    # (a) + (b2): fit, 2 epochs, shuffled shards; record the items every rank sees in each epoch
    seen = []
    def set_epoch_spy(ds):
        orig = ds.set_epoch
        def f(e): loader_epoch[0] = e; orig(e)
        ds.set_epoch = f
        return ds
    dl = loader(LOCAL_BATCH, shuffle=True); set_epoch_spy(dl.dataset)
    T.fit(TinyJoint(), make_loss("infonce", seen), dl, 2, lr=1e-2, seed=0)
    res["seen"] = seen
    # fit with gathered InfoNCE, unshuffled: compared with one process on batches of 8
    dl = loader(LOCAL_BATCH, shuffle=False); set_epoch_spy(dl.dataset)
    model = TinyJoint(); h = T.fit(model, make_loss("infonce"), dl, 2, lr=1e-2, seed=0)
    res["fit_losses"], res["fit_state"] = h.losses, {k: v.clone() for k, v in model.state_dict().items()}

    # evaluation once (rank 0), checkpoints from rank 0, exact resume with 2 processes, then (c) a checkpoint for 1 process
    evals = []
    def eval_fn(m):
        evals.append(1)
        with torch.no_grad(): v, t = m.embed_images(data.img), m.embed_captions(data.cap)
        return {"r1": (m.sim(v, t).argmax(1) == torch.arange(N_PAIRS)).float().mean().item() * 100}
    kw = dict(lr=1e-2, eval_fn=eval_fn, select="r1", seed=0)
    full = TinyJoint(dropout=0.2); h_full = T.fit(full, make_loss("vse0"), loader(LOCAL_BATCH, True), 3, ckpt_path=out / "full.pt", **kw)
    T.fit(TinyJoint(dropout=0.2), make_loss("vse0"), loader(LOCAL_BATCH, True), 3, ckpt_path=out / "resumed.pt", stop_after=1, **kw)
    resumed = TinyJoint(dropout=0.2, seed=7)
    h_res = T.fit(resumed, make_loss("vse0"), loader(LOCAL_BATCH, True), 3, ckpt_path=out / "resumed.pt", **kw)
    res["resume"] = {"full": (h_full.losses, h_full.metrics), "resumed": (h_res.losses, h_res.metrics),
                     "same_weights": all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))}
    h2 = T.fit(TinyJoint(dropout=0.2), make_loss("vse0"), loader(LOCAL_BATCH, True), 3, ckpt_path=out / "for_one.pt", stop_after=2, **kw)
    res["for_one"] = (h2.losses, h2.metrics)
    res["evals"], res["saves"] = len(evals), saves
    torch.save(res, out / f"rank{info.rank}.pt")

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(Path(sys.argv[1]))
