"Tests of crossmodal_course.twostep: the unpaired loader never yields a real pair, the cycle is differentiable end to end, the critic step touches only the critics, bad input, the cached run and the registered method."
import numpy as np
import pytest
import torch
from crossmodal_course import twostep as T
from crossmodal_course.core import METHODS, retrieval_metrics
from crossmodal_course.data import Vocab, pad_captions, shapes_dataset

torch.set_num_threads(1)

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch): monkeypatch.setenv("CROSSMODAL_COURSE_CACHE", str(tmp_path / "cache"))

@pytest.fixture(scope="module")
def small():
    "A small shapes training split with random 16-d 'features' (the loaders and losses only need some vectors per image)."
    ds = shapes_dataset("train", n_images=240, cache=False)
    return ds, np.random.default_rng(0).standard_normal((len(ds), 16)).astype(np.float32)

def _batches(data, vocab, epochs=3, batch_size=32, steps=12, seed=0):
    dl = T.TwoStepBatches(data.paired_feats, [data.paired.captions_of(i) for i in range(len(data.paired))], data.unpaired_feats,
                          data.unpaired_captions, vocab, batch_size, steps, seed)
    for e in range(epochs):
        dl.dataset.set_epoch(e)
        yield from dl

@pytest.mark.parametrize("fraction,seed,share", [(0.1, 0, 1.0), (0.25, 1, 1.0), (0.5, 2, 0.5), (0.25, 3, 0.75)])
def test_unpaired_loader_never_yields_a_real_pair(small, fraction, seed, share):
    ds, feats = small
    data = T.two_step_data(ds, feats, fraction, seed=seed, unpaired_share=share)
    vocab = Vocab.from_captions(list(data.paired.captions) + data.unpaired_captions)
    img_of = lambda i: int(data.hidden_image_of_unpaired_image[i])
    cap_img = data.hidden_image_of_unpaired_caption
    assert not set(map(int, data.hidden_image_of_unpaired_image)) & set(map(int, cap_img))     # disjoint pools
    n = 0
    for b in _batches(data, vocab, seed=seed):
        imgs = {img_of(i) for i in b["u_idx"].tolist()}
        caps = {int(cap_img[j]) for j in b["u_cap_idx"].tolist()}
        assert not imgs & caps, "an unpaired batch holds an image and one of its captions"
        # and the unpaired features are those of the unpaired images, not of paired ones
        assert np.allclose(b["u_feats"].numpy(), feats[[img_of(i) for i in b["u_idx"].tolist()]])
        # the paired batch holds real pairs: each caption is one of its image's captions
        for i, toks, n_tok in zip(b["p_idx"].tolist(), b["p_tokens"], b["p_lengths"]):
            assert vocab.decode(toks[:n_tok].tolist()) in [" ".join(vocab.decode(vocab.encode(c)).split()) for c in data.paired.captions_of(i)]
        n += 1
    assert n == 36

def test_disjoint_at_the_edges(small):
    ds, feats = small
    full = T.two_step_data(ds, feats, 1.0)
    assert len(full.unpaired_feats) == 0 and len(full.unpaired_captions) == 0 and len(full.paired) == len(ds)
    none = T.two_step_data(ds, feats, 0.25, unpaired_share=0.0)
    assert len(none.unpaired_feats) == 0 and len(none.unpaired_captions) == 0
    vocab = Vocab.from_captions(list(full.paired.captions))
    b = next(iter(_batches(full, vocab, epochs=1)))
    assert sorted(b) == ["p_feats", "p_idx", "p_lengths", "p_tokens"]          # no unpaired batches from empty pools

def _model_and_batch(small, groups=T.LOSS_GROUPS):
    ds, feats = small
    data = T.two_step_data(ds, feats, 0.25, seed=0)
    vocab = Vocab.from_captions(list(data.paired.captions) + data.unpaired_captions)
    cfg = T.TSRConfig(embed_dim=16, latent_dim=8, word_dim=8, hidden_dim=16, groups=groups)
    model, critics = T.TwoStepModel(feats.shape[1], vocab, cfg), T.Critics(cfg)
    return model, critics, cfg, next(iter(_batches(data, vocab, epochs=1)))

def test_cycle_is_differentiable_end_to_end(small):
    model, critics, cfg, b = _model_and_batch(small, groups=("cycle",))
    terms = T.two_step_losses(model, critics, b, cfg, hardest=False)
    terms["cycle"].backward()
    for name in ("E_v", "E_t", "Ep_v", "Gp_v", "Ep_t", "Gp_t"):
        grads = [p.grad for n, p in getattr(model, name).named_parameters() if p.requires_grad]
        assert all(g is not None for g in grads), f"{name}: a parameter got no gradient from the cycle"
        assert sum(g.abs().sum().item() for g in grads) > 0, f"{name}: zero gradient"
    assert all(p.grad is None for p in model.G_t.parameters())           # the word decoder is not on the cycle

def test_critic_step_updates_only_the_critics(small):
    model, critics, cfg, b = _model_and_batch(small)
    before_m = {k: v.clone() for k, v in model.state_dict().items()}
    before_c = {k: v.clone() for k, v in critics.state_dict().items()}
    opt = torch.optim.Adam(critics.parameters(), lr=1e-2)
    terms = T.two_step_losses(model, critics, b, cfg, hardest=True, critic_opt=opt)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before_m.items())
    assert any(not torch.equal(v, critics.state_dict()[k]) for k, v in before_c.items())
    assert set(terms) == {"triplet", "ae", "eae", "cycle", "paired", "critic", "adversarial", "unsup_triplet", "total"}
    w = cfg.weights
    assert torch.isclose(terms["total"], sum(w[k] * terms[k] for k in w if k in terms))

def test_bad_input(small):
    ds, feats = small
    with pytest.raises(ValueError, match=r"\[0, 1\]"): T.two_step_data(ds, feats, 1.5)
    with pytest.raises(ValueError, match="unpaired_share"): T.two_step_data(ds, feats, 0.5, unpaired_share=2)
    with pytest.raises(ValueError, match="alt_captions"): T.two_step_data(ds, feats, 0.5, captions="alt")
    with pytest.raises(ValueError, match="alternative captions"): T.two_step_data(ds, feats, 0.5, captions="alt", alt_captions=["a red circle"])
    with pytest.raises(ValueError, match="feature rows"): T.two_step_data(ds, feats[:5], 0.5)
    with pytest.raises(ValueError, match="unknown loss groups"): T.TSRConfig(groups=("cycle", "nope"))

def test_run_is_cached_and_reloads(small):
    ds, feats = small
    val, test = ds.subset(np.arange(40)), ds.subset(np.arange(40, 80))
    f = {"train": feats, "val": feats[:40], "test": feats[40:80]}
    cfg = T.TSRConfig(embed_dim=16, latent_dim=8, word_dim=8, hidden_dim=16, n_epochs=2, steps_per_epoch=3, step1_epochs=1, batch_size=16)
    r = T.run_two_step(ds, val, test, f, cfg, paired_fraction=0.5, seed=0)
    assert len(r["val_rsum"]) == 2 and len(r["epoch_terms"]) == 2 and len(r["step1_losses"]) == 3
    again = T.run_two_step(ds, val, test, f, cfg, paired_fraction=0.5, seed=0)
    assert again["seconds"] == r["seconds"]                              # read from the cache, not retrained
    model, vocab = T.load_two_step(r, cfg, feats.shape[1])
    m = retrieval_metrics(T.two_step_sims(model, f["test"], test, vocab), img_of_caption=test.img_of_caption)
    assert m["rsum"] == pytest.approx(r["metrics"]["rsum"], abs=1e-6)

def test_registered_method_runs(small):
    assert "tsr" in METHODS
    ds, _ = small
    test = shapes_dataset("test", n_images=30, cache=False)
    sims = METHODS["tsr"]["fn"](ds, test, quick=True, seed=0, paired_fraction=0.5)
    assert sims.shape == (len(test), test.n_captions) and np.isfinite(sims).all()
