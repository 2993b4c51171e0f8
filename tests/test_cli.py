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
    (np.array([["a"] * 10] * 2), "expected real numbers"),
    (np.ones((2, 10), dtype=complex), "expected real numbers"),
    (np.zeros((0, 0)), "an empty matrix"),
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
    run_ = res["run"]                     # a record of the run: what, which code, when, where, how long
    assert set(run_) >= {"command", "commit", "date", "machine", "seconds", "code"}
    assert run_["command"] == f"crossmodal-course reproduce --methods random --json {out}"
    from crossmodal_course.results import code_fingerprint
    assert run_["code"] == code_fingerprint() and run_["seconds"] > 0

def test_reproduce_across_datasets(tmp_path):
    from crossmodal_course.formats import write_flickr8k_fixture
    root = write_flickr8k_fixture(tmp_path / "flickr8k")
    out = tmp_path / "cross.json"
    r = run("reproduce", "--methods", "random", "--quick", "--eval-dataset", "flickr8k", "--eval-root", root, "--eval-split", "dev", "--json", out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert (res["dataset"], res["eval_dataset"], res["eval_split"]) == ("shapes", "flickr8k", "dev")
    assert "Results on flickr8k / dev (trained on shapes)" in r.stdout
    bad = run("reproduce", "--methods", "random", "--quick", "--eval-dataset", "flickr8k", "--eval-root", tmp_path / "nowhere")
    assert bad.returncode == 2 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr

def test_reproduce_unknown_method():
    r = run("reproduce", "--methods", "random,nope")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr

# --- a command line that answers fast, and says what it does -------------------------------------------------------

HEAVY = ("torch", "torchvision", "pandas", "sklearn", "crossmodal_course.data")

def heavy_imports(*argv):
    "Heavy modules imported when the program runs `argv` in a fresh Python."
    code = ("import sys\nfrom crossmodal_course.cli import main\n"
            f"try: main({list(map(str, argv))!r})\nexcept SystemExit: pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1].replace("'", '"'))

@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("metrics", "--help"), ("data", "--help"), ("metrics", "SIMS")])
def test_fast_commands_do_not_import_torch(argv, sims_file):
    argv = [str(sims_file[0]) if a == "SIMS" else a for a in argv]
    assert heavy_imports(*argv) == []

def test_version():
    from crossmodal_course import __version__
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"crossmodal-course {__version__}"

def test_every_option_has_help_and_every_command_examples():
    from crossmodal_course.cli import COMMANDS, build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for c in COMMANDS:
        assert c.examples, c.name
        for a in sub.choices[c.name]._actions: assert a.help, (c.name, a.dest)

def test_reproduce_help_lists_methods_and_examples():
    from crossmodal_course.results import load_methods
    r = run("reproduce", "--help")
    assert r.returncode == 0
    for name, m in load_methods().items(): assert f"  {name} " in r.stdout and m["description"][:30] in r.stdout
    assert "examples:" in r.stdout and "(Flickr8k here: dev)" not in r.stdout

def test_top_level_help_lists_environment():
    r = run("--help")
    assert r.returncode == 0 and "CROSSMODAL_COURSE_CACHE" in r.stdout and "CROSSMODAL_COURSE_PROGRESS" in r.stdout

def test_progress_bars_only_on_terminals():
    "Redirected to a file (not a terminal), a run with progress bars inside writes one line per stage, no bar updates."
    r = run("reproduce", "--methods", "vsepp", "--quick")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "it/s" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2, r.stderr        # the data line and one line for the method

def test_metrics_json_rounded(tmp_path):
    np.save(tmp_path / "s.npy", np.eye(1000).repeat(5, axis=1)[:, np.random.default_rng(0).permutation(5000)])
    r = run("metrics", tmp_path / "s.npy", "--json")
    assert r.returncode == 0
    for line in r.stdout.replace(",", "\n").split("\n"):
        num = line.split(":")[-1].strip(" }")
        if "." in num: assert len(num.split(".")[1]) <= 4, num

@pytest.mark.parametrize("argv,expected", [
    (("--methods", ""), "expected comma-separated"),
    (("--methods", ","), "expected comma-separated"),
    (("--methods", "random,random"), "named twice"),
    (("--methods", "random", "--seed", "-1"), "--seed -1"),
    (("--methods", "random", "--eval-root", "x"), "need --eval-dataset"),
])
def test_reproduce_bad_arguments_fail_before_training(argv, expected):
    r = run("reproduce", *argv)
    assert r.returncode == 2 and expected in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr

def test_reproduce_output_path_checked_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    for target, expected in [(tmp_path, "is a folder"), (tmp_path / "file" / "r.json", "is a file")]:
        r = run("reproduce", "--methods", "cca", "--json", target)
        assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert "cca: rSum" not in r.stderr                  # nothing was trained
    assert [p.name for p in tmp_path.iterdir()] == ["file"]    # and no temporary file left

@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_reproduce_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    r = run("reproduce", "--methods", "random", "--json", ro / "r.json")
    assert r.returncode == 2 and "no permission" in r.stderr


def test_reproduce_paired_fraction_gives_unpaired_data_only_to_methods_that_use_it(monkeypatch):
    "`paired_fraction`: a method with that parameter gets the whole split and the fraction; any other trains on the paired images only."
    from crossmodal_course import core
    from crossmodal_course.data import partial_pairing, shapes_dataset
    from crossmodal_course.results import reproduce
    seen = {}
    def plain(train, test, *, quick=False, seed=0):
        seen["plain"] = len(train); return np.zeros((len(test), test.n_captions))
    def pair_aware(train, test, *, quick=False, seed=0, paired_fraction=1.0):
        seen["aware"] = (len(train), paired_fraction); return np.zeros((len(test), test.n_captions))
    monkeypatch.setitem(core.METHODS, "probe-plain", {"fn": plain, "description": "test"})
    monkeypatch.setitem(core.METHODS, "probe-aware", {"fn": pair_aware, "description": "test"})
    res = reproduce("shapes", methods="probe-plain,probe-aware", quick=True, paired_fraction=0.25, seed=3, log=lambda s: None)
    n_train = len(shapes_dataset("train"))
    assert seen["plain"] == len(partial_pairing(shapes_dataset("train"), 0.25, 3).paired) == round(0.25 * n_train)
    assert seen["aware"] == (n_train, 0.25)
    assert res["paired_fraction"] == 0.25 and res["methods"]["probe-aware"]["uses_unpaired"] and not res["methods"]["probe-plain"]["uses_unpaired"]
    assert "paired_fraction=0.25" in res["run"]["command"]


def test_reproduce_save_model_hands_a_path_only_to_methods_that_save(monkeypatch, tmp_path):
    "`save_model`: a method with that parameter gets `<folder>/<name>.pt` and the result records it; others run as usual; bad uses are usage errors."
    from crossmodal_course import core
    from crossmodal_course.files import UsageError
    from crossmodal_course.results import reproduce
    seen = {}
    def plain(train, test, *, quick=False, seed=0):
        seen["plain"] = True; return np.zeros((len(test), test.n_captions))
    def saver(train, test, *, quick=False, seed=0, save_model=None):
        seen["saver"] = save_model; Path(save_model).write_bytes(b"model"); return np.zeros((len(test), test.n_captions))
    monkeypatch.setitem(core.METHODS, "probe-plain", {"fn": plain, "description": "test"})
    monkeypatch.setitem(core.METHODS, "probe-saver", {"fn": saver, "description": "test"})
    res = reproduce("shapes", methods="probe-plain,probe-saver", quick=True, save_model=tmp_path / "models", log=lambda s: None)
    assert seen["plain"] and seen["saver"] == tmp_path / "models" / "probe-saver.pt" and seen["saver"].read_bytes() == b"model"
    assert res["methods"]["probe-saver"]["model"] == str(tmp_path / "models" / "probe-saver.pt") and "model" not in res["methods"]["probe-plain"]
    (tmp_path / "file").write_text("x")
    for kw, msg in [({"save_model": tmp_path / "file"}, "is not a folder"), ({"save_model": tmp_path, "pretrained": True}, "not with --pretrained")]:
        with pytest.raises(UsageError, match=msg): reproduce("shapes", methods="probe-saver", quick=True, log=lambda s: None, **kw)
    with pytest.raises(UsageError, match="none of probe-plain saves a model"):
        reproduce("shapes", methods="probe-plain", quick=True, save_model=tmp_path / "m2", log=lambda s: None)


def test_joint_method_saves_the_model_whose_similarities_it_returns(tmp_path):
    "A joint method with `save_model` writes the model it evaluated: reloaded (`load_joint_model`) it gives the same test similarities, and `search index` reads it."
    from crossmodal_course.core import METHODS
    from crossmodal_course.data import shapes_dataset
    from crossmodal_course.evaluation import embed_images_with, embed_texts_with, load_joint_model
    from crossmodal_course.results import load_methods
    load_methods()
    train, test = shapes_dataset("train", n_images=200), shapes_dataset("test", n_images=30)
    path = tmp_path / "vse0.pt"
    sims = METHODS["vse0"]["fn"](train, test, quick=True, seed=0, save_model=path)
    model, vocab, enc, info = load_joint_model(path)
    again = embed_images_with(model, enc, test) @ embed_texts_with(model, vocab, test.captions).T
    np.testing.assert_allclose(again, sims, atol=1e-5)
    assert info["meta"]["method"] == "vse0" and info["meta"]["quick"] and info["config"].loss == "vse0"
    with pytest.raises(ValueError, match="pretrained"):
        METHODS["vse0"]["fn"](train, test, quick=True, seed=0, pretrained=True, save_model=tmp_path / "x.pt")


def test_reproduce_save_model_option_reaches_reproduce(tmp_path):
    "`--save-model` is wired from the command line to `reproduce`: asked of a method that cannot save, it is a one-line usage error."
    r = run("reproduce", "--methods", "random", "--save-model", tmp_path / "models")
    assert r.returncode == 2 and "none of random saves a model" in r.stderr and len(r.stderr.strip().splitlines()) == 1
