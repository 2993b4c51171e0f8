"Tests of crossmodal_course.generative (GXN): bad input, the staged training's memo reusing exactly what a fresh run computes, the NaN guard, generation and the registered method."
import math
from dataclasses import replace
import numpy as np
import pytest
import torch
from crossmodal_course import generative as G
from crossmodal_course.core import METHODS, retrieval_metrics
from crossmodal_course.data import Vocab, make_shapes
from crossmodal_course.training import NaNLossError

torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch): monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))

TINY = replace(G.GXN_CONFIG, n_rank=1, n_xe=1, n_rl=1, n_gan=1, batch_size=32, rl_batch=8, gan_batch=8,
               embed_dim=16, text_dim=16, word_dim=8, decoder_dim=16, gen_ch=16)

@pytest.fixture(scope="module")
def data():
    train, test = make_shapes(64, "train", seed=0), make_shapes(16, "test", seed=0)
    rng = np.random.default_rng(0)
    return train, test, Vocab.from_dataset(train), rng.normal(size=(64, 12)).astype(np.float32), rng.normal(size=(16, 12)).astype(np.float32)

def test_metric_bad_input():
    with pytest.raises(ValueError, match="reference sets"): G.bleu(["a b"], [])
    with pytest.raises(ValueError, match="no reference caption"): G.bleu(["a b"], [[]])
    with pytest.raises(ValueError, match="at least one"): G.CiderD([])
    c = G.CiderD([["a red disc"]])
    with pytest.raises(ValueError, match="no reference caption"): c.score("a red disc", [])
    with pytest.raises(ValueError, match="candidates for"): c.corpus_score(["a", "b"], [["a"]])

def test_bleu_and_cider_on_identical_captions():
    assert G.bleu(["a red disc above a blue star"], [["a red disc above a blue star"]]) == [1.0] * 4
    c = G.CiderD([["a red disc above a blue star"], ["a green box"], ["a white cross"]])
    assert c.score("a red disc above a blue star", ["a red disc above a blue star"]) == pytest.approx(10.0)
    assert c.score("a green box", ["a red disc above a blue star"]) < c.score("a red disc", ["a red disc above a blue star"])

def test_config_validation():
    with pytest.raises(ValueError, match="rl needs i2t"): replace(G.GXN_CONFIG, i2t=False, rl=True)
    with pytest.raises(ValueError, match="order_direction"): replace(G.GXN_CONFIG, order_direction="x")
    with pytest.raises(ValueError, match="lam"): G.combined_sim(np.zeros((2, 2)), np.zeros((2, 2)), -0.1)
    with pytest.raises(ValueError, match="shape"): G.combined_sim(np.zeros((2, 2)), np.zeros((2, 3)))

def test_stages_switch_components():
    s = {name: [sorted(k for k in st if st.get(k) and k not in ("name", "epochs")) for st in cfg.stages()] for name, cfg in G.ABLATION.items()}
    assert s["ranking only (two branches)"] == [["rank"]] * 4
    assert s["+ i2t (XE + RL)"] == [["rank"], ["rank", "xe"], ["rank", "rl", "xe"], ["rank", "rl", "xe"]]
    assert s["+ t2i (GAN)"] == [["rank"], ["rank"], ["rank"], ["gan", "rank"]]
    assert s["full GXN"][-1] == ["gan", "rank", "rl", "xe"]

def test_train_gxn_memo_equals_fresh_run(data):
    train, test, vocab, f_tr, f_te = data
    fresh, log = G.train_gxn(train, f_tr, vocab, TINY, seed=1)
    assert log["reused"] == [] and len(log["stage_seconds"]) == 4 and log["stage_steps"] == [2, 2, 2, 2]
    assert len(log["reward"]) == 4 and len(log["d_loss"]) == 2 and all(math.isfinite(v) for _, v in log["d_loss"])
    memo = {}
    G.train_gxn(train, f_tr, vocab, replace(TINY, t2i=False), seed=1, memo=memo)           # shares stages 1-3 with TINY
    reused, log2 = G.train_gxn(train, f_tr, vocab, TINY, seed=1, memo=memo)
    assert log2["reused"] == ["ranking", "+i2t XE", "+RL"]
    for (k, a), (_, b) in zip(fresh.state_dict().items(), reused.state_dict().items()): assert torch.equal(a, b), k
    s_h, s_l = G.gxn_sims(reused, f_te, test, vocab)
    assert s_h.shape == s_l.shape == (16, 80) and (s_h <= 0).all()
    m = retrieval_metrics(G.combined_sim(s_h, s_l, 0.5), img_of_caption=test.img_of_caption)
    assert 0 <= m["rsum"] <= 600
    caps = G.greedy_captions(reused, f_te, vocab)
    assert len(caps) == 16 and all(isinstance(c, str) for c in caps)
    scores = G.caption_scores(caps, test, G.CiderD(G._references(train)))
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D"}

def test_the_generator_gradient_reaches_the_grounded_text_branch(data):
    train, _, vocab, f_tr, _ = data
    gan_stage = replace(TINY, i2t=False, rl=False, n_rank=0, n_xe=0, n_rl=0, n_gan=1, lr=1e-2)
    init = G.build_gxn(vocab, f_tr.shape[1], gan_stage, seed=0).state_dict()
    on, log = G.train_gxn(train, f_tr, vocab, gan_stage, seed=0)
    off, _ = G.train_gxn(train, f_tr, vocab, replace(gan_stage, gan_weight=0.0), seed=0)
    assert len(log["rank"]) == len(log["g_loss"]) == 2 and log["stage_steps"] == [0, 0, 0, 2]
    assert torch.equal(off.state_dict()["generator.to_rgb.weight"], init["generator.to_rgb.weight"])   # weight 0: G untouched
    assert not torch.equal(on.state_dict()["generator.to_rgb.weight"], init["generator.to_rgb.weight"])
    assert not torch.equal(on.state_dict()["proj_t_l.weight"], off.state_dict()["proj_t_l.weight"])    # G's gradient reaches t_l
    assert not torch.equal(on.state_dict()["discriminator.joint.2.weight"], init["discriminator.joint.2.weight"])

def test_nan_features_raise_the_course_error(data):
    train, _, vocab, f_tr, _ = data
    bad = f_tr.copy(); bad[:] = np.nan
    with pytest.raises(NaNLossError, match="loss became"): G.train_gxn(train, bad, vocab, TINY, seed=0)
    with pytest.raises(ValueError, match="feature rows"): G.train_gxn(train, f_tr[:10], vocab, TINY, seed=0)

def test_imagine_and_fidelity(data):
    train, _, vocab, f_tr, _ = data
    model = G.build_gxn(vocab, f_tr.shape[1], TINY, seed=0).eval()
    imgs = G.imagine(model, ["a red disc", "a blue star"], vocab, n_samples=3, seed=0)
    assert imgs.shape == (6, 3, 64, 64)
    assert torch.equal(imgs, G.imagine(model, ["a red disc", "a blue star"], vocab, n_samples=3, seed=0))
    assert G.diversity(imgs, 3) > 0
    u8 = G.to_uint8(imgs)
    assert u8.dtype == np.uint8 and u8.shape == (6, 64, 64, 3)

def test_gxn_is_registered():
    assert "gxn" in METHODS and METHODS["gxn"]["fn"] is G.gxn_method

def test_gan_image_resizes_photos_and_the_gan_stage_refuses_other_sizes(data, tmp_path):
    from PIL import Image
    from crossmodal_course.data import DataError
    photo = Image.fromarray(np.full((80, 120, 3), 255, np.uint8))                # a white 120×80 "photo"
    x = G.gan_image(photo)
    assert x.shape == (3, 64, 64) and torch.allclose(x, torch.ones_like(x))
    small = Image.fromarray(np.zeros((64, 64, 3), np.uint8))
    assert torch.equal(G.gan_image(small), torch.zeros(3, 64, 64))
    train, _, vocab, f_tr, _ = data
    big = make_shapes(16, "train", seed=0, image_size=96)
    gan_stage = replace(TINY, i2t=False, rl=False, n_rank=0, n_xe=0, n_rl=0, n_gan=1, batch_size=8)
    with pytest.raises(DataError, match=r"\(96, 96\).*image_tf=gan_image"): G.train_gxn(big, f_tr[:16], vocab, gan_stage, seed=0)
    _, log = G.train_gxn(big, f_tr[:16], vocab, gan_stage, seed=0, image_tf=G.gan_image)
    assert log["stage_steps"] == [0, 0, 0, 2] and all(math.isfinite(v) for _, v in log["d_loss"])

def test_sample_temperature_keeps_the_greedy_caption_and_tempers_the_log_probabilities():
    torch.manual_seed(0)
    dec = G.CaptionDecoder(n_words=12, embed_dim=8, word_dim=4, hidden_dim=8, max_len=5)
    v = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    g1, _, _ = dec.sample(v, greedy=True)
    g2, _, _ = dec.sample(v, greedy=True, temperature=0.3)
    assert torch.equal(g1, g2)
    torch.manual_seed(1); ids, logp, mask = dec.sample(v[:1], temperature=0.5, max_len=1)
    h = torch.tanh(dec.init(v[:1] * dec.v_scale))[None]
    out, _ = dec.gru(torch.cat([dec.embedding(torch.tensor([Vocab.bos_id])), v[:1] * dec.v_scale], -1)[:, None], h)
    expect = torch.log_softmax(dec._logits(out[:, 0]) / 0.5, -1)[0, ids[0, 0]]
    assert logp[0, 0].item() == pytest.approx(expect.item(), abs=1e-5)
    with pytest.raises(ValueError, match="temperature"): dec.sample(v, temperature=0.0)

def test_xe_loss_does_not_predict_unknown_words():
    torch.manual_seed(0)
    dec = G.CaptionDecoder(n_words=12, embed_dim=8, word_dim=4, hidden_dim=8)
    v = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    tokens = torch.tensor([[5, Vocab.unk_id, 6], [7, 8, 0]])
    loss = dec.xe_loss(v, tokens, torch.tensor([3, 2]))
    assert torch.isfinite(loss)                                    # <unk>'s logit is −inf: predicting it would be inf
    known = dec.xe_loss(v, torch.tensor([[5, 9, 6], [7, 8, 0]]), torch.tensor([3, 2]))
    assert loss.item() != pytest.approx(known.item())
