"""`crossmodal_course.evaluation`: protocols against folds computed by hand, bootstrap coverage, one-pass metrics, exact and
approximate search against brute force, the model file and the search index with its manifest, and the `search` command."""
import argparse, json, os
import numpy as np
import pytest
import torch
from crossmodal_course.core import average_precisions, i2t_ranks_loop, t2i_ranks_loop, retrieval_metrics, img_of_caption_for
from crossmodal_course import evaluation as ev

# ---------- protocols

def test_coco_1k_5fold_uses_consecutive_folds():
    rng = np.random.default_rng(0)
    sims = rng.standard_normal((10, 20)).astype(np.float32)          # 10 images, 2 captions each
    r = ev.coco_1k_5fold_metrics(sims, captions_per_image=2, fold_size=2, n_folds=5)
    assert r["protocol"] == "coco-1k-5fold" and len(r["folds"]) == 5
    for f in range(5):   # fold f: images 2f, 2f+1 and their captions 4f..4f+3, numbered from 0 again
        assert r["folds"][f] == retrieval_metrics(sims[2 * f:2 * f + 2, 4 * f:4 * f + 4], 2)
    assert r["mean"]["rsum"] == pytest.approx(np.mean([x["rsum"] for x in r["folds"]]))
    assert r["mean"]["i2t"]["medr"] == pytest.approx(np.mean([x["i2t"]["medr"] for x in r["folds"]]))

def test_protocol_by_hand():
    # two folds of one image with two captions each; fold 0: image 0 vs captions 0,1; fold 1: image 1 vs captions 2,3
    sims = np.array([[0.1, 0.9, 5.0, 5.0], [5.0, 5.0, 0.3, 0.2]], dtype=np.float32)
    r = ev.coco_1k_5fold_metrics(sims, captions_per_image=2, fold_size=1, n_folds=2)
    # inside each fold there is only one image: every rank is 1, whatever the other fold scores
    assert r["mean"]["rsum"] == 600
    # as one 2-image ranking (the "5K" protocol here) the cross-fold scores of 5.0 win: every query ranks 2nd
    whole = ev.coco_5k_metrics(sims, captions_per_image=2, n_images=2)["mean"]
    assert whole["i2t"]["r1"] == 0 and whole["t2i"]["r1"] == 0 and whole["rsum"] == 400

def test_protocol_sizes():
    sims = np.zeros((4, 20), np.float32)
    with pytest.raises(ValueError, match="needs 5000 images"): ev.coco_1k_5fold_metrics(sims)
    with pytest.raises(ValueError, match="needs 5000 images"): ev.coco_5k_metrics(sims)
    with pytest.raises(ValueError, match="exactly 1000"): ev.flickr_1k_metrics(sims)
    assert ev.flickr_1k_metrics(sims, n_images=4)["mean"] == retrieval_metrics(sims)

# ---------- one-pass metrics

def test_fast_ranks_equal_reference_loops_with_ties():
    rng = np.random.default_rng(1)
    for trial in range(40):
        n, cpi = int(rng.integers(1, 20)), int(rng.integers(1, 5))
        s = rng.integers(0, 3, size=(n, n * cpi)).astype(np.float32)
        i2t, t2i = ev.fast_ranks(s, cpi, threads=1 + trial % 2)
        assert (i2t == i2t_ranks_loop(s, cpi)).all() and (t2i == t2i_ranks_loop(s, cpi)).all()

def test_fast_ranks_unsorted_captions_fall_back():
    rng = np.random.default_rng(2)
    m = rng.permutation(np.repeat(np.arange(6), 3))
    s = rng.integers(0, 3, size=(6, 18)).astype(np.float32)
    i2t, t2i = ev.fast_ranks(s, img_of_caption=m)
    assert (i2t == i2t_ranks_loop(s, img_of_caption=m)).all() and (t2i == t2i_ranks_loop(s, img_of_caption=m)).all()

def test_fast_metrics_and_vsepp_loop_agree():
    s = np.random.default_rng(3).standard_normal((60, 300)).astype(np.float32)
    assert ev.fast_retrieval_metrics(s) == retrieval_metrics(s)
    vi, vt = ev.vsepp_loop_ranks(s)
    i2t, t2i = ev.fast_ranks(s)
    assert (vi + 1 == i2t).all() and (vt + 1 == t2i).all()
    assert ev.vsepp_metrics(vi)["r5"] == pytest.approx(retrieval_metrics(s)["i2t"]["r5"], abs=1e-12)

def test_fast_ranks_more_than_255_rows():
    # the uint8 accumulator is flushed every 255 rows: a caption beaten by every image must rank last
    n = 600
    s = np.ones((n, n), np.float32); s[np.arange(n), np.arange(n)] = 0
    i2t, t2i = ev.fast_ranks(s, 1)
    assert (t2i == t2i_ranks_loop(s, 1)).all() and (i2t == i2t_ranks_loop(s, 1)).all()

# ---------- bootstrap

def test_bootstrap_interval_coverage_near_nominal():
    rng = np.random.default_rng(0)
    n, p, trials = 200, 0.4, 200
    m = img_of_caption_for(n, 5)
    covered = 0
    for t in range(trials):
        i2t = np.where(rng.random(n) < p, 1, 50); t2i = np.where(rng.random(5 * n) < p, 3, 50)
        ci = ev.bootstrap_intervals(i2t, t2i, m, ks=(1, 5), n_resamples=300, seed=t)
        covered += ci["i2t_r1"][1] <= 100 * p <= ci["i2t_r1"][2]
    assert 0.89 <= covered / trials <= 0.99

def test_bootstrap_point_values_and_rsum_interval():
    rng = np.random.default_rng(4)
    e = rng.standard_normal((100, 8))
    s = (e @ (np.repeat(e, 5, 0) + rng.standard_normal((500, 8))).T).astype(np.float32)
    ref = retrieval_metrics(s)
    r = ev.rsum_interval(s, n_resamples=200)
    assert r["rsum"] == pytest.approx(ref["rsum"]) and r["low"] < r["rsum"] < r["high"]
    ci = ev.bootstrap_intervals(*ev.fast_ranks(s), img_of_caption_for(100, 5), n_resamples=200)
    assert ci["t2i_r5"][0] == pytest.approx(ref["t2i"]["r5"])

def test_paired_bootstrap():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((80, 400)).astype(np.float32)
    b = a.copy(); b[img_of_caption_for(80, 5), np.arange(400)] += 3
    r = ev.paired_bootstrap(b, a, n_resamples=300)
    assert r["diff"] > 0 and r["low"] > 0 and r["flip_share"] == 0
    r = ev.paired_bootstrap(a, a + 1e-3 * rng.standard_normal(a.shape).astype(np.float32), n_resamples=300)
    assert r["low"] <= 0 <= r["high"] or r["diff"] == 0
    with pytest.raises(ValueError, match="same split"): ev.paired_bootstrap(a, a[:, :200], captions_per_image=5)

def test_average_precisions_mean_is_map():
    from crossmodal_course.core import map_at_all
    rng = np.random.default_rng(6)
    s = rng.standard_normal((30, 50)); q, g = rng.integers(0, 4, 30), rng.integers(0, 4, 50)
    assert average_precisions(s, q, g).mean() == pytest.approx(map_at_all(s, q, g))
    v, lo, hi = ev.bootstrap_mean_interval(average_precisions(s, q, g), 200)
    assert lo <= v <= hi

# ---------- search

@pytest.fixture(scope="module")
def gallery():
    rng = np.random.default_rng(7)
    g = rng.standard_normal((3000, 24)).astype(np.float32); g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = rng.standard_normal((25, 24)).astype(np.float32)
    return q, g

@pytest.mark.parametrize("chunk,query_chunk", [(1, 1), (100, 7), (4096, 1024)])
def test_exact_topk_equals_brute_force(gallery, chunk, query_chunk):
    q, g = gallery
    s, i = ev.exact_topk(q, g, 10, chunk=chunk, query_chunk=query_chunk)
    rs, ri = ev.brute_force_topk(q, g, 10)
    assert (i == ri).all() and np.allclose(s, rs, atol=1e-5)

def test_faiss_indexes_against_exact(gallery):
    q, g = gallery
    _, ex = ev.brute_force_topk(q, g, 10)
    flat = ev.faiss_flat_index(g)
    assert ev.recall_at_k_vs_exact(flat.search(q, 10)[1], ex) == 1.0
    ivf = ev.ivf_flat_index(g, nlist=16)
    ev.set_search_param(ivf, 16)                        # every cell scanned: exact
    assert ev.recall_at_k_vs_exact(ivf.search(q, 10)[1], ex) == 1.0
    hnsw = ev.hnsw_index(g, M=16, ef_construction=200)
    rows = ev.recall_qps_curve(hnsw, q, ex, [10, 400])
    assert rows[-1]["recall"] >= 0.99 and rows[0]["recall"] <= rows[-1]["recall"] and rows[0]["qps"] > 0
    assert ev.index_nbytes(flat) >= g.nbytes
    with pytest.raises(ValueError, match="no search parameter"): ev.set_search_param(flat, 3)

def test_recall_vs_exact():
    assert ev.recall_at_k_vs_exact([[1, 2, 3]], [[3, 4, 1]], k=3) == pytest.approx(2 / 3)

# ---------- model file, index, manifest, command

@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from crossmodal_course.data import Vocab, shapes_dataset
    from crossmodal_course.image import small_cnn
    from crossmodal_course.joint import JointConfig, JointEmbedding, make_text_encoder
    tmp = tmp_path_factory.mktemp("search")
    ds = shapes_dataset("test", n_images=40)
    vocab = Vocab.from_captions(shapes_dataset("train", n_images=40).captions)
    config = JointConfig(loss="infonce", embed_dim=16)
    torch.manual_seed(0)
    cnn = small_cnn((8, 16), input_size=32, trainable=False)
    model = JointEmbedding(make_text_encoder("gru", vocab), cnn.out_dim, 16)
    ev.save_joint_model(tmp / "m.pt", model, vocab, config, cnn)
    torch.manual_seed(1)
    model2 = JointEmbedding(make_text_encoder("gru", vocab), cnn.out_dim, 16)
    ev.save_joint_model(tmp / "other.pt", model2, vocab, config, cnn)
    return tmp, ds, model, vocab, cnn

def test_model_file_round_trip(model_files):
    tmp, ds, model, vocab, cnn = model_files
    m, v, enc, info = ev.load_joint_model(tmp / "m.pt")
    assert v.itos == vocab.itos and info["fingerprint"] == ev.model_fingerprint(model, cnn)
    assert np.allclose(ev.embed_texts_with(m, v, ["a red circle"]), ev.embed_texts_with(model.eval(), vocab, ["a red circle"]), atol=1e-6)
    assert np.allclose(ev.embed_images_with(m, enc, ds), ev.embed_images_with(model, cnn, ds), atol=1e-6)
    assert not list(tmp.glob("*.tmp"))                   # written through a temporary file, renamed

def test_model_file_top_stage_round_trip(model_files, tmp_path):
    "A model whose CNN top stage was fine-tuned (infonce-top) saves and reloads; images embed through the trunk's maps."
    from crossmodal_course.joint import JointConfig, build_joint
    _, ds, _, vocab, cnn = model_files
    config = JointConfig(loss="infonce", embed_dim=16, image_train="top")
    torch.manual_seed(2)
    model = build_joint(vocab, cnn, config)
    with torch.no_grad():
        for p in model.img_encoder.parameters(): p.add_(0.01 * torch.randn_like(p))    # the top stage differs from the CNN's
    ev.save_joint_model(tmp_path / "top.pt", model, vocab, config, cnn)
    m, v, enc, info = ev.load_joint_model(tmp_path / "top.pt")
    assert info["config"].image_train == "top" and m.input_encoder is not None
    assert np.allclose(ev.embed_images_with(m, enc, ds), ev.embed_images_with(model.eval(), cnn, ds), atol=1e-5)
    whole = build_joint(vocab, cnn, JointConfig(embed_dim=16, image_train="all"))
    with pytest.raises(ValueError, match="reads images"): ev.save_joint_model(tmp_path / "all.pt", whole, vocab, config, cnn)

def test_train_out_is_searchable(tmp_path):
    "`crossmodal-course train --out` writes the file `search index --model` reads."
    import subprocess, sys
    from pathlib import Path
    prog = Path(sys.executable).parent / "crossmodal-course"
    env = dict(os.environ, CROSSMODAL_COURSE_PROGRESS="0")
    run = lambda *a: subprocess.run([str(prog), *map(str, a)], capture_output=True, text=True, timeout=900, env=env)
    r = run("train", "--method", "infonce-top", "--quick", "--epochs", "1", "--out", tmp_path / "m.pt")
    assert r.returncode == 0, r.stderr
    m, vocab, enc, info = ev.load_joint_model(tmp_path / "m.pt")
    assert info["meta"]["method"] == "infonce-top" and info["config"].image_train == "top"
    r = run("search", "index", "--model", tmp_path / "m.pt", "--dataset", "shapes", "--split", "val", "--out", tmp_path / "i.npz")
    assert r.returncode == 0 and "indexed 1000 images of shapes/val" in r.stdout, r.stderr
    r = run("search", "query", tmp_path / "i.npz", "a red circle", "--model", tmp_path / "m.pt", "--k", 2)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2 and "val-" in r.stdout, (r.stdout, r.stderr)

def test_model_file_errors(model_files, tmp_path):
    tmp = model_files[0]
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ev.SearchIndexError, match="not a joint model"): ev.load_joint_model(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"): ev.load_joint_model(tmp_path / "nope.pt")
    ck = torch.load(tmp / "m.pt", weights_only=True); ck["fingerprint"] = "0" * 16; torch.save(ck, tmp_path / "bad.pt")
    with pytest.raises(ev.SearchIndexError, match="damaged"): ev.load_joint_model(tmp_path / "bad.pt")

@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_index_query_equals_brute_force(model_files, kind):
    tmp, ds, model, vocab, cnn = model_files
    out = tmp / f"idx-{kind}.npz"
    man = ev.build_search_index(tmp / "m.pt", ds, out, kind, spec={"name": "shapes", "split": "test", "options": {"n_images": 40}})
    assert man["index"]["type"] == kind and man["dataset"]["n_images"] == 40 and man["model"]["fingerprint"]
    res = ev.query_search_index(out, tmp / "m.pt", ["a red circle", "two blue squares"], k=5, search_param=200)
    q = ev.embed_texts_with(model.eval(), vocab, ["a red circle", "two blue squares"])
    bs, bi = ev.brute_force_topk(q, ev.embed_images_with(model, cnn, ds), 5)
    for r, ids, sc in zip(res, bi, bs):
        assert [x["image"] for x in r] == list(ids) and np.allclose([x["score"] for x in r], sc, atol=1e-5)
        assert r[0]["ref"] == ds.image_ids[ids[0]]

def test_index_mismatch_errors(model_files):
    tmp, ds, *_ = model_files
    out = tmp / "idx-mm.npz"
    ev.build_search_index(tmp / "m.pt", ds, out, "flat", spec={"name": "shapes", "split": "test", "options": {"n_images": 40}})
    with pytest.raises(ev.IndexMismatchError, match="model fingerprint"): ev.query_search_index(out, tmp / "other.pt", "a red circle")
    from crossmodal_course.data import shapes_dataset
    manifest = ev.load_search_index(out)[0]
    other = shapes_dataset("val", n_images=40)
    with pytest.raises(ev.IndexMismatchError, match=r"dataset split: index built with 'test', given 'val'.*dataset fingerprint"):
        ev.check_index(manifest, dataset=other)
    assert ev.load_index_dataset(manifest).n_captions == ds.n_captions
    bad = dict(manifest, dataset=dict(manifest["dataset"], spec={"name": "shapes", "split": "test", "options": {"n_images": 41}}))
    with pytest.raises(ev.IndexMismatchError, match="n_images"): ev.load_index_dataset(bad)
    with pytest.raises(ev.SearchIndexError, match="no such index"): ev.load_search_index(tmp / "missing.npz")
    with pytest.raises(ValueError, match="vocabulary"): ev.query_search_index(out, tmp / "m.pt", "zebra xylophone")

def test_search_command(model_files, capsys):
    tmp = model_files[0]
    parser = argparse.ArgumentParser(prog="crossmodal-course"); ev.add_search_parser(parser.add_subparsers(dest="cmd"))
    def run(*argv):
        a = parser.parse_args(list(map(str, argv))); return a.func(a)
    assert run("search", "index", "--model", tmp / "m.pt", "--dataset", "shapes", "--split", "val", "--out", tmp / "cli.npz") == 0
    assert "indexed 1000 images of shapes/val" in capsys.readouterr().out
    assert run("search", "query", tmp / "cli.npz", "a red circle above a blue square", "--model", tmp / "m.pt", "--k", 3,
               "--show", tmp / "g.png") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].split()[0] == "1" and "val-" in out[0] and (tmp / "g.png").stat().st_size > 1000
    assert run("search", "query", tmp / "cli.npz", "a red circle", "--model", tmp / "m.pt", "--json") == 0
    j = json.loads(capsys.readouterr().out)
    assert j["query"] == "a red circle" and len(j["results"]) == 5
    with pytest.raises(ev.IndexMismatchError): run("search", "query", tmp / "cli.npz", "a red circle", "--model", tmp / "other.pt")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fast_ranks_refuse_non_finite_values(bad):
    "The one pass checks each row while it is in cache (no full-matrix temporary): a NaN or infinite score anywhere is an error naming its row."
    s = np.random.default_rng(0).standard_normal((30, 150)).astype(np.float32)
    s[17, 40] = bad
    with pytest.raises(ValueError, match="row 17 has 1"): ev.fast_ranks(s)
    with pytest.raises(ValueError, match="row 17"): ev.fast_ranks(s, threads=2)


def test_exact_topk_matches_faiss_flat_and_brute_force_on_ties():
    "The threshold-filtered search returns exactly the stable-sort top-k, ties included, and the same neighbours as FAISS's exact index."
    rng = np.random.default_rng(1)
    g = rng.integers(-3, 4, (20_000, 16)).astype(np.float32); q = rng.integers(-3, 4, (50, 16)).astype(np.float32)
    for chunk in (1, 9, 4096, 50_000):
        s, i = ev.exact_topk(q, g, 10, chunk=chunk, query_chunk=17)
        bs, bi = ev.brute_force_topk(q, g, 10)
        np.testing.assert_array_equal(i, bi); np.testing.assert_array_equal(s, bs)
    faiss = pytest.importorskip("faiss")
    gf = rng.standard_normal((20_000, 16)).astype(np.float32); qf = rng.standard_normal((50, 16)).astype(np.float32)
    _, fi = ev.faiss_flat_index(gf).search(qf, 10)
    assert ev.recall_at_k_vs_exact(fi, ev.exact_topk(qf, gf, 10)[1], 10) == 1.0
