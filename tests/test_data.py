"""Data caches and dataset invariants that are not natural to show in a notebook."""
import numpy as np
import pytest
import crossmodal_course.data as data
from crossmodal_course.data import (CaptionDataset, DataError, Vocab, atomic_save_npz, make_shapes, partial_pairing,
                                    shapes_dataset, load_rgb)

@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"

def test_interrupted_cache_write_leaves_nothing(own_cache, monkeypatch):
    def boom(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt): shapes_dataset("val", n_images=5)
    assert list(own_cache.iterdir()) == []                      # neither a partial file nor a temporary one

def test_cache_keyed_by_every_parameter(own_cache):
    base = dict(split="val", n_images=4)
    paths = {shapes_dataset(**base, **extra).info["cache"] for extra in
             [{}, {"seed": 1}, {"image_size": 32}, {"captions_per_image": 3}, {"style": "alt"}]}
    assert len(paths) == 5
    assert shapes_dataset(**base).info["cache"] in paths          # and the same parameters read the same file

def test_cached_equals_generated():
    a, b = shapes_dataset("test", n_images=20), make_shapes(20, "test")
    assert a.captions == b.captions and np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)

def test_atomic_save_replaces_whole_file(tmp_path):
    p = tmp_path / "x.npz"
    atomic_save_npz(p, a=np.arange(3)); atomic_save_npz(p, a=np.arange(5))
    assert np.load(p)["a"].tolist() == list(range(5)) and [f.name for f in tmp_path.iterdir()] == ["x.npz"]

def test_dataset_rejects_inconsistent_input():
    imgs = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(DataError, match="2 captions but 3"): CaptionDataset("x", "train", imgs, ["a", "b"], [0, 1, 1])
    with pytest.raises(DataError, match="index images 0..1"): CaptionDataset("x", "train", imgs, ["a"], [2])
    with pytest.raises(DataError, match="3 labels for 2 images"): CaptionDataset("x", "train", imgs, ["a"], [0], labels=[0, 1, 2])

def test_unknown_split_and_style():
    with pytest.raises(DataError, match="no split"): shapes_dataset("nosuch")
    with pytest.raises(ValueError, match="caption style"): make_shapes(2, style="fancy")

def test_vocab_only_from_train():
    with pytest.raises(ValueError, match="training split only"): Vocab.from_dataset(make_shapes(3, "val"))

def test_partial_pairing_edges():
    ds = make_shapes(10, "val")
    assert len(partial_pairing(ds, 0.0).paired) == 0 and len(partial_pairing(ds, 1.0).unpaired_captions) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"): partial_pairing(ds, 1.5)

def test_load_rgb_missing(tmp_path):
    with pytest.raises(DataError, match="nope.jpg"): load_rgb(tmp_path / "nope.jpg")

def test_unpaired_pools_deterministic_and_in_another_style():
    a, b = data.shapes_pools(20, 20, 20), data.shapes_pools(20, 20, 20)
    assert np.array_equal(a["images"], b["images"]) and a["captions"] == b["captions"] and a["alt_captions"] == b["alt_captions"]
    plain = set(" ".join(make_shapes(50, "train").captions).split())
    alt = set(" ".join(a["alt_captions"]).split())
    assert len(alt - plain) > len(alt & plain)          # mostly other words
    assert a["images"].shape == (20, 64, 64, 3)
