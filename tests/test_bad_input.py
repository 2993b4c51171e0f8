"""Bad input and faults, as a user's mistakes and a machine's accidents produce them, run through the real console
script: each gives one line naming the file (and line or record) and what was expected, with exit code 2 — or is
handled correctly (a corrupt cache is rebuilt with one warning; Ctrl-C exits 130 with one line). Never a traceback."""
import json, os, signal, stat, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from crossmodal_course.formats import (write_coco_fixture, write_flickr8k_fixture, write_karpathy_fixture,
                                       write_pascal_fixture)

PROG = Path(sys.executable).parent / "crossmodal-course"

@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"

def run(*args, cache=None, timeout=600):
    env = os.environ | ({"CROSSMODAL_COURSE_CACHE": str(cache)} if cache else {})
    return subprocess.run([str(PROG), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)

def fails(r, *expected):
    "Exit code 2, one line on stderr holding every expected piece, no traceback."
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    for e in expected: assert str(e) in r.stderr, (e, r.stderr)

# 1. a corrupt cache is rebuilt with one warning; a killed write's orphan is cleaned up; files are not 0600
@pytest.mark.parametrize("damage", ["truncate", "bitflip"])     # zeroed and empty files: 00a_files and 01_data
def test_corrupt_cache_is_rebuilt_with_one_warning(cache, damage):
    args = ("data", "shapes", "--split", "val", "--json")
    first = run(*args, cache=cache)
    assert first.returncode == 0, first.stderr
    (path,) = cache.glob("shapes-val-*.npz")
    b = path.read_bytes()
    broken = {"truncate": b[:100_000], "zero": bytes(len(b)), "empty": b"",
              "bitflip": b[:len(b) // 2] + bytes([b[len(b) // 2] ^ 1]) + b[len(b) // 2 + 1:]}[damage]
    path.write_bytes(broken)
    again = run(*args, cache=cache)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert again.stderr.count("unreadable cache") == 1 and str(path) in again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    third = run(*args, cache=cache)
    assert third.returncode == 0 and third.stderr == ""                   # rebuilt: read back silently

def test_orphan_temporary_files_are_cleaned_and_modes_normal(cache):
    assert run("data", "shapes", "--split", "val", cache=cache).returncode == 0
    orphan = cache / "shapes-val-0123456789abcdef.npz.x1y2z3.tmp"; orphan.write_bytes(b"\0" * 1000)
    old = time.time() - 7200; os.utime(orphan, (old, old))
    assert run("data", "shapes", "--split", "val", cache=cache).returncode == 0
    assert not orphan.exists()
    (path,) = cache.glob("shapes-val-*.npz")
    umask = os.umask(0); os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask

# 2. nothing vanishes silently: images without captions are counted, warned and reported
def test_pascal_blank_sentence_files_are_counted(tmp_path):
    root = write_pascal_fixture(tmp_path / "pascal")
    for f in (root / "sentence" / "bird").iterdir(): f.write_text("  \n\n")        # a whole class without captions
    r = run("data", "pascal", "--root", root, "--split", "train", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    s = json.loads(r.stdout)
    assert s["images_without_captions"] == 8 and "images_without_captions" in r.stderr
    assert s["images"] == 16

def test_all_captions_blank_is_an_error(tmp_path):
    root = write_pascal_fixture(tmp_path / "pascal", categories=("bird",))
    for f in (root / "sentence" / "bird").iterdir(): f.write_text("\n")
    fails(run("data", "pascal", "--root", root), "no image has a caption")

def test_flickr8k_mistyped_ids_are_counted(tmp_path):
    root = write_flickr8k_fixture(tmp_path / "f8k", quirk=False)
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = token.read_text().splitlines()
    first_id = lines[0].split("#")[0]
    token.write_text("\n".join(l.replace(first_id, first_id.upper()) for l in lines) + "\n")   # ids mistyped
    r = run("data", "flickr8k", "--root", root, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["images_without_captions"] == 1
    assert "no non-blank caption" in r.stderr

# 3. one bad byte: an error naming file and line, not silent mojibake; UTF-16 with a BOM is read correctly
def test_non_utf8_byte_in_token_file(tmp_path):
    root = write_flickr8k_fixture(tmp_path / "f8k")
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = token.read_text().splitlines()
    lines[2] = lines[2] + " na\u00efve"
    token.write_bytes("\n".join(lines[:3]).encode("latin-1") + b"\n" + "\n".join(lines[3:]).encode() + b"\n")
    fails(run("data", "flickr8k", "--root", root), token, "line 3", "not UTF-8")

def test_utf16_token_file_is_read(tmp_path):
    root = write_flickr8k_fixture(tmp_path / "f8k")
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    ref = json.loads(run("data", "flickr8k", "--root", root, "--json").stdout)
    token.write_bytes(token.read_text().encode("utf-16"))
    r = run("data", "flickr8k", "--root", root, "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == ref

def test_non_utf8_coco_and_pascal(tmp_path):
    ann, images = write_coco_fixture(tmp_path / "coco")
    ann.write_bytes(ann.read_bytes().replace(b"a red square", "a r\u00e9d square".encode("latin-1"), 1))
    fails(run("data", "coco", "--root", images, "--annotations", ann), ann, "line 1", "not UTF-8")
    root = write_pascal_fixture(tmp_path / "pascal")
    bad = sorted((root / "sentence" / "aeroplane").iterdir())[0]
    bad.write_bytes("caf\u00e9 plane\n".encode("latin-1"))
    fails(run("data", "pascal", "--root", root), bad, "line 1")

# 4 and 5. output paths and method names: checked before any training
def test_reproduce_checks_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, expected in [(("--json", tmp_path), "is a folder"), (("--json", tmp_path / "file" / "r.json"), "is a file"),
                           (("--methods", ""), "expected comma-separated"), (("--methods", ","), "expected comma-separated"),
                           (("--seed", "-1"), "--seed -1")]:
        t0 = time.time()
        r = run("reproduce", "--methods", "cca", *args) if args[0] != "--methods" else run("reproduce", *args)
        fails(r, expected)
        assert "cca: rSum" not in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["file"]

# 6. the rest
def test_metrics_bad_files(tmp_path):
    np.savez(tmp_path / "x.npz", s=np.zeros((2, 10)))
    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "csv.npy").write_text("0.1,0.2\n0.3,0.4\n")
    np.save(tmp_path / "complex.npy", np.ones((2, 10), dtype=complex))
    np.save(tmp_path / "empty.npy", np.zeros((0, 0)))
    for name, expected in [("x.npz", ".npz archive"), ("dir.npy", "is a folder"), ("csv.npy", "not a .npy file"),
                           ("complex.npy", "real numbers"), ("empty.npy", "an empty matrix")]:
        fails(run("metrics", tmp_path / name), tmp_path / name, expected)

def test_flickr8k_duplicate_caption_number(tmp_path):
    root = write_flickr8k_fixture(tmp_path / "f8k")
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = token.read_text().splitlines()
    token.write_text("\n".join(lines[:1] + lines[:1] + lines[1:]) + "\n")
    fails(run("data", "flickr8k", "--root", root), token, "line 2", "appears twice", "first on line 1")

def test_karpathy_duplicate_record(tmp_path):
    ann, images = write_karpathy_fixture(tmp_path / "k", "flickr8k")
    data = json.loads(ann.read_text()); data["images"].append(data["images"][0]); ann.write_text(json.dumps(data))
    fails(run("data", "karpathy", "--root", images, "--annotations", ann, "--split", data["images"][0]["split"]),
          ann, "appears twice", "images[0]")

def test_coco_without_annotations_and_string_ids(tmp_path):
    ann, images = write_coco_fixture(tmp_path / "coco")
    data = json.loads(ann.read_text())
    ann.write_text(json.dumps(data | {"annotations": []}))
    fails(run("data", "coco", "--root", images, "--annotations", ann), "no image has a caption")
    data["annotations"][0]["image_id"] = str(data["annotations"][0]["image_id"])
    ann.write_text(json.dumps(data))
    fails(run("data", "coco", "--root", images, "--annotations", ann), ann, "annotations[0]", "(str)", "ids are int")

def test_root_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    fails(run("data", "flickr8k", "--root", tmp_path / "f"), "is a file, not a folder")

def test_check_images_names_broken_files(tmp_path):
    root = write_flickr8k_fixture(tmp_path / "f8k")
    broken = sorted((root / "Flicker8k_Dataset").iterdir())[:2]
    for b in broken: b.write_bytes(b"\xff\xd8\xff" + b"\0" * 10)
    r = run("data", "flickr8k", "--root", root, "--check-images")
    fails(r, "2 of 4 images cannot be decoded", *[b.name for b in broken])
    assert run("data", "flickr8k", "--root", root).returncode == 0          # without the option, files are only checked to exist

def test_ctrl_c_exits_130_with_one_line(cache):
    # A shell's background job starts with SIGINT ignored, and a Python started that way never installs its Ctrl-C handler:
    # the child gets the default disposition back, as it has when run from a terminal.
    p = subprocess.Popen([str(PROG), "reproduce", "--methods", "cca"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=os.environ | {"CROSSMODAL_COURSE_CACHE": str(cache)},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = p.stderr.readline()                             # the data are loaded: past imports, training has started
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=120)
    err = first + rest
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "crossmodal-course: interrupted"
