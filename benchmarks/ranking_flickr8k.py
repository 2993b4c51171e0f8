"""Joint embeddings on Flickr8k: image side × word initialisation × loss, trained on train, reported on dev.

    python benchmarks/ranking_flickr8k.py [--root ../shared/data/flickr8k] [--image proxy effnet] [--words random glove]
                                          [--loss vsepp infonce] [--epochs 12] [--threads 2] [--pretrained]

Each row trains `crossmodal_course.joint.train_joint` (the joint embedding of 04a_joint: frozen image features →
linear projection, a bidirectional GRU over the caption → linear projection, a 256-d cosine space) with one recipe:

  image side   proxy   the small CNN of 03_image trained on the caption-word proxy task (`proxy_image_encoder`, 96×96);
               effnet  EfficientNet-Lite0 with its ImageNet weights (`pretrained_encoder`, the `pretrained` extra),
                       frozen, 1,280-d pooled features at --image-size (160: the size of the shared copy's photos);
  word init    random  a 50-d embedding drawn at random (N(0, 1), as nn.Embedding does);
               glove   the same 50-d embedding initialised from GloVe 6B (`pretrained_embedding`), trainable;
  loss         vsepp   the hardest-negative triplet loss after a 1-epoch warm-up of the sum over negatives;
               infonce symmetric InfoNCE at temperature 0.07.

Both word inits use the same encoder (GRU, 128 hidden units per direction, 50-d words), so a row pair differs only in
the initial embedding. `--pretrained` is shorthand for the real-photo track's row: effnet × glove (with --loss).
Model selection: the epoch with the best rSum on 10% of the *training* images held out (dev is only reported).
Image features are cached on disk (`extract_features`), so a second run skips the extraction; the first run's
extraction time is printed. Seconds per row = its image side's network and feature extraction (≈0 when cached) + training + evaluation.
Timings: wall-clock seconds and CPU seconds of this process (`time.process_time`), with the load average printed. On a
shared, loaded machine the wall-clock time is what one waited; the CPU seconds are close to what the same work takes on
an idle machine with --threads 1."""
import argparse, os, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossmodal_course.core import Timer, retrieval_metrics
from crossmodal_course.data import Vocab
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.image import split_holdout, extract_features, pretrained_encoder, proxy_image_encoder
from crossmodal_course.joint import JointConfig, embed_split, split_sims, train_joint

DEFAULT_ROOT = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))
WORD_DIM = 50


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--image", nargs="+", default=["effnet", "proxy"], choices=["proxy", "effnet"])
    p.add_argument("--words", nargs="+", default=["glove", "random"], choices=["random", "glove"])
    p.add_argument("--loss", nargs="+", default=["infonce", "vsepp"], choices=["vsepp", "infonce"])
    p.add_argument("--pretrained", action="store_true", help="only the real-photo track's rows: effnet × glove")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.pretrained: a.image, a.words = ["effnet"], ["glove"]
    if not (a.root / "Flickr8k_text").is_dir():
        print(f"Flickr8k not found at {a.root}; set CROSSMODAL_FLICKR8K or pass --root"); return None
    torch.set_num_threads(a.threads)
    print(f"threads {torch.get_num_threads()} of {os.cpu_count()} cores; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    train, dev = load_flickr8k(a.root, "train"), load_flickr8k(a.root, "dev")
    fit_idx, hold_idx = split_holdout(np.arange(len(train)), 0.1, a.seed)
    fit_part, hold = train.subset(fit_idx), train.subset(hold_idx)
    vocab = Vocab.from_captions(fit_part.captions, min_freq=2)
    print(f"train {len(fit_part)} images (+{len(hold)} held out for epoch selection), dev {len(dev)} images / "
          f"{dev.n_captions} captions; vocabulary {len(vocab)} words", flush=True)

    encoders, enc_seconds, enc_cpu = {}, {}, {}
    for image in a.image:
        cpu0 = time.process_time()
        with Timer() as t:
            if image == "proxy": enc = proxy_image_encoder(train, seed=a.seed)
            else: enc = pretrained_encoder("efficientnet-lite0", input_size=a.image_size)
            for ds in (fit_part, hold, dev): extract_features(enc, ds, batch_size=64)   # computed once, then cached (train_joint reads them)
        encoders[image], enc_seconds[image], enc_cpu[image] = enc, t.seconds, time.process_time() - cpu0
        print(f"image side {image}: {enc.name} at {enc.input_size}×{enc.input_size}, {enc.out_dim}-d; network + features "
              f"for {len(fit_part) + len(hold) + len(dev)} images in {t.seconds:.0f} s, {enc_cpu[image]:.0f} CPU s (≈0 if cached)", flush=True)

    rows = []
    for image in a.image:
        feats_dev = extract_features(encoders[image], dev)
        for words in a.words:
            for loss in a.loss:
                cfg = JointConfig(loss=loss, text_encoder="gru", n_epochs=a.epochs, warmup_epochs=1, word_dim=WORD_DIM)
                cpu0 = time.process_time()
                with Timer() as t:
                    model, hist = train_joint(fit_part, hold, vocab, encoders[image], cfg, seed=a.seed, desc=f"{image}/{words}/{loss}",
                                              word_vectors="glove-6b-50d" if words == "glove" else None)
                    img, cap = embed_split(model, dev, vocab, torch.as_tensor(feats_dev))
                    m = retrieval_metrics(split_sims(model, img, cap), img_of_caption=dev.img_of_caption)
                cpu = time.process_time() - cpu0
                row = {"image": image, "words": words, "loss": loss,
                       **{f"{d} R@{k}": m[d][f"r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10)},
                       "dev rSum": m["rsum"], "best epoch": hist.best_epoch + 1, "train s": t.seconds, "train CPU s": cpu,
                       "features s": enc_seconds[image], "features CPU s": enc_cpu[image]}
                rows.append(row)
                print(f"  {image:6s} {words:6s} {loss:7s} dev rSum {m['rsum']:.1f} (best epoch {hist.best_epoch + 1} of "
                      f"{a.epochs}; held-out rSum per epoch {[round(x['rsum'], 1) for x in hist.metrics]}); {t.seconds:.0f} s, {cpu:.0f} CPU s; "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    df = pd.DataFrame(rows)
    df["s (features + train)"] = df["train s"] + df["features s"]
    df["CPU s (features + train)"] = df["train CPU s"] + df["features CPU s"]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print("\nFlickr8k dev (1,000 images × 5,000 captions), Recall@K in %:")
        print(df.round(1).to_string(index=False))
    best = df.loc[df["dev rSum"].idxmax()]
    print(f"\nbest row: {best['image']} × {best['words']} × {best['loss']}: dev rSum {best['dev rSum']:.1f} in "
          f"{best['s (features + train)']:.0f} s wall-clock (features {best['features s']:.0f} s + training {best['train s']:.0f} s), "
          f"{best['CPU s (features + train)']:.0f} CPU s")
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return df


if __name__ == "__main__":
    main()
