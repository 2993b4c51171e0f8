"""Joint embeddings on Flickr8k: image side × word initialisation × loss × feature dropout, trained on train, reported on dev.

    python benchmarks/ranking_flickr8k.py [--root ../shared/data/flickr8k] [--image proxy effnet] [--words random glove]
                                          [--loss vsepp infonce] [--feature-dropout 0 0.3] [--epochs 40]
                                          [--seeds 0 1 2] [--threads 2] [--pretrained]

Each row trains `crossmodal_course.joint.train_joint` (the joint embedding of 04a_joint: frozen image features →
dropout → linear projection, a bidirectional GRU over the caption → linear projection, a 256-d cosine space) with one recipe:

  image side   proxy   the small CNN of 03_image trained on the caption-word proxy task (`proxy_image_encoder`, 96×96);
               effnet  EfficientNet-Lite0 with its ImageNet weights (`pretrained_encoder`, the `pretrained` extra),
                       frozen, 1,280-d pooled features at --image-size (224, as `joint.PRETRAINED_SIDE`; the shared
                       copy's photos are 160×160);
  word init    random  a 50-d embedding drawn at random (N(0, 1), as nn.Embedding does);
               glove   the same 50-d embedding initialised from GloVe 6B (`pretrained_embedding`), trainable;
  loss         vsepp   the hardest-negative triplet loss after a 1-epoch warm-up of the sum over negatives;
               infonce symmetric InfoNCE at temperature 0.07;
  dropout      p       `JointConfig.feature_dropout`: each image-feature dimension zeroed with probability p while
                       training (0: none; 0.3 is `joint.PRETRAINED_SIDE`'s).

Both word inits use the same encoder (GRU, 128 hidden units per direction, 50-d words), so a row pair differs only in
the initial embedding. `--pretrained` is shorthand for the real-photo track's rows: effnet × glove (with --loss and
--feature-dropout). With several --seeds every row is trained once per seed (each seed holds out its own 10 %) and the
table gives mean ± sd; two rows are then compared with `joint.better_by_seeds` (a difference larger than the two sds).
Model selection: the epoch with the best rSum on 10% of the *training* images held out (dev is only reported).
Image features are cached per image (`extract_features`), so a second run, another seed's split or the dev split skips
the extraction; the first run's extraction time is printed. Seconds per row = its image side's network and feature
extraction (≈0 when cached) + training + evaluation.
Timings: wall-clock seconds and CPU seconds of this process (`time.process_time`), with the load average printed. On a
shared, loaded machine the wall-clock time is what one waited; the CPU seconds are close to what the same work takes on
an idle machine with --threads 1."""
import argparse, itertools, os, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossmodal_course.core import Timer, mean_sd, retrieval_metrics
from crossmodal_course.data import Vocab
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.image import split_holdout, extract_features, pretrained_encoder, proxy_image_encoder
from crossmodal_course.joint import PRETRAINED_SIDE, JointConfig, better_by_seeds, embed_split, split_sims, train_joint

DEFAULT_ROOT = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))
WORD_DIM = 50
METRICS = [f"{d} R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]


def load_splits(root: Path, threads: int):
    "Set the thread count, print it with the load average, and read Flickr8k train and dev from `root` (None, with a message, when it is not there)."
    if not (root / "Flickr8k_text").is_dir():
        print(f"Flickr8k not found at {root}; set CROSSMODAL_FLICKR8K or pass --root"); return None
    torch.set_num_threads(threads)
    print(f"threads {torch.get_num_threads()} of {os.cpu_count()} cores; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return load_flickr8k(root, "train"), load_flickr8k(root, "dev")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--image", nargs="+", default=["effnet", "proxy"], choices=["proxy", "effnet"])
    p.add_argument("--words", nargs="+", default=["glove", "random"], choices=["random", "glove"])
    p.add_argument("--loss", nargs="+", default=["infonce", "vsepp"], choices=["vsepp", "infonce"])
    p.add_argument("--feature-dropout", nargs="+", type=float, default=[PRETRAINED_SIDE["feature_dropout"]])
    p.add_argument("--pretrained", action="store_true", help="only the real-photo track's rows: effnet × glove")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--image-size", type=int, default=PRETRAINED_SIDE["image_size"])
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    a = p.parse_args(argv)
    if a.pretrained: a.image, a.words = ["effnet"], ["glove"]
    splits = load_splits(a.root, a.threads)
    if splits is None: return None
    train, dev = splits
    print(f"train {len(train)} images (10 % of them held out for epoch selection, per seed), dev {len(dev)} images / "
          f"{dev.n_captions} captions", flush=True)

    encoders, enc_seconds, enc_cpu, feats_dev = {}, {}, {}, {}
    for image in a.image:
        cpu0 = time.process_time()
        with Timer() as t:
            if image == "proxy": enc = proxy_image_encoder(train, seed=a.seeds[0])
            else: enc = pretrained_encoder("efficientnet-lite0", input_size=a.image_size)
            extract_features(enc, train, batch_size=64)   # computed once per image, then cached (train_joint reads them)
            feats_dev[image] = torch.as_tensor(extract_features(enc, dev, batch_size=64))
        encoders[image], enc_seconds[image], enc_cpu[image] = enc, t.seconds, time.process_time() - cpu0
        print(f"image side {image}: {enc.name} at {enc.input_size}×{enc.input_size}, {enc.out_dim}-d; network + features "
              f"for {len(train) + len(dev)} images in {t.seconds:.0f} s, {enc_cpu[image]:.0f} CPU s (≈0 if cached)", flush=True)
    if "proxy" in a.image and len(a.seeds) > 1:
        print(f"(the proxy CNN is trained once, with seed {a.seeds[0]}; the seeds vary the joint model and its holdout)")

    runs = []
    for seed in a.seeds:
        fit_idx, hold_idx = split_holdout(np.arange(len(train)), 0.1, seed)
        fit_part, hold = train.subset(fit_idx), train.subset(hold_idx)
        vocab = Vocab.from_captions(fit_part.captions, min_freq=2)
        for image, words, loss, drop in itertools.product(a.image, a.words, a.loss, a.feature_dropout):
            cfg = JointConfig(loss=loss, text_encoder="gru", n_epochs=a.epochs, warmup_epochs=1, word_dim=WORD_DIM, feature_dropout=drop)
            cpu0 = time.process_time()
            with Timer() as t:
                model, hist = train_joint(fit_part, hold, vocab, encoders[image], cfg, seed=seed, desc=f"{image}/{words}/{loss}/{drop}",
                                          word_vectors="glove-6b-50d" if words == "glove" else None)
                img, cap = embed_split(model, dev, vocab, feats_dev[image])
                m = retrieval_metrics(split_sims(model, img, cap), img_of_caption=dev.img_of_caption)
            cpu = time.process_time() - cpu0
            runs.append({"image": image, "words": words, "loss": loss, "dropout": drop, "seed": seed,
                         **{c: m[c[:3]][f"r{c.split('@')[1]}"] for c in METRICS}, "rsum": m["rsum"],
                         "best epoch": hist.best_epoch + 1, "train s": t.seconds, "train CPU s": cpu})
            print(f"  seed {seed} {image:6s} {words:6s} {loss:7s} dropout {drop:.2f}: dev rSum {m['rsum']:.1f} (best epoch "
                  f"{hist.best_epoch + 1} of {a.epochs}; held-out rSum per epoch {[round(x['rsum'], 1) for x in hist.metrics]}); "
                  f"{t.seconds:.0f} s, {cpu:.0f} CPU s; load {os.getloadavg()[0]:.2f}", flush=True)
    df = pd.DataFrame(runs)
    keys = ["image", "words", "loss", "dropout"]
    rows = []
    for k, g in df.groupby(keys, sort=False):
        row = dict(zip(keys, k), seeds=len(g), **{c: g[c].mean() for c in METRICS}, **{"dev rSum": mean_sd(g["rsum"]) if len(g) > 1 else f"{g['rsum'].iloc[0]:.1f}"},   # no "± 0.0" for one seed
                   **{"train s": g["train s"].mean(), "train CPU s": g["train CPU s"].mean(), "features s": enc_seconds[k[0]],
                      "features CPU s": enc_cpu[k[0]]})
        row["s (features + train)"] = row["train s"] + row["features s"]
        rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(f"\nFlickr8k dev (1,000 images × 5,000 captions), Recall@K in % (means over {len(a.seeds)} seed(s)), "
              "dev rSum (mean ± sd over seeds), seconds per seed:")
        print(table.round(1).to_string(index=False))
    means = df.groupby(keys, sort=False)["rsum"].mean()
    best = means.idxmax()
    b = table.set_index(keys).loc[best]
    print(f"\nbest row: {' × '.join(map(str, best))}: dev rSum {b['dev rSum']} in {b['s (features + train)']:.0f} s wall-clock "
          f"(features {b['features s']:.0f} s + training {b['train s']:.0f} s)")
    if len(a.feature_dropout) > 1:   # each row against the same row without / with another dropout
        for k, g in df.groupby(["image", "words", "loss"], sort=False):
            per = {d: [{"rsum": r} for r in g[g["dropout"] == d]["rsum"]] for d in a.feature_dropout}
            d0, d1 = min(a.feature_dropout), max(a.feature_dropout)
            print(f"{' × '.join(k)}: dropout {d1} vs {d0}: {mean_sd([r['rsum'] for r in per[d1]])} vs "
                  f"{mean_sd([r['rsum'] for r in per[d0]])} → {better_by_seeds(per[d1], per[d0])} ({len(a.seeds)} seed(s))")
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return table


if __name__ == "__main__":
    main()
