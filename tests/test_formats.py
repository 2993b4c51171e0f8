"""Checks of `crossmodal_course.formats` that do not fit a notebook: every malformed-record error names its file and
line, missing files are all counted, `skip_missing` warns, image modes load as RGB, and the real Flickr8k (when present)."""
import json, os, warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import crossmodal_course.data as data_module
from crossmodal_course.data import DataError, load_rgb
from crossmodal_course.formats import (
    DATASET_NAMES, FLICKR8K_QUIRK_ID, load_coco, load_dataset, load_flickr8k, load_karpathy, load_pascal,
    load_wikipedia, pascal_split_sizes, wikipedia_text, write_coco_fixture, write_flickr8k_fixture,
    write_karpathy_fixture, write_pascal_fixture, write_tiny_image, write_wikipedia_fixture)

REAL_FLICKR8K = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))
HAVE_REAL_FLICKR8K = (REAL_FLICKR8K / "Flickr8k_text" / "Flickr8k.token.txt").is_file()


def _edit_line(path: Path, lineno: int, new: str):
    "Replace 1-based line `lineno` of a text file."
    lines = path.read_text().split("\n")
    lines[lineno - 1] = new
    path.write_text("\n".join(lines))


def _error(fn) -> str:
    with pytest.raises(DataError) as info: fn()
    return str(info.value)


# ---------------------------------------------------------------- malformed records name file and line

@pytest.mark.parametrize("bad_line, what", [
    ("1000268201_0000fixture.jpg#2 no tab here", "a tab"),
    ("1000268201_0000fixture.jpg\ta caption without #n", "#<caption number>"),
    ("1000268201_0000fixture.jpg#x\tnot a number after #", "#<caption number>"),
    ("#3\tno image id", "#<caption number>"),
])
def test_flickr8k_token_line_errors_name_file_and_line(tmp_path, bad_line, what):
    root = write_flickr8k_fixture(tmp_path)
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    _edit_line(token, 9, bad_line)
    msg = _error(lambda: load_flickr8k(root, "dev"))     # a malformed line anywhere is an error, whatever the split
    assert str(token) in msg and "line 9:" in msg and what in msg and "expected" in msg


def test_flickr8k_split_file_errors(tmp_path):
    root = write_flickr8k_fixture(tmp_path)
    split_file = root / "Flickr8k_text" / "Flickr_8k.trainImages.txt"
    _edit_line(split_file, 2, "a.jpg b.jpg")
    msg = _error(lambda: load_flickr8k(root))
    assert str(split_file) in msg and "line 2:" in msg and "one image id per line" in msg
    first = split_file.read_text().split("\n")[0]
    _edit_line(split_file, 2, first)
    msg = _error(lambda: load_flickr8k(root))
    assert "line 2:" in msg and "listed twice (first on line 1)" in msg
    split_file.write_text("\n\n")
    assert "lists no image ids" in _error(lambda: load_flickr8k(root))


def test_line_numbers_count_blank_lines_and_crlf(tmp_path):
    root = write_flickr8k_fixture(tmp_path)
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = token.read_text().split("\n")
    lines.insert(2, "")                        # a blank line: still counted, as an editor counts it
    lines[5] = lines[5].replace("\t", " ")     # now on line 6
    token.write_bytes("\r\n".join(lines).encode())
    msg = _error(lambda: load_flickr8k(root))
    assert "Flickr8k.token.txt, line 6:" in msg


def test_karpathy_invalid_json_and_bad_records(tmp_path):
    annotations, image_root = write_karpathy_fixture(tmp_path)
    text = json.dumps(json.loads(annotations.read_text()), indent=1).split("\n")
    bad = tmp_path / "dataset_bad.json"
    bad.write_text("\n".join(text[:10] + ["  oops,"] + text[10:]))
    msg = _error(lambda: load_karpathy(bad, image_root))
    assert str(bad) in msg and "line 11" in msg and "invalid JSON" in msg
    data = json.loads(annotations.read_text())
    del data["images"][2]["sentences"]
    bad.write_text(json.dumps(data))
    msg = _error(lambda: load_karpathy(bad, image_root))
    assert str(bad) in msg and "images[2]" in msg and "'sentences' list" in msg
    data = json.loads(annotations.read_text()); data["images"][1]["split"] = "holdout"
    bad.write_text(json.dumps(data))
    assert "images[1]: unknown split 'holdout'" in _error(lambda: load_karpathy(bad, image_root))
    bad.write_text("[1, 2]")
    assert "'images' list" in _error(lambda: load_karpathy(bad, image_root))


def test_karpathy_tokens_when_raw_is_absent(tmp_path):
    annotations, image_root = write_karpathy_fixture(tmp_path, "flickr8k")
    data = json.loads(annotations.read_text())
    for s in data["images"][0]["sentences"]: del s["raw"]
    annotations.write_text(json.dumps(data))
    ds = load_karpathy(annotations, image_root)
    assert ds.name == "flickr8k" and ds.captions_of(0)[0] == "a red square on a gray background"
    assert ds.images[0] == str(image_root / data["images"][0]["filename"])


def test_coco_bad_records(tmp_path):
    annotations, image_root = write_coco_fixture(tmp_path)
    data = json.loads(annotations.read_text())
    bad = tmp_path / "captions_bad.json"
    bad.write_text(annotations.read_text().replace('"caption"', '"caption" "', 1))
    msg = _error(lambda: load_coco(bad, image_root))
    assert str(bad) in msg and "line 1, column" in msg
    broken = json.loads(json.dumps(data)); del broken["annotations"][5]["caption"]
    bad.write_text(json.dumps(broken))
    assert "annotations[5]: expected an object with 'image_id' and a 'caption' string" in _error(lambda: load_coco(bad, image_root))
    broken = json.loads(json.dumps(data)); broken["images"].append(dict(broken["images"][0]))
    bad.write_text(json.dumps(broken))
    assert "images[3]: image id 100000 appears twice" in _error(lambda: load_coco(bad, image_root))
    renamed = tmp_path / "captions_val2017.json"
    renamed.write_text(json.dumps(data))
    assert load_coco(renamed, image_root).split == "val2017"          # the split is named after the file


@pytest.mark.parametrize("bad_line, what", [
    ("t1\ti1", "3 fields"),
    ("t1 i1 2 extra", "3 fields"),
    ("t1\ti1\ttwo", "an integer category number"),
    ("t1\ti1\t2.0", "an integer category number"),
    ("t1\ti1\t0", "out of range; expected 1..3"),
    ("t1\ti1\t4", "out of range; expected 1..3"),
])
def test_wikipedia_list_errors_name_file_and_line(tmp_path, bad_line, what):
    root = write_wikipedia_fixture(tmp_path)
    list_file = root / "trainset_txt_img_cat.list"
    _edit_line(list_file, 5, bad_line)
    msg = _error(lambda: load_wikipedia(root))
    assert str(list_file) in msg and "line 5:" in msg and what in msg


def test_wikipedia_whitespace_separated_and_image_found_elsewhere(tmp_path):
    root = write_wikipedia_fixture(tmp_path)
    list_file = root / "trainset_txt_img_cat.list"
    list_file.write_text(list_file.read_text().replace("\t", "   "))
    first_image = list_file.read_text().split()[1]
    (root / "images" / "art" / f"{first_image}.jpg").rename(root / "images" / f"{first_image}.jpg")   # not under its category
    ds = load_wikipedia(root)
    assert len(ds) == 9 and ds.images[0] == str(root / "images" / f"{first_image}.jpg")


def test_wikipedia_missing_texts_are_counted(tmp_path):
    root = write_wikipedia_fixture(tmp_path)
    for name in sorted((root / "texts").iterdir())[:2]: name.unlink()
    msg = _error(lambda: load_wikipedia(root))
    assert "2 of 9 text documents are missing" in msg
    with pytest.warns(UserWarning, match="2 of 9 text documents"):
        ds = load_wikipedia(root, skip_missing=True)
    assert len(ds) == 7 and ds.info["missing_texts"] == 2


def test_wikipedia_text_variants(tmp_path):
    cases = {
        "plain.xml": ("<document><title>T</title><text>\n  Some   text.\n</text></document>", "Some text."),
        "notext.xml": ("<document><title>Title</title><para>Body</para></document>", "Title Body"),
        "entity.xml": ("<document><text>A &amp; B</text></document>", "A & B"),
        "bare_amp.xml": ("<document><title>x</title><text>A & B &lt; C</text></document>", "A & B < C"),
        "unclosed.xml": ("<document><text>half a document", "half a document"),
        "cdata.xml": ("<document><text><![CDATA[raw & text]]> more</text></document>", "raw & text more"),
        "tags_in_text.xml": ("<document><text>Oil <i>on</i> canvas &amp; wood</text></document>", "Oil on canvas & wood"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(content)
        assert wikipedia_text(tmp_path / name) == expected, name
    (tmp_path / "declared.xml").write_bytes('<?xml version="1.0" encoding="ISO-8859-1"?><document><text>na\xefve</text></document>'.encode("latin-1"))
    assert wikipedia_text(tmp_path / "declared.xml") == "naïve"


# ---------------------------------------------------------------- missing images, skip_missing, empty captions

def test_missing_images_all_counted(tmp_path):
    root = write_flickr8k_fixture(tmp_path, n_train=10)
    ids = load_flickr8k(root).image_ids
    for image_id in (ids[1], ids[4], ids[9]): (root / "Flicker8k_Dataset" / image_id).unlink()
    msg = _error(lambda: load_flickr8k(root))
    assert "3 of 10 images are missing, e.g. " + ", ".join((ids[1], ids[4], ids[9])) in msg
    assert "skip_missing=True" in msg
    with pytest.warns(UserWarning, match="3 of 10 images are missing") as record:
        ds = load_flickr8k(root, skip_missing=True)
    assert len(record) == 1
    assert len(ds) == 7 and ds.n_captions == 35 and ds.info["missing_images"] == 3
    assert ds.summary()["missing_images"] == 3
    assert ids[1] not in ds.image_ids
    assert all(Path(p).is_file() for p in ds.images)


def test_missing_image_folder_is_named(tmp_path):
    root = write_flickr8k_fixture(tmp_path)
    (root / "Flicker8k_Dataset").rename(root / "elsewhere")
    msg = _error(lambda: load_flickr8k(root))
    assert "4 of 4 images are missing" in msg and "Flicker8k_Dataset, which does not exist" in msg


def test_missing_images_in_every_reader(tmp_path):
    annotations, image_root = write_karpathy_fixture(tmp_path / "k")
    sorted((image_root / "train2014").iterdir())[0].unlink()
    assert "1 of 3 images are missing" in _error(lambda: load_karpathy(annotations, image_root))
    with pytest.warns(UserWarning): assert len(load_karpathy(annotations, image_root, skip_missing=True)) == 2
    annotations, image_root = write_coco_fixture(tmp_path / "c")
    sorted(image_root.iterdir())[0].unlink()
    assert "1 of 3 images are missing" in _error(lambda: load_coco(annotations, image_root))
    with pytest.warns(UserWarning):
        ds = load_coco(annotations, image_root, skip_missing=True)
    assert np.bincount(ds.img_of_caption).tolist() == [6, 7]
    root = write_wikipedia_fixture(tmp_path / "w")
    first_train_image = (root / "trainset_txt_img_cat.list").read_text().split()[1]
    (root / "images" / "art" / f"{first_train_image}.jpg").unlink()
    assert "1 of 9 images are missing" in _error(lambda: load_wikipedia(root))


def test_pascal_missing_sentence_files(tmp_path):
    root = write_pascal_fixture(tmp_path, per_category=10)
    for p in sorted((root / "sentence" / "bird").iterdir()): p.unlink()
    msg = _error(lambda: load_pascal(root, seed=None))
    assert "8 of 24 sentence files are missing" in msg
    with pytest.warns(UserWarning, match="8 of 24 sentence files"):
        ds = load_pascal(root, seed=None, skip_missing=True)
    assert len(ds) == 16 and ds.info["missing_sentence_files"] == 8 and ds.classes == ["aeroplane", "bicycle", "bird"]


def test_empty_captions_dropped_and_counted(tmp_path):
    root = write_pascal_fixture(tmp_path, categories=("cat", "dog"), per_category=10)
    sentence = root / "sentence" / "cat" / "2008_000000.txt"
    sentence.write_text("a cat\n   \n\t\nanother cat\n")
    for p in (root / "sentence" / "dog").iterdir(): p.write_text("\n \n")
    ds = load_pascal(root, "train", seed=None)
    assert ds.info["dropped_captions"] == 2 + 8 * 2
    assert ds.info["images_without_captions"] == 8
    assert len(ds) == 8 and set(ds.labels.tolist()) == {0}
    assert ds.captions_of(0) == ["a cat", "another cat"]


def test_trailing_newline_is_not_a_caption(tmp_path):
    root = write_pascal_fixture(tmp_path)
    ds = load_pascal(root)
    assert ds.info["dropped_captions"] == 0 and ds.captions_per_image == 5


# ---------------------------------------------------------------- Flickr8k quirk, splits, Pascal split rule

def test_flickr8k_quirk_is_ignored(tmp_path):
    root = write_flickr8k_fixture(tmp_path, quirk=True)
    token_lines = (root / "Flickr8k_text" / "Flickr8k.token.txt").read_text().splitlines()
    assert sum(l.startswith(FLICKR8K_QUIRK_ID + "#") for l in token_lines) == 5
    splits = [load_flickr8k(root, s) for s in ("train", "dev", "test")]
    assert sum(ds.n_captions for ds in splits) == len(token_lines) - 5
    assert all(FLICKR8K_QUIRK_ID not in ds.image_ids for ds in splits)
    assert not (root / "Flicker8k_Dataset" / FLICKR8K_QUIRK_ID).exists()


def test_flickr8k_caption_order_and_grouping(tmp_path):
    root = write_flickr8k_fixture(tmp_path, n_train=3, quirk=False)
    token = root / "Flickr8k_text" / "Flickr8k.token.txt"
    token.write_text("\n".join(reversed(token.read_text().splitlines())) + "\n")    # captions out of order
    ds = load_flickr8k(root)
    assert ds.img_of_caption.tolist() == sorted(ds.img_of_caption.tolist())
    assert ds.captions_of(0)[0] == "a red square on a gray background"               # #0 first


def test_split_aliases_and_unknown_splits(tmp_path):
    root = write_flickr8k_fixture(tmp_path)
    assert load_flickr8k(root, "VAL").split == "dev"
    assert "expected one of: train, dev, val (= dev), test" in _error(lambda: load_flickr8k(root, "valid"))
    annotations, image_root = write_karpathy_fixture(tmp_path / "k")
    assert load_karpathy(annotations, image_root, "dev").split == "val"
    assert "restval" in _error(lambda: load_karpathy(annotations, image_root, "holdout"))


def test_pascal_split_rule(tmp_path):
    assert pascal_split_sizes(50) == (40, 5, 5)
    assert pascal_split_sizes(45) == (35, 5, 5)      # 4.5 rounds half up
    assert pascal_split_sizes(3) == (3, 0, 0)
    root = write_pascal_fixture(tmp_path, per_category=50, sentences_per_image=1)
    for seed in (0, None):
        splits = {s: load_pascal(root, s, seed=seed) for s in ("train", "val", "test")}
        assert {s: np.bincount(ds.labels).tolist() for s, ds in splits.items()} == \
               {"train": [40] * 3, "val": [5] * 3, "test": [5] * 3}
        ids = sum((ds.image_ids for ds in splits.values()), [])
        assert len(set(ids)) == 150
    by_name = load_pascal(root, "test", seed=None).image_ids
    assert by_name[:5] == [f"aeroplane/2008_{7 * k:06d}.jpg" for k in range(45, 50)]
    assert load_pascal(root, "test", seed=3).image_ids == load_pascal(root, "test", seed=3).image_ids


# ---------------------------------------------------------------- image modes and corrupt files

def test_image_modes_load_as_rgb(tmp_path):
    modes = ("L", "P", "RGBA", "CMYK", "RGB")
    annotations, image_root = write_coco_fixture(tmp_path, captions_per_image=(5,) * 5, modes=modes)
    extra = {"gray.png": "L", "cmyk.jpg": "CMYK", "palette.png": "P"}
    ds = load_coco(annotations, image_root)
    seen = []
    for i, path in enumerate(ds.images):
        with Image.open(path) as raw: seen.append((raw.format, raw.mode))
        im = ds.image(i)
        assert im.mode == "RGB" and im.size == (24, 24)
        assert ds.image_array(i).dtype == np.uint8 and ds.image_array(i).shape == (24, 24, 3)
    assert seen == [("JPEG", "L"), ("PNG", "P"), ("PNG", "RGBA"), ("JPEG", "CMYK"), ("JPEG", "RGB")]
    rgba = ds.image(2)
    assert rgba.getpixel((0, 0)) == (255, 255, 255)       # the transparent corner becomes white
    for name, mode in extra.items():
        write_tiny_image(tmp_path / name, "green", mode=mode)
        assert load_rgb(tmp_path / name).mode == "RGB"


def test_corrupt_image_is_a_data_error_naming_it(tmp_path):
    root = write_flickr8k_fixture(tmp_path)
    ds = load_flickr8k(root)
    Path(ds.images[0]).write_bytes(b"\x00" * 50)
    whole = Path(ds.images[1]).read_bytes()
    Path(ds.images[1]).write_bytes(whole[: len(whole) // 2])
    ds = load_flickr8k(root)                                # loading does not decode: still fine
    assert len(ds) == 4
    for i in (0, 1):
        msg = _error(lambda: ds.image(i))
        assert ds.images[i] in msg and "cannot decode image" in msg
    assert ds.image(2).mode == "RGB"


# ---------------------------------------------------------------- load_dataset

def test_load_dataset_arguments(tmp_path):
    assert DATASET_NAMES == ("shapes", "flickr8k", "karpathy", "coco", "pascal", "wikipedia")
    msg = _error(lambda: load_dataset("imagenet"))
    assert "unknown dataset 'imagenet'" in msg and all(n in msg for n in DATASET_NAMES)
    assert "flickr8k needs root" in _error(lambda: load_dataset("flickr8k"))
    assert "karpathy needs annotations and root" in _error(lambda: load_dataset("karpathy"))
    assert "coco needs annotations" in _error(lambda: load_dataset("coco", root=tmp_path))
    assert "pascal needs root" in _error(lambda: load_dataset("pascal", annotations="x.json"))
    root = write_flickr8k_fixture(tmp_path / "f")
    assert "does not take option(s) colour" in _error(lambda: load_dataset("flickr8k", root=root, colour="red"))
    assert load_dataset("Flickr8k", root=str(root)).summary()["images"] == 4
    assert load_dataset("flickr8k", root=root, split="val").split == "dev"
    annotations, image_root = write_karpathy_fixture(tmp_path / "k")
    ds = load_dataset("karpathy", root=image_root, annotations=annotations, restval_as_train=False)
    assert (ds.split, len(ds)) == ("train", 2)
    annotations, image_root = write_coco_fixture(tmp_path / "c")
    assert load_dataset("coco", root=image_root, annotations=annotations).split == "val2014"
    assert load_dataset("coco", root=image_root, annotations=annotations, split="val").split == "val"
    root = write_flickr8k_fixture(tmp_path / "g")
    (root / "Flicker8k_Dataset" / load_flickr8k(root).image_ids[0]).unlink()
    with pytest.warns(UserWarning):
        assert load_dataset("flickr8k", root=root, skip_missing=True).summary()["missing_images"] == 1


def test_load_dataset_shapes_passes_split_and_options(monkeypatch):
    calls = []
    def fake_shapes_dataset(split="train", n_images=None, seed=0):
        calls.append((split, n_images, seed)); return "shapes!"
    monkeypatch.setattr(data_module, "shapes_dataset", fake_shapes_dataset, raising=False)
    assert load_dataset("shapes", root="/ignored", split="dev", n_images=3) == "shapes!"
    assert load_dataset("shapes") == "shapes!"
    assert calls == [("val", 3, 0), ("train", None, 0)]
    assert "does not take option(s) size" in _error(lambda: load_dataset("shapes", size=3))


# ---------------------------------------------------------------- the real Flickr8k

real = pytest.mark.skipif(not HAVE_REAL_FLICKR8K, reason=f"real Flickr8k not found at {REAL_FLICKR8K} (set CROSSMODAL_FLICKR8K)")


@real
def test_real_flickr8k_dev():
    ds = load_dataset("flickr8k", root=REAL_FLICKR8K, split="dev")
    s = ds.summary()
    assert (s["images"], s["captions"], s["missing_images"], s["dropped_captions"]) == (1000, 5000, 0, 0)
    assert ds.captions_per_image == 5 and len(set(ds.image_ids)) == 1000
    assert ds.image(0).mode == "RGB"


@real
def test_real_flickr8k_train_and_quirk():
    ds = load_flickr8k(REAL_FLICKR8K, "train")
    assert (len(ds), ds.n_captions) == (6000, 30000)
    assert FLICKR8K_QUIRK_ID not in ds.image_ids
    token = (REAL_FLICKR8K / "Flickr8k_text" / "Flickr8k.token.txt").read_text().splitlines()
    assert sum(l.startswith(FLICKR8K_QUIRK_ID + "#") for l in token) == 5


@real
@pytest.mark.skipif(HAVE_REAL_FLICKR8K and (REAL_FLICKR8K / "Flickr8k_text" / "Flickr_8k.testImages.txt").exists(),
                    reason="this copy of Flickr8k has its test split file")
def test_real_flickr8k_test_split_file_is_withheld():
    msg = _error(lambda: load_dataset("flickr8k", root=REAL_FLICKR8K, split="test"))
    assert "Flickr_8k.testImages.txt" in msg and "split 'test'" in msg
