"""The experiment of `03_image` on real photos: Flickr8k, trained on `train` (6,000 images), evaluated on `dev` (1,000).

Four image representations, the same evaluations as in the notebook:
  random CNN        the small ResNet of `03_image`, randomly initialised (seed 0), never trained;
  trained CNN       the same network after a proxy task: multi-label prediction (BCE, the course's `fit`) of the
                    N_WORDS most frequent content words of the training captions (not stop words, at least 3 letters;
                    ranked by the number of training images whose captions use them). Target = the word occurs in at
                    least one of the image's 5 captions. Why: Flickr8k has no class labels, and these words -- dog,
                    man, water, white, ... -- are the visual concepts the captions talk about (the "visual concepts"
                    of Fang et al. 2015): features that predict them are what a caption-matching model needs. 10% of
                    the training images are held out to select the epoch (label mAP); dev is never used for training;
  ResNet-18         torchvision's ResNet-18 with weights=None (a big random network);
  hand-made         the `cca` baseline's features of `01_data` (thumbnail, colour and gradient histograms).
Evaluations on dev:
  image->image mAP@all, query removed from its gallery. Flickr8k has no classes, so relevance is a shared *consensus
                    concept*: one of the N_CONCEPTS most frequent training words that at least 2 of an image's 5
                    captions use; images without any such concept are left out of this evaluation. Chance is printed;
  cross-modal       CCA between the image features and TF-IDF caption vectors (vocabulary from the training captions,
                    at most 5,000 words), dimensions weighted by correlation; Recall@1/5/10 both ways and rSum on the
                    1,000 dev images x 5,000 dev captions.
Images are decoded once and resized to SIZE x SIZE (the CPU-sized input of the small CNN; every encoder gets the same
input). Timings are wall-clock seconds on this machine, with the load average printed (a shared machine).

    python benchmarks/image_flickr8k.py [--root PATH] [--size 96] [--epochs 4] [--threads 1]
"""
import argparse, os, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crossmodal_course.core import Timer, retrieval_metrics
from crossmodal_course.data import CaptionDataset, simple_image_features
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.data import tfidf_cca_sims
from crossmodal_course.image import (caption_word_targets, chance_map, channel_stats, extract_features,
                                     frequent_caption_words, image_retrieval_map, small_cnn, train_proxy_cnn,
                                     tv_encoder, _batch_uint8, split_holdout)
from crossmodal_course.core import progress

DEFAULT_ROOT = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))


def decode(ds: CaptionDataset, size: int, batch: int = 250) -> CaptionDataset:
    "The split with its images decoded once into a `(n, size, size, 3)` uint8 array."
    arr = np.concatenate([_batch_uint8(ds, range(s, min(s + batch, len(ds))), size)
                          for s in progress(range(0, len(ds), batch), desc=f"decode {ds.split}")])
    return CaptionDataset(name=f"{ds.name}-{size}px", split=ds.split, images=arr, captions=ds.captions,
                          img_of_caption=ds.img_of_caption, image_ids=ds.image_ids, info=dict(ds.info))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--n-words", type=int, default=100)
    p.add_argument("--n-concepts", type=int, default=20)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not (args.root / "Flickr8k_text").is_dir():
        print(f"Flickr8k not found at {args.root} (set CROSSMODAL_FLICKR8K): nothing to do"); return None
    torch.set_num_threads(args.threads)
    print(f"threads {torch.get_num_threads()} of {os.cpu_count()} cores; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    times = {}
    with Timer() as t:
        train = decode(load_flickr8k(args.root, "train"), args.size)
        dev = decode(load_flickr8k(args.root, "dev"), args.size)
    times["decode + resize 7,000 JPEGs"] = t.seconds
    print(f"train {len(train)} images / {train.n_captions} captions, dev {len(dev)} / {dev.n_captions}; "
          f"decoded to {args.size}×{args.size} in {t.seconds:.1f} s")

    # the proxy task: frequent caption words, chosen on the training part only
    fit_idx, hold_idx = split_holdout(np.arange(len(train)), 0.1, args.seed)
    fit_part, hold = train.subset(fit_idx), train.subset(hold_idx)
    words = frequent_caption_words(fit_part, args.n_words)
    t_fit, t_hold = caption_word_targets(fit_part, words), caption_word_targets(hold, words)
    print(f"proxy task: {len(words)} words, {t_fit.sum(1).mean():.1f} positive per image on average; "
          f"the first 30: {' '.join(words[:30])}")
    with Timer() as t:
        model, hist = train_proxy_cnn(fit_part, t_fit, hold, t_hold, input_size=args.size, epochs=args.epochs,
                                      seed=args.seed, desc="flickr8k proxy")
    times["proxy training (or cached)"] = t.seconds
    print(f"proxy training: {hist.seconds:.0f} s for {args.epochs} epochs on {len(fit_part)} images "
          f"({hist.seconds / args.epochs:.0f} s/epoch when trained); held-out label mAP per epoch "
          f"{[round(m['val_map'], 3) for m in hist.metrics]}, best epoch {hist.best_epoch + 1}; "
          f"chance (mean share of positives) {t_hold.mean(0).mean():.3f}")

    concepts = words[:args.n_concepts]
    dev_concepts = caption_word_targets(dev, concepts, min_captions=2)
    has = dev_concepts.sum(1) > 0
    print(f"image->image relevance: shared consensus concept among {concepts}; {has.sum()} of {len(dev)} dev images "
          f"have one; chance mAP@all {chance_map(dev_concepts[has]):.3f}")

    mean, std = channel_stats(train, args.size)
    encoders = {"random CNN": small_cnn(input_size=args.size, mean=mean, std=std, seed=args.seed),
                "trained CNN (caption-word proxy)": model.encoder,
                "ResNet-18, weights=None": tv_encoder("resnet18", weights=None, input_size=args.size, mean=mean, std=std),
                "hand-made features (01_data)": None}
    rows = {}
    for name, enc in encoders.items():
        with Timer() as tf:
            if enc is None: f_tr, f_dev = simple_image_features(train), simple_image_features(dev)
            else: f_tr, f_dev = extract_features(enc, train), extract_features(enc, dev)
        with Timer() as tc:
            sims = tfidf_cca_sims(f_tr, train, f_dev, dev, max_features=5000, dtype=np.float32, seed=args.seed)
        m = retrieval_metrics(sims, img_of_caption=dev.img_of_caption)
        rows[name] = {"dim": f_dev.shape[1], "i2i mAP cos": image_retrieval_map(f_dev[has], dev_concepts[has], "cosine"),
                      "i2i mAP euc": image_retrieval_map(f_dev[has], dev_concepts[has], "euclidean"),
                      "i2t R@1": m["i2t"]["r1"], "i2t R@5": m["i2t"]["r5"], "i2t R@10": m["i2t"]["r10"],
                      "t2i R@1": m["t2i"]["r1"], "t2i R@5": m["t2i"]["r5"], "t2i R@10": m["t2i"]["r10"],
                      "rsum": m["rsum"], "features s": tf.seconds, "CCA s": tc.seconds}
        print(f"  {name}: rSum {m['rsum']:.1f} (features {tf.seconds:.1f} s, CCA {tc.seconds:.1f} s)", flush=True)
    df = pd.DataFrame(rows).T
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.astype(float).round(3).to_string())
    print("timings (s):", {k: round(v, 1) for k, v in times.items()})
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return df


if __name__ == "__main__":
    main()
