"""GXN on Flickr8k (real photos) against the course's best joint embedding, trained on train, reported on dev.

    python benchmarks/gxn_flickr8k.py [--root ../shared/data/flickr8k] [--seeds 0] [--threads 2] [--no-reference]

Rows (all over the same frozen ImageNet EfficientNet-Lite0 features at 224 px, `joint.PRETRAINED_SIDE`, cached per image):
  ranking only   `generative.ABLATION["ranking only (two branches)"]`: GXN's two order-embedding branches, no imagining;
  full GXN       `generative.GXN_CONFIG`: + the caption decoder (XE, then self-critical RL on CIDEr-D) and the text-to-image
                 GAN (real photos resized to 64×64 by `generative.gan_image`); the registered `gxn` recipe's stages;
  reference      `benchmarks/ranking_flickr8k.py --pretrained --loss infonce` (EfficientNet × GloVe, InfoNCE, dropout 0.3,
                 40 epochs, the epoch chosen on 10 % of train), run in this same process.
GXN trains on all 6,000 training images with its fixed stage lengths (no epoch selection); its vocabulary keeps words seen
at least 5 times (the decoder's output layer). For the full model, the greedy captions of the dev images are scored with
BLEU-4 and CIDEr-D (document frequencies from the training captions), and the RL stage's sampled reward and greedy
baseline are printed at its start and end. Seconds per stage are printed.
"""
import argparse, os, time
from pathlib import Path

import numpy as np
import torch

from crossmodal_course.core import Timer, mean_sd, retrieval_metrics
from crossmodal_course.data import Vocab
from crossmodal_course.generative import (ABLATION, GXN_CONFIG, CiderD, _references, caption_scores, combined_sim, gan_image,
                                          greedy_captions, gxn_sims, train_gxn)
from crossmodal_course.image import extract_features, pretrained_encoder
from crossmodal_course.joint import PRETRAINED_SIDE
import ranking_flickr8k
from ranking_flickr8k import DEFAULT_ROOT

ROWS = {"ranking only": ABLATION["ranking only (two branches)"], "full GXN": GXN_CONFIG}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--no-reference", action="store_true", help="skip the joint-embedding reference row")
    a = p.parse_args(argv)
    splits = ranking_flickr8k.load_splits(a.root, a.threads)
    if splits is None: return None
    train, dev = splits
    with Timer() as t_feat:
        enc = pretrained_encoder(PRETRAINED_SIDE["image"], input_size=PRETRAINED_SIDE["image_size"])
        f_train, f_dev = extract_features(enc, train, batch_size=64), extract_features(enc, dev, batch_size=64)
    vocab = Vocab.from_captions(train.captions, min_freq=5)
    cider = CiderD(_references(train))
    print(f"train {len(train)} images / {train.n_captions} captions, dev {len(dev)} / {dev.n_captions}; features "
          f"{f_train.shape[1]}-d in {t_feat.seconds:.0f} s (≈0 when cached); vocabulary {len(vocab)}", flush=True)

    results = {name: [] for name in ROWS}
    memo = {}
    for seed in a.seeds:
        for name, cfg in ROWS.items():
            with Timer() as t:
                model, log = train_gxn(train, f_train, vocab, cfg, seed=seed, memo=memo, cider=cider, image_tf=gan_image)
                m = retrieval_metrics(combined_sim(*gxn_sims(model, f_dev, dev, vocab), cfg.lam), img_of_caption=dev.img_of_caption)
            stages = ", ".join(f"{s} {sec:.0f} s" for s, sec in zip([s for s in log["stages"] if s not in log["reused"]], log["stage_seconds"][len(log["reused"]):]))
            row = {"rsum": m["rsum"], "s": t.seconds, **{f"{d} R@{k}": m[d][f"r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10)}}
            if cfg.i2t:
                row.update(caption_scores(greedy_captions(model, f_dev, vocab), dev, cider))
                r = [v for _, v in log["reward"]]; b = [v for _, v in log["baseline"]]
                row["rl"] = f"sampled reward {np.mean(r[:5]):.3f} → {np.mean(r[-5:]):.3f}, greedy baseline {np.mean(b[:5]):.3f} → {np.mean(b[-5:]):.3f}"
            results[name].append(row)
            print(f"seed {seed} {name:13s} dev rSum {m['rsum']:6.1f} in {t.seconds:.0f} s (stages: {stages or 'all reused'}; reused "
                  f"{', '.join(log['reused']) or 'none'})" + (f"; dev greedy captions BLEU-4 {row['BLEU-4']:.3f} CIDEr-D "
                  f"{row['CIDEr-D']:.3f}; RL {row['rl']}" if cfg.i2t else "") + f"; load {os.getloadavg()[0]:.2f}", flush=True)

    print(f"\nFlickr8k dev (1,000 images × 5,000 captions), R@K in % (means over {len(a.seeds)} seed(s)), seconds of training + "
          "evaluation per seed (features excluded: cached):")
    cols = [f"{d} R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]
    print(f"{'row':14s} " + " ".join(f"{c:>8s}" for c in cols) + f" {'dev rSum':>14s} {'s':>6s}")
    for name, rows in results.items():
        rs = [r["rsum"] for r in rows]
        print(f"{name:14s} " + " ".join(f"{np.mean([r[c] for r in rows]):8.1f}" for c in cols) +
              f" {mean_sd(rs) if len(rs) > 1 else f'{rs[0]:.1f}':>14s} {np.mean([r['s'] for r in rows]):6.0f}")
    full = results["full GXN"]
    print(f"full GXN, dev greedy captions: BLEU-4 {mean_sd([r['BLEU-4'] for r in full], 3)}, CIDEr-D {mean_sd([r['CIDEr-D'] for r in full], 3)}")
    if not a.no_reference:
        print("\nreference: the joint embedding (benchmarks/ranking_flickr8k.py --pretrained --loss infonce), same seeds:", flush=True)
        ranking_flickr8k.main(["--root", str(a.root), "--pretrained", "--loss", "infonce", "--threads", str(a.threads),
                               "--seeds", *map(str, a.seeds)])
    if a.no_reference: print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return results


if __name__ == "__main__":
    main()
