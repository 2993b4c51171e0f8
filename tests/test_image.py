"""Checks of `crossmodal_course.image` that do not fit a notebook: any image mode and array layout in, the model's
size out; the pretrained-weights fallback in all its branches (hub cache, download failing, downloads off) without
touching the network; frozen versus trainable encoders; MAC counts; the feature cache's reuse and invalidation for
every key part (weights, layer, transform, data — in memory and on disk); the leave-one-out image retrieval mAP; the
proxy-task targets; and the registered `cnn-cca` method on a tiny split."""
import os, socket, warnings
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms import v2

import crossmodal_course.image as image
from crossmodal_course.core import METHODS, map_at_all, retrieval_metrics
from crossmodal_course.data import CaptionDataset, make_shapes, shapes_dataset
from crossmodal_course.formats import write_tiny_image
from crossmodal_course.image import (
    IMAGENET_MEAN, IMAGENET_STD, ImageEncoder, SmallResNet, ToRGB, WeightsUnavailableWarning, caption_word_targets,
    channel_stats, chance_map, count_macs, count_params, dataset_fingerprint, eval_transform, extract_features,
    feature_cache_path, file_signature, frequent_caption_words, image_file_keys, image_retrieval_aps, image_retrieval_map, shapes_proxy_targets,
    small_cnn, state_fingerprint, time_extraction, to_rgb, train_transform, transform_fingerprint, tv_encoder,
    weights_file)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    "Every test gets its own course cache and torch hub folder (nothing read from or written to the user's)."
    monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old_hub)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(48, "test")


class CountingBody(nn.Module):
    def __init__(self, m): super().__init__(); self.m, self.calls, self.seen = m, 0, []
    def forward(self, x): self.calls += 1; self.seen.append(len(x)); return self.m(x)


# ---------------------------------------------------------------- any image in, the model's size out

@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "HSV", "I", "I;16", "F"])
def test_to_rgb_any_mode(mode):
    out = to_rgb(Image.new(mode, (7, 5)))
    assert out.mode == "RGB" and out.size == (7, 5)


def test_to_rgb_values():
    assert tuple(np.asarray(to_rgb(Image.new("RGBA", (2, 2), (10, 20, 30, 0))))[0, 0]) == (255, 255, 255)
    assert tuple(np.asarray(to_rgb(Image.new("RGBA", (2, 2), (10, 20, 30, 255))))[0, 0]) == (10, 20, 30)
    assert tuple(np.asarray(to_rgb(Image.new("L", (2, 2), 77)))[0, 0]) == (77, 77, 77)
    assert tuple(np.asarray(to_rgb(Image.new("I;16", (2, 2), 65535)))[0, 0]) == (255, 255, 255)
    assert tuple(np.asarray(to_rgb(Image.new("I;16", (2, 2), 257 * 100)))[0, 0]) == (100, 100, 100)
    p = Image.new("P", (2, 2)); p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762); p.putpixel((0, 0), 1)
    assert tuple(np.asarray(to_rgb(p))[0, 0]) == (200, 10, 10)


@pytest.mark.parametrize("shape, dtype", [((6, 4), np.uint8), ((6, 4, 1), np.uint8), ((6, 4, 3), np.uint8),
                                          ((6, 4, 4), np.uint8), ((6, 4, 3), np.float32), ((6, 4), np.float64)])
def test_to_rgb_arrays(shape, dtype):
    a = np.zeros(shape, dtype=dtype)
    out = to_rgb(a)
    assert out.mode == "RGB" and out.size == (4, 6)


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2), np.uint8), np.zeros((2,), np.uint8), np.zeros((2, 2, 5), np.uint8)])
def test_to_rgb_rejects_bad_arrays(bad):
    with pytest.raises(ValueError, match="image array"): to_rgb(bad)


def test_to_rgb_rejects_other_types():
    with pytest.raises(TypeError, match="PIL image"): to_rgb("not an image")


@pytest.mark.parametrize("size", [(1, 1), (300, 17), (64, 64), (640, 480)])
@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_pipelines_output_model_size(size, mode):
    im = Image.new(mode, size)
    for tf in (eval_transform(40), train_transform(40)):
        x = tf(im)
        assert type(x) is torch.Tensor and x.shape == (3, 40, 40) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_eval_transform_normalises():
    im = Image.new("RGB", (8, 8), (255, 0, 51))
    x = eval_transform(8, (0.5, 0.5, 0.5), (0.5, 0.25, 0.1))(im)
    assert torch.allclose(x[:, 0, 0], torch.tensor([1.0, -2.0, -3.0]), atol=1e-5)


def test_train_transform_varies_eval_does_not(shapes):
    im = shapes.image(0)
    torch.manual_seed(0)
    a, b = train_transform(64)(im), train_transform(64)(im)
    assert not torch.equal(a, b)
    assert torch.equal(eval_transform(64)(im), eval_transform(64)(im))


def test_toRGB_tensors():
    assert ToRGB()(torch.zeros(1, 5, 5)).shape == (3, 5, 5)
    assert ToRGB()(torch.zeros(2, 3, 5, 5)).shape == (2, 3, 5, 5)
    with pytest.raises(ValueError, match="1|3"): ToRGB()(torch.zeros(4, 5, 5))


# ---------------------------------------------------------------- encoders: shapes, frozen, MACs

def test_small_cnn_shapes_dtypes():
    enc = small_cnn().eval()
    with torch.no_grad():
        for hw in [(64, 64), (33, 47), (160, 160)]:
            y = enc(torch.randn(3, 3, *hw))
            assert y.shape == (3, 128) and y.dtype == torch.float32
    assert enc.pretrained is False and enc.weights is None and enc.layer == "pool" and enc.input_size == 64


def test_small_cnn_does_not_touch_global_rng():
    torch.manual_seed(123); a = torch.rand(1)
    torch.manual_seed(123); small_cnn(seed=5); b = torch.rand(1)
    assert torch.equal(a, b)


def test_frozen_vs_trainable():
    enc = small_cnn(trainable=False)
    assert count_params(enc, trainable=True) == 0 and count_params(enc, trainable=False) == count_params(enc) > 0
    parent = nn.Sequential(enc, nn.Linear(128, 2))
    parent.train()
    assert parent.training and not enc.body.training           # a frozen body stays in eval mode
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    parent(torch.randn(4, 3, 64, 64) * 5)
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # BatchNorm statistics unchanged
    enc.set_trainable(True); parent.train()
    assert count_params(enc, trainable=False) == 0 and enc.body.training
    parent(torch.randn(4, 3, 64, 64) * 5)
    assert not torch.equal(before["body.stem.1.running_mean"], enc.state_dict()["body.stem.1.running_mean"])


def test_frozen_encoder_gets_no_gradient_but_head_does():
    enc = small_cnn(trainable=False)
    head = nn.Linear(128, 1)
    head(enc(torch.randn(2, 3, 64, 64))).sum().backward()
    assert all(p.grad is None for p in enc.parameters()) and head.weight.grad is not None


@pytest.mark.parametrize("build, size", [(lambda: SmallResNet(), 64), (lambda: torchvision.models.resnet18(), 224),
                                         (lambda: torchvision.models.vgg16(), 224)])
def test_count_macs_matches_flop_counter(build, size):
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"): model = build().eval()
    macs = count_macs(model, (3, size, size))["total"]
    with FlopCounterMode(display=False) as fc:
        model(torch.empty(1, 3, size, size, device="meta"))
    assert fc.get_total_flops() == 2 * macs


def test_resnet18_macs_known_value():
    with torch.device("meta"): m = torchvision.models.resnet18()
    assert abs(count_macs(m, (3, 224, 224))["total"] / 1e9 - 1.81) < 0.02     # the published 1.8 GMACs


def test_vgg_real_forward_fc7_and_pool():
    with torch.no_grad():
        fc7 = tv_encoder("vgg16", weights=None, layer="fc7", input_size=64).eval()
        y = fc7(torch.randn(2, 3, 64, 64))
        assert y.shape == (2, 4096) and y.dtype == torch.float32 and (y >= 0).all()      # after ReLU
        pool = tv_encoder("vgg19", weights=None, layer="pool", input_size=64).eval()
        assert pool(torch.randn(2, 3, 64, 64)).shape == (2, 512)
    assert count_params(fc7, trainable=True) == 0
    assert count_params(tv_encoder("resnet50", weights=None, trainable=True), trainable=False) == 0


@pytest.mark.parametrize("kwargs, match", [({"name": "alexnet"}, "unknown backbone"),
                                           ({"name": "resnet18", "layer": "fc7"}, "no feature layer"),
                                           ({"name": "vgg16", "weights": "NOPE"}, "unknown weights"),
                                           ({"name": "vgg16", "weights": torchvision.models.ResNet18_Weights.DEFAULT}, "do not belong")])
def test_tv_encoder_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match): tv_encoder(**kwargs)


# ---------------------------------------------------------------- pretrained weights: every branch, no network

def _no_warning_of_ours(record):
    return not [w for w in record if issubclass(w.category, WeightsUnavailableWarning)]


def test_weights_none_is_random_without_warning():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        e = tv_encoder("resnet18", weights=None)
    assert e.pretrained is False and e.weights is None and _no_warning_of_ours(rec)


def test_unreachable_download_warns_and_falls_back(monkeypatch):
    calls = []
    def unreachable(url, **kw):
        calls.append((url, kw)); raise URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    old_timeout = socket.getdefaulttimeout()
    with pytest.warns(WeightsUnavailableWarning, match=r"weights for resnet18 \(ResNet18_Weights.IMAGENET1K_V1\) unavailable "
                                                       r"\(URLError.*\); using random initialisation"):
        e = tv_encoder("resnet18", weights="DEFAULT", download=True, timeout=3)
    assert e.pretrained is False and e.weights is None
    assert calls and calls[0][0] == torchvision.models.ResNet18_Weights.DEFAULT.url and calls[0][1]["weights_only"] is True
    assert socket.getdefaulttimeout() == old_timeout                    # the timeout is put back


def test_download_off_never_calls_the_network(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    monkeypatch.setenv("CROSSMODAL_COURSE_OFFLINE", "1")
    with pytest.warns(WeightsUnavailableWarning, match="downloading is off"):
        e = tv_encoder("vgg16", weights="DEFAULT", layer="pool")
    assert e.pretrained is False


def test_weights_from_the_hub_cache(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    donor = torchvision.models.resnet18()
    path = weights_file(w)
    path.parent.mkdir(parents=True)
    torch.save(donor.state_dict(), path)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        e = tv_encoder("resnet18", weights=w, download=False, mean=(0.1, 0.1, 0.1), std=(1, 1, 1))
    assert _no_warning_of_ours(rec)
    assert e.pretrained is True and e.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert e.mean == IMAGENET_MEAN and e.std == IMAGENET_STD                  # pretrained: ImageNet's statistics
    assert torch.equal(e.body[0].weight, donor.conv1.weight)


def test_corrupt_hub_file_falls_back_with_reason():
    w = torchvision.models.ResNet18_Weights.DEFAULT
    weights_file(w).parent.mkdir(parents=True)
    weights_file(w).write_bytes(b"not a checkpoint")
    with pytest.warns(WeightsUnavailableWarning, match="unavailable"):
        e = tv_encoder("resnet18", weights=w, download=False)
    assert e.pretrained is False


def test_fetch_patched_success(monkeypatch):
    donor = torchvision.models.vgg16()
    monkeypatch.setattr(image, "_fetch_state_dict", lambda w, download=True, timeout=10.0: donor.state_dict())
    e = tv_encoder("vgg16", weights="IMAGENET1K_V1", layer="fc6")
    assert e.pretrained and torch.equal(e.body[3].weight, donor.classifier[0].weight)


# ---------------------------------------------------------------- feature cache: reuse and invalidation

def _counting(enc):
    enc.body = CountingBody(enc.body); return enc


def test_extract_features_shape_dtype_order(shapes):
    enc = small_cnn()
    f = extract_features(enc, shapes, batch_size=10, cache=False)
    assert f.shape == (48, 128) and f.dtype == np.float32
    with torch.no_grad():
        x = torch.stack([enc.eval_transform()(shapes.image(i)) for i in (0, 47)])
        np.testing.assert_allclose(enc.eval()(x).numpy(), f[[0, 47]], rtol=1e-4, atol=1e-5)


def test_extraction_keeps_training_mode(shapes):
    enc = small_cnn(); enc.train()
    extract_features(enc, shapes.subset(range(4)), cache=False)
    assert enc.training


def test_cache_reuse_and_each_key_part(shapes):
    enc = _counting(small_cnn())
    a = extract_features(enc, shapes, batch_size=16); assert enc.body.calls == 3
    b = extract_features(enc, shapes, batch_size=16); assert enc.body.calls == 3
    np.testing.assert_array_equal(a, b)
    extract_features(enc, shapes, batch_size=64); assert enc.body.calls == 3          # batch size is not a key part
    with torch.no_grad(): enc.body.m.stages[-1].bn2.running_var[0] += 0.5           # a buffer counts as weights too
    extract_features(enc, shapes, batch_size=16); assert enc.body.calls == 6
    enc.layer = "other"
    extract_features(enc, shapes, batch_size=16); assert enc.body.calls == 9
    extract_features(enc, shapes, eval_transform(64, (0.4, 0.4, 0.4)), batch_size=16); assert enc.body.calls == 12
    tf = v2.Compose([ToRGB(), v2.ToImage(), v2.ToDtype(torch.float64, scale=True)])
    tf2 = v2.Compose([ToRGB(), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    assert transform_fingerprint(tf) != transform_fingerprint(tf2)
    other = make_shapes(48, "test", seed=1)
    extract_features(enc, other, batch_size=16); assert enc.body.calls == 15
    assert len(list(feature_cache_path(enc, shapes).parent.glob("*.npz"))) == 5


def test_changed_pixel_changes_fingerprint(shapes):
    changed = shapes.subset(range(len(shapes))); changed.images = changed.images.copy()
    assert dataset_fingerprint(changed) == dataset_fingerprint(shapes)
    changed.images[3, 10, 10, 1] ^= 1
    assert dataset_fingerprint(changed) != dataset_fingerprint(shapes)


def test_state_fingerprint_sees_one_weight():
    a, b = small_cnn(), small_cnn()
    assert state_fingerprint(a) == state_fingerprint(b)
    with torch.no_grad(): b.body.stem[0].weight[0, 0, 0, 0] += 1e-6
    assert state_fingerprint(a) != state_fingerprint(b)


def test_lambda_transforms_are_told_apart():
    assert transform_fingerprint(lambda im: 1) != transform_fingerprint(lambda im: 2)


def _file_dataset(root, n=6):
    modes = [("RGB", "png"), ("L", "png"), ("P", "png"), ("RGBA", "png"), ("CMYK", "jpg"), ("RGB", "jpg")]
    paths = [write_tiny_image(root / f"img{i}.{modes[i % 6][1]}", colour=["red", "green", "blue"][i % 3], size=(20 + i, 16),
                              mode=modes[i % 6][0]) for i in range(n)]
    caps = [f"picture {i}" for i in range(n)]
    return CaptionDataset(name="files", split="test", images=[str(p) for p in paths], captions=caps, img_of_caption=np.arange(n))


def test_file_dataset_cache_invalidated_when_a_file_changes(tmp_path):
    ds = _file_dataset(tmp_path / "imgs")
    enc = _counting(small_cnn(input_size=32))
    f = extract_features(enc, ds, batch_size=4); assert enc.body.calls == 2 and f.shape == (6, 128)
    extract_features(enc, ds, batch_size=4); assert enc.body.calls == 2
    write_tiny_image(tmp_path / "imgs" / "img2.png", colour="yellow", size=(40, 30))     # a file is replaced
    os.utime(tmp_path / "imgs" / "img2.png", ns=(1, 1))
    g = extract_features(enc, ds, batch_size=4); assert enc.body.calls == 3                # only the replaced image is computed
    assert not np.allclose(f[2], g[2]) and np.allclose(f[0], g[0])
    np.testing.assert_allclose(g, extract_features(enc, ds, cache=False), atol=1e-6)


def test_file_features_are_shared_by_subsets_and_splits(tmp_path):
    ds = _file_dataset(tmp_path / "imgs")
    enc = _counting(small_cnn(input_size=32))
    part = extract_features(enc, ds.subset([4, 1]), batch_size=8); assert enc.body.calls == 1
    full = extract_features(enc, ds, batch_size=8); assert enc.body.calls == 2                # only the 4 new images
    assert enc.body.seen == [2, 4]
    np.testing.assert_array_equal(full[[4, 1]], part)
    np.testing.assert_allclose(full, extract_features(enc, ds, cache=False), atol=1e-6)
    calls = enc.body.calls
    other_split = CaptionDataset(name="files", split="dev", images=ds.images[::-1], captions=ds.captions, img_of_caption=np.arange(6))
    np.testing.assert_array_equal(extract_features(enc, other_split), full[::-1]); assert enc.body.calls == calls   # nothing computed
    assert len(list(feature_cache_path(enc, ds).parent.glob("*.npz"))) == 1
    assert feature_cache_path(enc, ds) == feature_cache_path(enc, other_split) != feature_cache_path(enc, ds, eval_transform(32, (0.4, 0.4, 0.4)))
    with pytest.raises(ValueError, match="in memory"): image_file_keys(shapes_dataset("test", n_images=4))


def test_corrupt_feature_cache_is_recomputed(shapes):
    enc = _counting(small_cnn())
    a = extract_features(enc, shapes, batch_size=48)
    path = feature_cache_path(enc, shapes)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable feature cache"):
        b = extract_features(enc, shapes, batch_size=48)
    assert enc.body.calls == 2
    np.testing.assert_array_equal(a, b)
    assert not list(path.parent.glob("*.tmp"))


def test_channel_stats_values_and_cache(shapes, monkeypatch):
    mean, std = channel_stats(shapes, 64)
    x = shapes.images.reshape(-1, 3) / 255
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-9); np.testing.assert_allclose(std, x.std(0), atol=1e-9)
    monkeypatch.setattr(image, "_batch_uint8", lambda *a, **k: pytest.fail("recomputed instead of reading the cache"))
    assert channel_stats(shapes, 64) == (mean, std)


def test_channel_stats_resizes_files(tmp_path):
    ds = _file_dataset(tmp_path / "imgs")
    mean, std = channel_stats(ds, 16, cache=False)
    assert len(mean) == 3 and all(0 <= m <= 1 for m in mean) and all(s > 0 for s in std)


# ---------------------------------------------------------------- image→image retrieval

def test_retrieval_removes_the_query_from_its_gallery():
    feats = np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])      # exact duplicates in pairs
    labels = np.array([0, 1, 1, 0])
    aps = image_retrieval_aps(feats, labels, "euclidean")
    # query 0: gallery 1 (dist 0, class 1), 2, 3 (class 0, tied with 2 -> index order): relevant at position 3
    assert aps[0] == pytest.approx(1 / 3)
    # with the self-match left in, query 0 would find itself first: AP 1 for the first hit
    s = image.feature_scores(feats, feats, "euclidean")
    assert map_at_all(s[:1], labels[:1], labels) > aps[0]


def test_retrieval_matches_brute_force_loop():
    r = np.random.default_rng(0)
    feats, labels = r.normal(size=(40, 8)).astype(np.float32), r.integers(0, 3, 40)
    for metric in ("cosine", "euclidean"):
        ref = []
        for i in range(40):
            others = [j for j in range(40) if j != i]
            if metric == "cosine":
                a = feats / np.linalg.norm(feats, axis=1, keepdims=True); score = a[others] @ a[i]
            else: score = -((feats[others] - feats[i]) ** 2).sum(1)
            order = np.argsort(-score, kind="stable")
            rel = labels[others][order] == labels[i]
            hits = np.cumsum(rel)
            ref.append((hits / np.arange(1, 40) * rel).sum() / max(rel.sum(), 1))
        assert image_retrieval_map(feats, labels, metric) == pytest.approx(np.mean(ref), abs=1e-6)


def test_cosine_ignores_length_euclidean_does_not():
    feats = np.array([[1.0, 0.1], [10.0, 1.0], [0.1, 1.0]])
    labels = np.array([0, 0, 1])
    assert image_retrieval_aps(feats, labels, "cosine")[0] == 1.0
    assert image_retrieval_aps(feats, labels, "euclidean")[0] < 1.0


def test_retrieval_multilabel_and_errors():
    feats = np.eye(3)
    assert image_retrieval_aps(feats, np.array([[1, 0], [1, 1], [0, 1]])).shape == (3,)
    with pytest.raises(ValueError, match="at least 2"): image_retrieval_aps(feats[:1], np.array([0]))
    with pytest.raises(ValueError, match="labels"): image_retrieval_aps(feats, np.array([0, 1]))
    assert chance_map(np.array([0, 0, 0])) == 1.0


# ---------------------------------------------------------------- proxy targets and the registered method

def test_shapes_targets(shapes):
    t = shapes_proxy_targets(shapes)
    assert t.shape == (48, 13) and t.dtype == np.float32
    assert (t[:, :6] == shapes.multi_labels).all() and (t[:, 6:] == shapes.info["colour_labels"]).all()
    assert (t.sum(1) >= 2).all()                            # at least one shape and one colour per image


def test_shapes_targets_refuse_stale_subset_info(shapes):
    sub = shapes.subset([0, 1, 2])
    if len(sub.info["colour_labels"]) != 3:
        with pytest.raises(ValueError, match="colour labels for 3 images"): shapes_proxy_targets(sub)


def test_caption_word_targets_and_words():
    ds = CaptionDataset(name="toy", split="train", images=np.zeros((3, 4, 4, 3), np.uint8),
                        captions=["a dog runs", "the dog sits", "a cat", "two cats and a dog", "a bird", "the bird"],
                        img_of_caption=[0, 0, 1, 1, 2, 2])
    words = frequent_caption_words(ds, 3)
    assert words == ["dog", "bird", "cat"]                   # by number of images: dog 2, then ties alphabetically
    t = caption_word_targets(ds, words)
    np.testing.assert_array_equal(t, [[1, 0, 0], [1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(caption_word_targets(ds, words, min_captions=2), [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    ds.split = "test"
    with pytest.raises(ValueError, match="training split only"): frequent_caption_words(ds)


def test_cnn_cca_registered_and_runs_quick():
    assert "cnn-cca" in METHODS
    train, test = make_shapes(120, "train"), make_shapes(30, "test")
    sims = METHODS["cnn-cca"]["fn"](train, test, quick=True, seed=0)
    assert sims.shape == (30, 150) and np.isfinite(sims).all()
    again = METHODS["cnn-cca"]["fn"](train, test, quick=True, seed=0)      # cached model and features: same result
    np.testing.assert_allclose(sims, again, atol=1e-6)
    assert retrieval_metrics(sims, img_of_caption=test.img_of_caption)["rsum"] > 0


def test_time_extraction_reports_every_stage(shapes):
    out = time_extraction(small_cnn(), shapes, n=20, batch_size=8)
    assert out["images"] == 20 and out["batch_size"] == 8 and out["threads"] == torch.get_num_threads()
    assert all(out[k] > 0 for k in ("decode_s", "transform_s", "forward_s", "total_img_per_s"))


# ---------------------------------------------------------------- plots and the CCA helper

def test_tsne_plot_is_labelled_and_reproducible():
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    r = np.random.default_rng(0)
    feats = np.concatenate([r.normal(0, 1, (30, 60)), r.normal(6, 1, (30, 60))]).astype(np.float32)
    labels = np.repeat([0, 1], 30)
    from crossmodal_course.image import tsne_embed, tsne_plot
    e1, e2 = tsne_embed(feats, seed=0, max_iter=250), tsne_embed(feats, seed=0, max_iter=250)
    assert e1.shape == (60, 2) and np.allclose(e1, e2)
    ax = tsne_plot(feats, labels, ["left", "right"], "two blobs", max_iter=250)
    assert ax.get_title() == "two blobs" and [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right"]
    plt.close("all")


def test_show_retrievals_marks_correct_results(shapes):
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from crossmodal_course.image import show_retrievals
    feats = np.eye(6)[shapes.labels].astype(np.float32) + 0.01 * np.random.default_rng(0).normal(size=(48, 6)).astype(np.float32)
    fig = show_retrievals(shapes, feats, queries=[0, 1], k=3)
    axes = np.array(fig.axes).reshape(2, 4)
    for r, q in enumerate([0, 1]):
        assert axes[r, 0].get_title().startswith("query")
        n_same = (np.delete(shapes.labels, q) == shapes.labels[q]).sum()
        for c in range(1, 4):     # features = class one-hot: results are the query's class while any are left
            assert axes[r, c].get_title().startswith("✓" if c <= n_same else "✗")
    plt.close(fig)


def test_cca_sims_lines_up_informative_features():
    from crossmodal_course.data import tfidf_cca_sims
    train, test = make_shapes(300, "train"), make_shapes(60, "test")
    informative = lambda ds: np.concatenate([ds.multi_labels, ds.info["colour_labels"]], 1).astype(np.float32)
    noise = lambda ds: np.random.default_rng(1).normal(size=(len(ds), 13)).astype(np.float32)
    good = retrieval_metrics(tfidf_cca_sims(informative(train), train, informative(test), test, pca_dim=13, n_components=13, dtype=np.float32),
                             img_of_caption=test.img_of_caption)["rsum"]
    bad = retrieval_metrics(tfidf_cca_sims(noise(train), train, noise(test), test, pca_dim=13, n_components=13, dtype=np.float32),
                            img_of_caption=test.img_of_caption)["rsum"]
    assert good > 2 * bad


def test_cnn_cca_on_files_uses_caption_words(tmp_path):
    "On a dataset of image files without shape/colour labels (a Flickr8k-layout fixture) the proxy task is caption words."
    from crossmodal_course.formats import load_flickr8k, write_flickr8k_fixture
    root = write_flickr8k_fixture(tmp_path / "f8k", n_train=24, n_dev=6, n_test=0)
    train, dev = load_flickr8k(root, "train"), load_flickr8k(root, "dev")
    assert not train.in_memory and train.multi_labels is None
    sims = METHODS["cnn-cca"]["fn"](train, dev, quick=True, seed=0)
    assert sims.shape == (6, 30) and np.isfinite(sims).all()


def test_a_copied_folder_keeps_its_cached_features_and_signatures(tmp_path):
    import shutil
    from pathlib import Path
    ds = _file_dataset(tmp_path / "imgs")
    enc = _counting(small_cnn(input_size=32))
    f = extract_features(enc, ds, batch_size=8); assert enc.body.calls == 1
    shutil.copytree(tmp_path / "imgs", tmp_path / "copy")                    # new files, new modification times
    for p in (tmp_path / "copy").iterdir(): os.utime(p, ns=(10**18, 10**18))
    copy = CaptionDataset(name="files", split="test", images=[str(tmp_path / "copy" / Path(p).name) for p in ds.images],
                          captions=ds.captions, img_of_caption=np.arange(len(ds)))
    assert image_file_keys(copy) == image_file_keys(ds) and dataset_fingerprint(copy) == dataset_fingerprint(ds)
    np.testing.assert_array_equal(extract_features(enc, copy, batch_size=8), f); assert enc.body.calls == 1   # nothing recomputed
    name, size, digest = file_signature(ds.images[0]).split(":")
    assert name == Path(ds.images[0]).name and int(size) == os.path.getsize(ds.images[0]) and len(digest) == 16
    assert file_signature(ds.images[0]) != file_signature(ds.images[3])      # other bytes, other signature
