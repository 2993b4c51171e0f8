"""Checks of `crossmodal_course.text` that do not fit a notebook: word-vector files in all three formats and every way
they can be damaged (errors name file and line), out-of-vocabulary handling, the GloVe loss and co-occurrence on
hand-computed cases, the sequence encoders' padding invariance and gradients, reproducibility across processes, and
the registered CCA methods."""
import os, struct, subprocess, sys
from collections import Counter

import numpy as np
import pytest
import torch

from crossmodal_course.core import METHODS, retrieval_metrics
from crossmodal_course.data import DataError, Vocab, pad_captions, shapes_dataset
from crossmodal_course.text import (
    GRUEncoder, GloVe, TextCNN, bow_vectorizer, cooccurrence, detect_vector_format, embedding_from_vectors,
    glove_loss, glove_weight, idf_weights, keyed_vectors, length_mask, load_word_vectors, nearest_words,
    neighbour_precision, relation_twins, save_word_vectors, sentence_vectors, skipgram_pairs, text_cca_method,
    text_featurizer, train_glove, train_word2vec, vocab_coverage, word_order_probe)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    "Small matrices and models: one BLAS and torch thread is much faster than two on a shared, loaded CPU."
    from threadpoolctl import threadpool_limits
    before = torch.get_num_threads(); torch.set_num_threads(1)
    with threadpool_limits(1): yield
    torch.set_num_threads(before)


WORDS = ["red", "blue", "circle", "square", "above"]
VECS = np.arange(len(WORDS) * 3, dtype=np.float32).reshape(len(WORDS), 3) / 10 - 0.5


@pytest.fixture
def kv():
    return keyed_vectors(WORDS, VECS)


def _error(fn) -> str:
    with pytest.raises(DataError) as info: fn()
    return str(info.value)


# ---------------------------------------------------------------- word-vector files

def _glove_lines():
    return [w + " " + " ".join(f"{x:.6g}" for x in v) for w, v in zip(WORDS, VECS)]


@pytest.mark.parametrize("fmt, name", [("glove", "v.txt"), ("word2vec", "v.vec"), ("word2vec-binary", "v.bin")])
def test_round_trip_every_format(tmp_path, kv, fmt, name):
    path = save_word_vectors(kv, tmp_path / name, fmt)
    assert detect_vector_format(path) == fmt
    back = load_word_vectors(path)                      # format detected
    assert back.index_to_key == WORDS
    np.testing.assert_allclose(back.vectors, VECS, atol=1e-6)
    same = load_word_vectors(path, format=fmt)
    np.testing.assert_array_equal(same.vectors, back.vectors)
    only = load_word_vectors(path, words=["blue", "zebra", "above"])
    assert only.index_to_key == ["blue", "above"]
    np.testing.assert_allclose(only["above"], VECS[4], atol=1e-6)
    assert load_word_vectors(path, limit=2).index_to_key == WORDS[:2]


def test_glove_file_written_by_hand(tmp_path):
    """The standard GloVe layout: no header, `word v1 ... vd`; a word containing spaces (as in glove.840B) is kept."""
    path = tmp_path / "glove.6B.3d.txt"
    path.write_text("the 0.1 0.2 0.3\n, -1 0 1e-3\n. . . 4 5 6\n\nDog 1 1 1\n")
    kv = load_word_vectors(path)
    assert kv.index_to_key == ["the", ",", ". . .", "Dog"]
    np.testing.assert_allclose(kv[". . ."], [4, 5, 6])
    np.testing.assert_allclose(kv[","], [-1, 0, 1e-3])


def test_glove_gzip(tmp_path):
    import gzip
    path = tmp_path / "v.txt.gz"
    with gzip.open(path, "wt") as f: f.write("\n".join(_glove_lines()) + "\n")
    np.testing.assert_allclose(load_word_vectors(path).vectors, VECS, atol=1e-6)


@pytest.mark.parametrize("line, expected", [
    ("blue 0.1 0.2", "line 3: expected a word and 3 numbers, got 2 values"),
    ("blue 0.1 0.2 0.3 0.4", "line 3: expected a word and 3 numbers, got 4 values"),
    ("blue 0.1 abc 0.3", "line 3: expected 3 numbers after the word 'blue'"),
    ("blue", "line 3: expected a word and 3 numbers, got 0 values"),
])
def test_malformed_glove_line_names_file_and_line(tmp_path, line, expected):
    lines = _glove_lines(); lines[2] = line
    path = tmp_path / "bad.txt"; path.write_text("\n".join(lines) + "\n")
    msg = _error(lambda: load_word_vectors(path))
    assert str(path) in msg and expected in msg


def test_malformed_line_of_an_unrequested_word_still_fails(tmp_path):
    lines = _glove_lines(); lines[3] = "square 1 2"
    path = tmp_path / "bad.txt"; path.write_text("\n".join(lines) + "\n")
    assert "line 4:" in _error(lambda: load_word_vectors(path, words=["red"]))


def test_glove_first_line_without_vector(tmp_path):
    path = tmp_path / "bad.txt"; path.write_text("lonely\nred 1 2\n")
    msg = _error(lambda: load_word_vectors(path))
    assert "line 1:" in msg and "followed by its vector" in msg


def test_glove_not_utf8(tmp_path):
    path = tmp_path / "bad.txt"; path.write_bytes(b"red 1 2\nbl\xffe 3 4\n")
    assert "not UTF-8" in _error(lambda: load_word_vectors(path))


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert "no vectors" in _error(lambda: load_word_vectors(tmp_path / "empty.txt"))
    assert "not found" in _error(lambda: load_word_vectors(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="unknown format"): load_word_vectors(tmp_path / "empty.txt", format="fasttext")


def test_repeated_words_keep_the_first(tmp_path):
    path = tmp_path / "dup.txt"; path.write_text("red 1 2\nblue 3 4\nred 5 6\n")
    with pytest.warns(UserWarning, match="1 repeated words"): kv = load_word_vectors(path)
    np.testing.assert_allclose(kv["red"], [1, 2])


def test_word2vec_text_errors_name_file_and_line(tmp_path, kv):
    path = save_word_vectors(kv, tmp_path / "v.vec", "word2vec")
    lines = path.read_text().splitlines()
    bad = lines.copy(); bad[3] = "circle 0.1 oops 0.3"                 # line 4
    path.write_text("\n".join(bad) + "\n")
    msg = _error(lambda: load_word_vectors(path, format="word2vec"))
    assert str(path) in msg and "line 4:" in msg
    bad = lines.copy(); bad[2] = "blue 0.1"                            # line 3: too few numbers
    path.write_text("\n".join(bad) + "\n")
    assert "line 3: expected a word and 3 numbers, got 1" in _error(lambda: load_word_vectors(path))
    path.write_text("\n".join(["9 3"] + lines[1:]) + "\n")             # the header promises more vectors
    msg = _error(lambda: load_word_vectors(path, format="word2vec"))
    assert "announces 9 vectors but the file has 5" in msg
    path.write_text("\n".join(["five three"] + lines[1:]) + "\n")
    assert "line 1: expected a word2vec header" in _error(lambda: load_word_vectors(path, format="word2vec"))


def test_word2vec_binary_truncated_or_not_binary(tmp_path, kv):
    path = save_word_vectors(kv, tmp_path / "v.bin", "word2vec-binary")
    data = path.read_bytes()
    path.write_bytes(data[:-7])                                         # cut inside the last vector
    msg = _error(lambda: load_word_vectors(path))
    assert str(path) in msg and "binary" in msg
    path.write_bytes(b"no header here\n" + data[data.index(b"\n") + 1:])
    assert "line 1: expected a word2vec header" in _error(lambda: load_word_vectors(path))


def test_word2vec_binary_layout(tmp_path):
    """A binary file written by hand in the C tool's layout: header, then `word` + space + little-endian float32s."""
    path = tmp_path / "hand.bin"
    with open(path, "wb") as f:
        f.write(b"2 2\n")
        f.write(b"red " + struct.pack("<2f", 0.5, -1.0) + b"\n")
        f.write(b"blue " + struct.pack("<2f", 2.0, 0.25) + b"\n")
    kv = load_word_vectors(path)
    assert kv.index_to_key == ["red", "blue"]
    np.testing.assert_array_equal(kv["blue"], np.array([2.0, 0.25], np.float32))


# ---------------------------------------------------------------- coverage and embeddings (out of vocabulary)

def _vocab():
    return Vocab.from_captions(["a red circle above a blue square", "a dog", "a red dog"])


def test_vocab_coverage_types_tokens_and_case(kv):
    vocab = _vocab()                              # words: a(4) red(2) dog(2) circle above blue square (1 each)
    cased = keyed_vectors(["Red", "circle", "BLUE", "red"], np.ones((4, 3)))
    cov = vocab_coverage(vocab, cased)
    assert cov["words"] == 7 and cov["found"] == 3                    # red (exact), circle, blue (via BLUE)
    assert cov["missing"] == ["a", "dog", "above", "square"]          # most frequent first, then alphabetical
    assert cov["type_coverage"] == pytest.approx(3 / 7)
    assert cov["token_coverage"] == pytest.approx((2 + 1 + 1) / 12)


def test_embedding_from_vectors_rows_and_report(kv):
    vocab = _vocab()
    emb, report = embedding_from_vectors(vocab, kv, seed=3)
    assert emb.weight.shape == (len(vocab), 3) and emb.padding_idx == vocab.pad_id
    assert torch.equal(emb.weight[vocab.pad_id], torch.zeros(3))
    for w in ("red", "blue", "circle", "square", "above"):
        np.testing.assert_allclose(emb.weight[vocab.stoi[w]].detach().numpy(), kv[w])
    assert report["from_vectors"] == 5 and report["random"] == 5                     # a, dog + <unk> <bos> <eos>
    assert sorted(report["random_words"]) == ["a", "dog"]
    assert report["init_std"] == pytest.approx(float(VECS.std()))
    assert emb.weight.requires_grad and not report["frozen"]
    again, _ = embedding_from_vectors(vocab, kv, seed=3)
    assert torch.equal(again.weight, emb.weight)                                    # seeded
    other, _ = embedding_from_vectors(vocab, kv, seed=4)
    assert not torch.equal(other.weight[vocab.stoi["dog"]], emb.weight[vocab.stoi["dog"]])
    frozen, rep = embedding_from_vectors(vocab, kv, freeze=True, init_std=0.0)
    assert not frozen.weight.requires_grad and rep["frozen"]
    assert torch.equal(frozen.weight[vocab.stoi["dog"]], torch.zeros(3))           # init_std=0: zero rows


def test_embedding_from_vectors_with_nothing_found():
    emb, report = embedding_from_vectors(_vocab(), keyed_vectors(["zebra"], [[1.0, 2.0]]))
    assert report["from_vectors"] == 0 and report["init_std"] == 0.1 and emb.weight.shape == (len(_vocab()), 2)


def test_sentence_vectors_skip_unknown_words(kv):
    s = sentence_vectors(["red zebra", "zebra", "", "red red blue"], kv)
    np.testing.assert_allclose(s[0], kv["red"])
    np.testing.assert_array_equal(s[1], np.zeros(3)); np.testing.assert_array_equal(s[2], np.zeros(3))
    np.testing.assert_allclose(s[3], (2 * kv["red"] + kv["blue"]) / 3, rtol=1e-6)
    w = sentence_vectors(["red blue"], kv, weights={"red": 3.0})                    # blue unseen: the largest weight, 3
    np.testing.assert_allclose(w[0], (kv["red"] + kv["blue"]) / 2, rtol=1e-6)


def test_idf_weights_and_bow_vectorizer():
    caps = ["a red circle", "a blue circle", "a red square"]
    tfidf = bow_vectorizer("tfidf").fit(caps)
    idf = idf_weights(tfidf)
    assert idf["a"] == pytest.approx(1.0) and idf["blue"] == pytest.approx(np.log(4 / 2) + 1)
    bow = bow_vectorizer("bow", min_df=2).fit(caps)
    assert sorted(bow.vocabulary_) == ["a", "circle", "red"]
    assert bow.transform(["A RED zebra"]).toarray().sum() == 2                      # tokenize lower-cases; zebra unknown


# ---------------------------------------------------------------- word2vec, GloVe

def test_skipgram_pairs_distances():
    pairs = skipgram_pairs(list("abcd"), 2)
    assert ("a", "c", 2) in pairs and ("a", "d", 3) not in pairs and len(pairs) == 10


def test_word2vec_reproducible_across_processes():
    caps = shapes_dataset("train").captions[:3000]
    here = train_word2vec(caps, vector_size=8, seed=5).vectors
    code = ("import sys, numpy as np; from crossmodal_course.data import shapes_dataset; "
            "from crossmodal_course.text import train_word2vec; "
            "v = train_word2vec(shapes_dataset('train').captions[:3000], vector_size=8, seed=5).vectors; "
            "sys.stdout.buffer.write(v.tobytes())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         env={**os.environ, "PYTHONHASHSEED": "777"}).stdout
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.float32).reshape(here.shape), here)


def test_glove_loss_hand_computed():
    w = torch.tensor([[1., 0.], [0., 1.]]); w_tilde = torch.tensor([[1., 1.], [0., 2.]])
    b = torch.tensor([0.5, -0.5]); b_tilde = torch.tensor([0., 1.])
    # entry (0, 1), X = 4: residual 0 + 0.5 + 1 - log 4; weight (4/10)^0.5 with x_max = 10, alpha = 0.5
    # entry (1, 1), X = 30: residual 2 - 0.5 + 1 - log 30; weight 1 (30 > x_max)
    J = glove_loss(w, w_tilde, b, b_tilde, torch.tensor([0, 1]), torch.tensor([1, 1]), torch.tensor([4., 30.]), x_max=10, alpha=0.5)
    expected = 0.4 ** 0.5 * (1.5 - np.log(4)) ** 2 + (2.5 - np.log(30)) ** 2
    assert J.item() == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(glove_weight(torch.tensor([0., 25., 100., 400.])), torch.tensor([0., 0.25 ** 0.75, 1., 1.]))


def test_glove_module_loss_matches_function_and_fits_a_tiny_matrix():
    X = cooccurrence(["a b c", "a b", "b c d", "a c"], ["a", "b", "c", "d"], window=2)
    model = GloVe(4, dim=3, seed=1)
    i, j, x = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([2., .5])
    assert torch.equal(model.loss(i, j, x), glove_loss(model.w, model.w_tilde, model.b, model.b_tilde, i, j, x))
    kv, losses = train_glove(X, ["a", "b", "c", "d"], dim=3, epochs=300, batch_size=4, lr=0.05, seed=0)
    assert losses[-1] < 0.01 * losses[0] and kv.vectors.shape == (4, 3)
    kv2, _ = train_glove(X, ["a", "b", "c", "d"], dim=3, epochs=5, optimizer="adagrad", seed=0)
    assert np.isfinite(kv2.vectors).all()
    with pytest.raises(ValueError, match="optimizer"): train_glove(X, list("abcd"), optimizer="sgd")
    with pytest.raises(ValueError, match="no nonzero"): train_glove(X * 0, list("abcd"))


def test_cooccurrence_weighting_and_unknown_words():
    X = cooccurrence(["x a y b", "b a"], ["a", "b"], window=3)       # x, y dropped before windowing: "a b" then "b a"
    assert X[0, 1] == X[1, 0] == 2.0
    U = cooccurrence(["a c b"], ["a", "b", "c"], window=2, distance_weighting=False)
    assert U[0, 1] == 1.0 and U[0, 2] == 1.0
    W = cooccurrence(["a c b"], ["a", "b", "c"], window=2)
    assert W[0, 1] == 0.5
    assert cooccurrence(["zebra"], ["a"], 2).nnz == 0
    with pytest.raises(ValueError, match="window"): cooccurrence(["a"], ["a"], 0)


def test_nearest_words_and_neighbour_precision(kv):
    near = nearest_words(kv, ["red", "zebra"], topn=2)
    assert list(near) == ["red"] and len(near["red"]) == 2 and near["red"][0].startswith("blue (")
    p = neighbour_precision(kv, {"colour": ["red", "blue"], "none": ["zebra"]}, k=1)
    assert p == {"colour": 1.0}


# ---------------------------------------------------------------- sequence encoders

def _batch(seed=0, n=7, vocab_size=30):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 9, (n,), generator=g)
    seqs = [torch.randint(4, vocab_size, (int(l),), generator=g).tolist() for l in lengths]
    return pad_captions(seqs)


def _encoders(emb):
    return [GRUEncoder(emb, 12), GRUEncoder(emb, 12, pooling="mean"), GRUEncoder(emb, 12, num_layers=2, bidirectional=False),
            TextCNN(emb, 10, n_blocks=2, kernel_size=2), TextCNN(emb, 10, n_blocks=3, kernel_size=3),
            TextCNN(emb, 10, n_blocks=1, kernel_size=4)]


@pytest.mark.parametrize("k", range(6))
def test_encoder_shapes_and_padding_invariance(k):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(30, 8, padding_idx=0)
    enc = _encoders(emb)[k].eval()
    tokens, lengths = _batch()
    with torch.no_grad():
        out = enc(tokens, lengths)
        assert out.shape == (len(tokens), enc.out_dim)
        longer = torch.cat([tokens, torch.zeros(len(tokens), 11, dtype=torch.long)], 1)
        torch.testing.assert_close(enc(longer, lengths), out, atol=1e-5, rtol=1e-5)
        for b in range(len(tokens)):                                  # each caption alone, without padding
            torch.testing.assert_close(enc(tokens[b:b + 1, :lengths[b]], lengths[b:b + 1]), out[b:b + 1], atol=1e-5, rtol=1e-5)
        junk = tokens.clone(); junk[length_mask(lengths, tokens.shape[1]).logical_not()] = 5
        torch.testing.assert_close(enc(junk, lengths), out, atol=1e-5, rtol=1e-5)   # whatever sits beyond the length


@pytest.mark.parametrize("k", range(6))
def test_frozen_embedding_gets_no_grad_and_the_rest_does(k):
    emb, _ = embedding_from_vectors(Vocab.from_captions([" ".join(f"w{i}" for i in range(26))]),
                                    keyed_vectors([f"w{i}" for i in range(10)], np.random.default_rng(0).normal(size=(10, 8))), freeze=True)
    enc = _encoders(emb)[k].train()
    tokens, lengths = _batch()
    enc(tokens, lengths).pow(2).sum().backward()
    assert enc.embedding.weight.grad is None
    for name, p in enc.named_parameters():
        if p.requires_grad: assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_trainable_embedding_gets_grad_except_pad():
    emb = torch.nn.Embedding(30, 8, padding_idx=0)
    tokens, lengths = _batch()
    for enc in _encoders(emb):
        emb.zero_grad()
        enc(tokens, lengths).sum().backward()
        assert emb.weight.grad[0].abs().sum() == 0
        assert emb.weight.grad[tokens[0, 0]].abs().sum() > 0


def test_encoder_argument_checks():
    with pytest.raises(ValueError, match="pooling"): GRUEncoder(torch.nn.Embedding(5, 2), pooling="max")


# ---------------------------------------------------------------- probe and registered methods

def test_word_order_probe_ties_and_empty():
    assert word_order_probe([0.5, 0.5, 0.2], [0.5, 0.4, 0.3]) == {"n": 3, "wins": 1 / 3, "ties": 1 / 3, "losses": 1 / 3}
    assert np.isnan(word_order_probe([], [])["wins"])


def test_relation_twins_are_false_for_their_image():
    test = shapes_dataset("test").subset(range(100))
    idx, twins = relation_twins(test)
    assert len(idx) > 10 and len(idx) == len(twins)
    for j, t in zip(idx, twins):
        assert Counter(test.captions[j].split()) - Counter(t.split()) <= Counter({"a": 1, "an": 1})


@pytest.mark.parametrize("name", ["bow-cca", "tfidf-cca", "word2vec-cca", "glove-cca"])
def test_registered_methods_quick(name):
    train, test = shapes_dataset("train").subset(range(600)), shapes_dataset("test").subset(range(60))
    sims = METHODS[name]["fn"](train, test, quick=True, seed=0)
    assert sims.shape == (60, 300) and np.isfinite(sims).all()
    if name in ("word2vec-cca", "glove-cca"):                                   # the ones that train: seeded, reproducible
        np.testing.assert_allclose(METHODS[name]["fn"](train, test, quick=True, seed=0), sims, atol=1e-5)
    m = retrieval_metrics(sims, img_of_caption=test.img_of_caption)
    assert m["rsum"] > 150                                                       # chance is about 2·(1 + 5 + 10)·100/60 ≈ 53


def test_text_featurizer_kinds():
    caps = shapes_dataset("train").captions[:500]
    for kind, dim in [("bow", None), ("tfidf", None), ("word2vec", 6), ("glove", 6)]:
        f = text_featurizer(kind, caps, dim=6 if dim else 100, glove_epochs=2)
        out = f(["a red circle", "zebra"])
        assert out.shape[0] == 2 and np.isfinite(out).all() and not out[1].any()   # an all-unknown caption: zeros
    f = text_featurizer("word2vec", caps, dim=6, weighting="tfidf")
    assert f(["a red circle"]).shape == (1, 6)
    with pytest.raises(ValueError, match="unknown text feature"): text_featurizer("elmo", caps)


def test_tfidf_cca_is_the_cca_baseline():
    """`tfidf-cca` is `01_data`'s `cca` baseline rebuilt from this module's parts (same TF-IDF, min_df=2, same CCA)."""
    train, test = shapes_dataset("train").subset(range(400)), shapes_dataset("test").subset(range(40))
    np.testing.assert_allclose(METHODS["tfidf-cca"]["fn"](train, test, quick=True, seed=0),
                               METHODS["cca"]["fn"](train, test, quick=True, seed=0), atol=1e-5)
