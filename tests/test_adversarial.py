"Tests of crossmodal_course.adversarial and crossmodal_course.scenes: hand-computed losses, the reversal layer's gradients, file input and the registered methods."
import math
from dataclasses import replace
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from crossmodal_course import adversarial as A
from crossmodal_course.core import METHODS
from crossmodal_course.data import DataError
from crossmodal_course.formats import load_pascal, write_pascal_fixture
from crossmodal_course.scenes import SCENE_CLASSES, make_scenes, scenes_dataset

torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch): monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))

def test_reversal_flips_and_scales_gradients():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    (A.grad_reverse(x, 0.25) * w).sum().backward()
    assert torch.allclose(x.grad, -0.25 * w)
    x.grad = None
    layer = A.GradientReversal(3.0)
    y = layer(x)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -3.0 * w)

def test_grl_lambda_schedule():
    assert A.grl_lambda(0) == 0
    assert A.grl_lambda(1) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert A.grl_lambda(0.5, gamma=1) < A.grl_lambda(0.5, gamma=10)

def test_mmd_coral_correlation_hand_cases():
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    assert A.mmd_loss(x, x).item() == 0.0
    assert A.coral_loss(x, x - 5).item() == pytest.approx(0, abs=1e-6)           # equal covariances
    assert A.coral_loss(x, x.flip(0)).item() == pytest.approx(0, abs=1e-6)
    assert A.mmd_loss(x, x + 2).item() > 0.1
    c = torch.diag(torch.tensor([1.0, 4.0]))                                       # CORAL of two known covariances
    a = torch.tensor([[1.0, 0], [-1, 0], [0, 0], [0, 0]]) * math.sqrt(1.5)
    b = torch.tensor([[0.0, 0], [0, 0], [0, 2], [0, -2]]) * math.sqrt(1.5)
    assert torch.allclose(A.covariance(a), torch.diag(torch.tensor([1.0, 0.0])), atol=1e-6)
    assert A.coral_loss(a, b).item() == pytest.approx((1 + 16) / (4 * 4), rel=1e-5)
    p, q = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]])
    assert A.mmd_loss(p, q).item() == pytest.approx(2 * sum(1 - math.exp(-1 / s) for s in (0.25, 0.5, 1, 2, 4)), rel=1e-5)
    assert A.correlation_loss(x, 3 * x - 1).item() == pytest.approx(0, abs=1e-5)
    assert A.correlation_loss(x, -x).item() == pytest.approx(2, abs=1e-5)

def test_class_triplet_loss():
    e, lab = torch.eye(3), torch.tensor([0, 1, 2])
    assert A.class_triplet_loss(e, e, lab, lab, 0.2).item() == pytest.approx(0)
    # anchor 0 (class 0) sees its positive at cos 0 and a negative at cos 1: loss 0.2 + 1 for anchors 0 and 2
    assert A.class_triplet_loss(e, e.flip(0), lab, lab, 0.2).item() == pytest.approx(1.2 * 2 / 3, rel=1e-6)

def _batch(n=16):
    g = torch.Generator().manual_seed(0)
    return {"img": torch.randn(n, 10, generator=g), "txt": torch.randn(n, 7, generator=g), "label": torch.arange(n) % 4}

def test_projector_gradients_include_reversed_modality_term():
    torch.manual_seed(0)
    model = A.ACMR(10, 7, 4, embed_dim=6, hidden=12).eval()
    batch, lam, w = _batch(), 0.6, 0.5
    def grads(config, reverse=True):
        model.zero_grad(); model.grl.lambd = lam
        if reverse: loss = A.acmr_loss(model, batch, config)[0]
        else:
            zi, zt = model(batch["img"], batch["txt"])
            logits = model.modality_logits(torch.cat([zi, zt]), reverse=False)
            loss = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(16), torch.zeros(16)]))
        loss.backward()
        return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}
    g_adv, g_none = grads(A.ACMRConfig(align="adversarial", w_align=w)), grads(A.ACMRConfig(align="none"))
    g_plain = grads(A.ACMRConfig(), reverse=False)
    checked = 0
    for n in g_adv:
        if n.startswith(("img_proj", "txt_proj")):
            assert torch.allclose(g_adv[n] - g_none[n], -lam * w * g_plain[n], atol=1e-6); checked += 1
        if n.startswith("modality_clf"):
            assert torch.allclose(g_adv[n], w * g_plain[n], atol=1e-6)
    assert checked == 8
    assert sum((g_adv[n] - g_none[n]).abs().sum().item() for n in g_adv if n.startswith("img_proj")) > 1e-5

def test_config_and_loss_parts():
    with pytest.raises(ValueError, match="losses must be one of"): A.ACMRConfig(losses="loss4")
    model = A.ACMR(10, 7, 4)
    assert set(A.acmr_loss(model, _batch(), A.ACMRConfig(losses="loss1+2"))[1]) == {"label", "triplet"}
    for align in A.ALIGNMENTS:
        loss, parts = A.acmr_loss(model, _batch(), A.ACMRConfig(align=align))
        assert torch.isfinite(loss) and "align" in parts

def test_standardize_uses_training_statistics():
    tr, te = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    s_tr, s_te = A.standardize(tr, te)
    assert np.allclose(s_tr.ravel(), [-1, 1], atol=1e-5) and np.allclose(s_te.ravel(), [0, 2], atol=1e-5)

def test_train_acmr_learns_and_records_history():
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 3
    centres = rng.normal(size=(3, 8))
    img = (centres[labels] + 0.3 * rng.normal(size=(120, 8))).astype(np.float32)
    ioc = np.repeat(np.arange(120), 2)
    txt = (centres[labels][ioc] @ rng.normal(size=(8, 5)) + 0.3 * rng.normal(size=(240, 5))).astype(np.float32)
    split = A.FeatureSplit(img, txt, ioc, labels)
    model, hist, log = A.train_acmr(split, A.ACMRConfig(n_epochs=6, batch_size=32, embed_dim=8, hidden=16, lr=1e-2), val=split, seed=0)
    assert len(hist.metrics) == 6 and {"map_avg", "modality_acc"} <= set(hist.metrics[0])
    assert len(log) == 6 * 3 and log[0]["lambda"] == 0.0 and log[-1]["lambda"] > 0.99
    assert hist.best_metric > 0.8                                    # three separable classes
    zi, zt = A.embed(model, split)
    assert A.class_map(zi, zt, split)["map_avg"] == pytest.approx(hist.best_metric, abs=1e-6)

def test_ordering_lines():
    raw = {"a": {"map_avg": [0.5, 0.5, 0.5]}, "b": {"map_avg": [0.6, 0.6, 0.6]}}
    assert "reversed (" in A.ordering_lines(raw, ["a", "b"])[0]
    assert "reproduces" in A.ordering_lines(raw, ["b", "a"])[0]

def _pascal(tmp_path):
    root = write_pascal_fixture(tmp_path / "pascal", per_category=4)
    names = sorted(f"{c.parent.name}/{c.stem}" for c in (root / "dataset").glob("*/*.jpg"))
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("\n".join(names[::2]) + "\n")
    (root / "splits" / "val.txt").write_text("\n".join(names[1::2]) + "\n")
    return root, names

def test_load_pascal_split_lists(tmp_path):
    root, names = _pascal(tmp_path)
    tr, va = load_pascal(root, "train", split_lists=True), load_pascal(root, "dev", split_lists=True)
    assert [i.rsplit(".", 1)[0] for i in tr.image_ids] == names[::2] and [i.rsplit(".", 1)[0] for i in va.image_ids] == names[1::2]
    assert tr.classes == ["aeroplane", "bicycle", "bird"]
    assert [tr.classes[l] for l in tr.labels] == [n.split("/")[0] for n in names[::2]]
    assert tr.n_captions == 5 * len(tr)
    (root / "splits" / "val.txt").write_text(names[1] + "\nnot-a-line\n")
    with pytest.raises(DataError, match=r"val.txt, line 2"): load_pascal(root, "val", split_lists=True)
    with pytest.raises(DataError, match="split list not found"): load_pascal(root, "test", split_lists=True)

def test_scenes_dataset_cached_and_balanced():
    a = scenes_dataset("val", n_images=30)
    b = scenes_dataset("val", n_images=30)
    assert a.info["cache"] == b.info["cache"] and a.captions == b.captions and np.array_equal(a.images, b.images)
    assert np.bincount(a.labels, minlength=10).tolist() == [3] * 10 and a.classes == SCENE_CLASSES
    assert make_scenes(10, "test").captions != make_scenes(10, "train").captions
    with pytest.raises(DataError, match="no split"): scenes_dataset("holdout")

def test_registered_methods_on_scenes():
    tr, te = scenes_dataset("train", n_images=100), scenes_dataset("test", n_images=30)
    for name in A.ACMR_METHODS: assert name in METHODS
    sims = METHODS["acmr-coral"]["fn"](tr, te, quick=True, seed=0)
    assert sims.shape == (30, 150) and np.isfinite(sims).all()
    nolab = replace(tr, labels=None, info={})
    assert METHODS["acmr"]["fn"](nolab, replace(te, labels=None, info={}), quick=True, seed=0).shape == (30, 150)
