"""Train a joint embedding on Flickr8k train and evaluate on dev; print rSum, time, pairs/s and data-loading share.

    python benchmarks/ranking_flickr8k.py [--root ../shared/data/flickr8k] [--loss infonce] [--epochs 10] [--threads 1]

The image side is the small CNN of 03_image trained on the caption-word proxy task (cached), kept frozen (stage I),
so each training step runs the text encoder and the projections; --image-train top fine-tunes the CNN's last stage.
Data-loading share = time spent waiting for the next batch / total step time, measured around the loader."""
import argparse, json, os, time
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
from crossmodal_course.core import Timer, retrieval_metrics
from crossmodal_course.data import Vocab
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.image import proxy_image_encoder
from crossmodal_course.joint import JointConfig, embed_split, split_sims, train_joint
import crossmodal_course.joint as joint

p = argparse.ArgumentParser()
p.add_argument("--root", default=os.environ.get("CROSSMODAL_FLICKR8K", str(Path(__file__).resolve().parents[2] / "shared/data/flickr8k")))
p.add_argument("--loss", default="infonce")
p.add_argument("--text-encoder", default="gru")
p.add_argument("--epochs", type=int, default=12)
p.add_argument("--image-train", default="frozen", choices=["frozen", "top", "all"], help="how much of the CNN trains (04a_joint)")
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
if not Path(a.root).is_dir(): raise SystemExit(f"Flickr8k not found at {a.root}")

class TimedLoader:
    "Wraps a DataLoader and accumulates the seconds spent waiting for batches."
    def __init__(self, dl): self.dl, self.wait, self.batches = dl, 0.0, 0
    def __len__(self): return len(self.dl)
    def __getattr__(self, name): return getattr(self.dl, name)
    def __iter__(self):
        it = iter(self.dl)
        while True:
            t0 = time.perf_counter()
            try: b = next(it)
            except StopIteration: return
            self.wait += time.perf_counter() - t0; self.batches += 1
            yield b

timed = {}
_pair_loader = joint.pair_loader
def pair_loader_timed(*args, **kw):
    timed["dl"] = TimedLoader(_pair_loader(*args, **kw)); return timed["dl"]
joint.pair_loader = pair_loader_timed         # train_joint calls the name bound in crossmodal_course.joint

with Timer() as t_load:
    train, dev = load_flickr8k(a.root, "train"), load_flickr8k(a.root, "dev")
with Timer() as t_cnn: cnn = proxy_image_encoder(train, seed=0)
vocab = Vocab.from_captions(train.captions, min_freq=2)
cfg = JointConfig(loss=a.loss, text_encoder=a.text_encoder, n_epochs=a.epochs, warmup_epochs=1, image_train=a.image_train)
with Timer() as t_train: model, hist = train_joint(train, dev, vocab, cnn, cfg, seed=0, desc=a.loss)
dl = timed["dl"]
pairs = dl.batches * cfg.batch_size
img, cap = embed_split(model, dev, vocab)
m = retrieval_metrics(split_sims(model, img, cap), img_of_caption=dev.img_of_caption)
out = {"dataset": "flickr8k train -> dev (1,000 images / 5,000 captions)", "loss": a.loss, "text_encoder": a.text_encoder,
       "epochs": a.epochs, "image_train": a.image_train, "best_epoch": hist.best_epoch + 1, "threads": a.threads, "vocab": len(vocab),
       "rsum_dev": m["rsum"], "i2t": m["i2t"], "t2i": m["t2i"], "val_rsum_per_epoch": [round(x["rsum"], 1) for x in hist.metrics],
       "seconds": {"load": t_load.seconds, "image_cnn": t_cnn.seconds, "train_total": t_train.seconds, "fit": hist.seconds},
       "pairs_per_s": pairs / hist.seconds, "data_loading_share": dl.wait / hist.seconds}
print(json.dumps(out, indent=2))
print(f"Flickr8k dev rSum {m['rsum']:.1f} after {a.epochs} epochs ({hist.seconds:.0f} s of training, image CNN {t_cnn.seconds:.0f} s); "
      f"{out['pairs_per_s']:.0f} pairs/s; {100 * out['data_loading_share']:.1f}% of step time waiting for data")
