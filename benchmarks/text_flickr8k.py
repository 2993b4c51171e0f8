"""The experiment of `02_text` on real captions: Flickr8k, trained on `train` (6,000 images), evaluated on `dev` (1,000).

Fixed image features (`simple_image_features` of `01_data`: thumbnail, colour and gradient histograms) against four
fixed caption features, each fitted on the training captions only, mapped into one space by CCA (`fit_cca`, canonical
dimensions weighted by their correlation) -- exactly the registered methods `bow-cca`, `tfidf-cca`, `word2vec-cca`
and `glove-cca` (`text_cca_table` calls the same `fit_text_cca` with the same defaults):
  bow        word counts (scikit-learn CountVectorizer, words in at least 2 training captions);
  tfidf      TF-IDF of the same words;
  word2vec   mean of skip-gram vectors (gensim, 100 dimensions, window 5, words seen at least twice, seed 0, 1 worker);
  glove      mean of GloVe vectors trained by `train_glove` (PyTorch, 100 dimensions, window 5, 1/d weighting,
             x_max 100, alpha 3/4, Adam, 25 epochs over the nonzero co-occurrences).
Prints Recall@1/5/10 in both directions and rSum on the 1,000 dev images x 5,000 dev captions, the nearest words of a
few queries for word2vec and GloVe (and GloVe 6B, with its coverage of the training vocabulary, when the `pretrained`
extra is installed), and wall-clock seconds (image features once; each method's fit + embedding), with
the load average (a shared machine). Flickr8k has no scene annotations, so there is no word-order probe here.

    python benchmarks/text_flickr8k.py [--root PATH] [--quick] [--threads 1] [--seed 0]
"""
import argparse, os, time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from crossmodal_course.core import Timer
from crossmodal_course.data import tokenize
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.data import Vocab
from crossmodal_course.text import (TEXT_FEATURES, MissingExtraError, cooccurrence, load_pretrained_vectors, text_cca_table,
                                    train_glove, train_word2vec, vocab_coverage)

DEFAULT_ROOT = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))
QUERIES = ["dog", "red", "man", "running", "water", "snow"]


def neighbours(train_captions, seed: int) -> pd.DataFrame:
    "Nearest words of QUERIES for the experiment's word2vec and GloVe settings."
    w2v = train_word2vec(train_captions, sg=1, vector_size=100, window=5, min_count=2, seed=seed)
    counts = Counter(w for c in train_captions for w in tokenize(c))
    words = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
    X = cooccurrence(train_captions, words, window=5)
    glove, _ = train_glove(X, words, dim=100, epochs=25, batch_size=int(np.clip(X.nnz // 64, 64, 16384)), seed=seed)
    sources = [("word2vec", w2v), ("GloVe", glove)]
    try: sources.append(("GloVe 6B (pretrained, 50k most frequent words)", load_pretrained_vectors("glove-6b-50d", limit=50_000)))
    except MissingExtraError as e: print(f"no GloVe 6B column: {e}")
    return pd.DataFrame({name: {q: ", ".join(w for w, _ in kv.most_similar(q, topn=4)) for q in QUERIES if q in kv.key_to_index}
                         for name, kv in sources})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--quick", action="store_true", help="2,000 training images and 10 GloVe epochs, as `reproduce --quick`")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (1: small GloVe steps and CCA's eigendecompositions run fastest on a shared CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-neighbours", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    if not (args.root / "Flickr8k_text" / "Flickr8k.token.txt").is_file():
        print(f"Flickr8k not found under {args.root}; set CROSSMODAL_FLICKR8K or pass --root"); return 1
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; torch and BLAS threads {args.threads}")
    t0 = time.perf_counter()
    with Timer() as t_load:
        train, dev = load_flickr8k(args.root, "train"), load_flickr8k(args.root, "dev")
    print(f"loaded Flickr8k: train {len(train)} images / {train.n_captions} captions, dev {len(dev)} / {dev.n_captions} "
          f"in {t_load.seconds:.1f} s")
    vocab = Vocab.from_captions(train.captions, min_freq=2)
    try:
        cov = vocab_coverage(vocab, load_pretrained_vectors("glove-6b-50d", words=vocab.itos[4:]))
        print(f"GloVe 6B covers {cov['found']:,} of {cov['words']:,} training words seen at least twice ({cov['type_coverage']:.1%}; "
              f"{cov['token_coverage']:.2%} of their tokens); most frequent missing: {cov['missing'][:10]}")
    except MissingExtraError as e: print(f"no GloVe 6B coverage: {e}")
    table = text_cca_table(train, dev, TEXT_FEATURES, quick=args.quick, seed=args.seed)
    pd.set_option("display.width", 200)
    print(f"\nFixed text features + CCA on Flickr8k dev ({table.attrs['train_images']} training images; "
          f"image features for train + dev: {table.attrs['image_feature_seconds']:.1f} s):")
    print(table.round(1).to_string())
    if not args.no_neighbours:
        with Timer() as t_nb: nb = neighbours(train.captions, args.seed)
        print(f"\nNearest words (trained on the training captions, {t_nb.seconds:.1f} s):")
        print(nb.to_string())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
