"""The `crossmodal-course` program, run as a user runs it: a subprocess, its output, its exit code."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from crossmodal_course.core import retrieval_metrics

PROG = Path(sys.executable).parent / "crossmodal-course"
FLICKR8K = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"))

def run(*args, cwd=None):
    return subprocess.run([str(PROG), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)

@pytest.fixture
def sims_file(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 16))
    sims = emb @ (np.repeat(emb, 5, axis=0) + rng.normal(size=(200, 16))).T
    path = tmp_path / "sims.npy"; np.save(path, sims)
    return path, sims

def test_metrics_json_matches_library(sims_file):
    path, sims = sims_file
    r = run("metrics", path, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"i2t", "t2i", "rsum"}
    for d in ("i2t", "t2i"): assert set(out[d]) == {"r1", "r5", "r10", "medr", "meanr"}
    ref = retrieval_metrics(sims)
    assert out["rsum"] == pytest.approx(ref["rsum"])
    for d in ("i2t", "t2i"): assert out[d] == pytest.approx(ref[d])

def test_metrics_table(sims_file):
    r = run("metrics", sims_file[0])
    assert r.returncode == 0 and "image→text" in r.stdout and "rSum" in r.stdout

def test_metrics_other_captions_per_image(tmp_path):
    np.save(tmp_path / "s.npy", np.eye(3).repeat(2, axis=1))
    out = json.loads(run("metrics", tmp_path / "s.npy", "--captions-per-image", "2", "--json").stdout)
    assert out["rsum"] == 600

@pytest.mark.parametrize("content,expected", [
    (None, "no such file"),
    (np.zeros((10, 49)), "need 50 caption columns"),
    (np.zeros((3, 3, 3)), "2-D"),
    (np.full((2, 10), np.nan), "NaN"),
    (np.array([["a"] * 10] * 2), "expected numbers"),
    (b"not a numpy file", "not a .npy"),
])
def test_metrics_bad_input_is_one_line_and_exit_2(tmp_path, content, expected):
    path = tmp_path / "x.npy"
    if isinstance(content, bytes): path.write_bytes(content)
    elif content is not None: np.save(path, content)
    r = run("metrics", path)
    assert r.returncode == 2
    assert expected in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(path) in r.stderr

def test_data_shapes_json():
    r = run("data", "shapes", "--split", "test", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["images"], s["captions"], s["classes"], s["missing_images"]) == (1000, 5000, 6, 0)

def test_data_bad_input(tmp_path):
    for args, expected in [(("data", "nosuch"), "nosuch"), (("data", "flickr8k"), "root"),
                           (("data", "flickr8k", "--root", tmp_path / "nowhere"), "nowhere")]:
        r = run(*args)
        assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr

@pytest.mark.skipif(not FLICKR8K.is_dir(), reason="Flickr8k is not at ../shared/data/flickr8k")
def test_data_flickr8k_dev():
    s = json.loads(run("data", "flickr8k", "--root", FLICKR8K, "--split", "dev", "--json").stdout)
    assert (s["images"], s["captions"], s["classes"], s["missing_images"]) == (1000, 5000, None, 0)

def test_reproduce_json(tmp_path):
    out = tmp_path / "res" / "r.json"
    r = run("reproduce", "--methods", "random", "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    m = res["methods"]["random"]
    assert res["dataset"] == "shapes" and res["eval_split"] == "test"
    assert set(m) >= {"i2t", "t2i", "rsum", "map_i2t", "map_t2i", "train_seconds"}
    assert 0 <= m["rsum"] < 30           # chance is about 3.2 on 1,000 images
    assert "random" in r.stdout and "rSum" in r.stdout

def test_reproduce_unknown_method():
    r = run("reproduce", "--methods", "random,nope")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr
