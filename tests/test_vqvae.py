"""VQ-VAE math: straight-through gradients, nearest codes, the commitment and codebook terms, the
EMA codebook, dead-code restarts, usage/perplexity, the decoder likelihoods, exact resume."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from conftest import check_phase_gradients, check_save_load, tiny_config

from genzoo.config import apply_overrides
from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import build_model, load_model
from genzoo.models.base import read_safetensors
from genzoo.models.vqvae import (
    VectorQuantizer,
    VQVAEConfig,
    code_stats,
    discretized_logistic_log_prob,
    straight_through,
)
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint

SPEC = DataSpec("image", (1, 8, 8))


def _model(**kw):
    cfg = VQVAEConfig(stages=(8,), res_blocks=1, res_channels=4, codebook_size=8, code_dim=3,
                      **kw)
    torch.manual_seed(0)
    return build_model("vqvae", cfg, SPEC)


def _x(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g).float() / 127.5 - 1  # 8-bit levels


def _brute_nearest(flat, emb):
    return torch.cdist(flat.double(), emb.double()).argmin(1)


# ----------------------------------------------------------------------------- the VQ layer

def test_quantisation_picks_the_nearest_code():
    torch.manual_seed(1)
    vq = VectorQuantizer(16, 5, ema=False, decay=0.99, eps=1e-5, restart_after=0)
    z_e = torch.randn(4, 5, 3, 3)
    z_q, codes = vq(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 5)  # (36, D)
    assert torch.equal(codes.flatten(), _brute_nearest(flat, vq.embedding.detach()))
    assert codes.shape == (4, 3, 3) and codes.dtype == torch.long
    assert torch.equal(z_q.permute(0, 2, 3, 1).reshape(-1, 5), vq.embedding[codes.flatten()])


def test_straight_through_gradient_is_exact():
    torch.manual_seed(2)
    vq = VectorQuantizer(6, 4, ema=False, decay=0.99, eps=1e-5, restart_after=0)
    z_e = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q, _ = vq(z_e)
    z_st = straight_through(z_e, z_q)
    z_st.retain_grad()
    assert torch.allclose(z_st, z_q, atol=1e-6)  # the value is the quantised one (rounding)
    (torch.sin(3 * z_st) * torch.arange(z_st.numel()).view_as(z_st)).sum().backward()
    assert torch.equal(z_e.grad, z_st.grad)
    assert vq.embedding.grad is None  # the decoder's loss does not reach the codebook


@pytest.mark.parametrize("codebook", ["loss", "ema"])
def test_commitment_and_codebook_terms_by_hand(codebook):
    m = _model(codebook=codebook, beta=0.25)
    x = _x()
    z_e = m.encoder(x).detach()  # (B, D, h, w)
    B, D = z_e.shape[:2]
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, D)
    emb = m.quantizer.embedding.detach().clone()
    k = _brute_nearest(flat, emb)
    d2 = ((flat - emb[k]) ** 2).sum(1)  # (B*h*w,)
    commit = d2.sum() / B  # summed over the latent grid, averaged over images
    m.zero_grad()
    terms = m.loss({"x": x}, "main")
    assert terms["commit"].item() == pytest.approx(commit.item(), rel=1e-5)
    vq_weight = 0.25 + (1.0 if codebook == "loss" else 0.0)
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + vq_weight * commit.item(),
                                                 rel=1e-5)
    terms["loss"].backward()
    if codebook == "ema":  # a buffer: no gradient, and not a parameter any optimizer sees
        assert not m.quantizer.embedding.requires_grad
        assert all(p is not m.quantizer.embedding for p in m.parameters())
        return
    # only the codebook loss mean_b sum ||sg[z_e] - e_k||^2 reaches e: 2/B sum (e_k - z_e)
    expect = torch.zeros_like(emb)
    expect.index_add_(0, k, 2 * (emb[k] - flat) / B)
    assert torch.allclose(m.quantizer.embedding.grad, expect, atol=1e-6)


def test_codebook_loss_mode_trains_the_codebook_in_its_phase(tmp_path):
    m = _model(codebook="loss")
    assert "quantizer" in m.phases[0].modules
    check_phase_gradients(m, {"x": _x(16)}, step_optimizers=True)
    check_save_load(m, tmp_path / "m.safetensors")


def test_ema_update_by_hand():
    vq = VectorQuantizer(3, 2, ema=True, decay=0.9, eps=0.1, restart_after=0)
    vq.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    vq.cluster_size.copy_(torch.tensor([2.0, 1.0, 0.5]))
    vq.embed_sum.copy_(torch.tensor([[0.2, 0.4], [1.0, 2.0], [3.0, 3.0]]))
    flat = torch.tensor([[0.1, 0.0], [0.9, 1.2], [1.1, 0.8], [-0.1, 0.2]])
    codes = vq.nearest(flat)
    assert codes.tolist() == [0, 1, 1, 0]
    vq.update(flat, codes, step=0)
    # n = (2, 2, 0); sums = ((0, .2), (2, 2), (0, 0))
    N = [0.9 * 2 + 0.1 * 2, 0.9 * 1 + 0.1 * 2, 0.9 * 0.5]  # 2.0, 1.1, 0.45
    m = [[0.9 * 0.2 + 0.1 * 0.0, 0.9 * 0.4 + 0.1 * 0.2], [0.9 * 1 + 0.1 * 2, 0.9 * 2 + 0.1 * 2],
         [0.9 * 3, 0.9 * 3]]
    n = sum(N)  # Laplace smoothing: (N_i + eps) / (n + K eps) * n
    smooth = [(Ni + 0.1) / (n + 3 * 0.1) * n for Ni in N]
    e = [[m[i][j] / smooth[i] for j in range(2)] for i in range(3)]
    assert torch.allclose(vq.cluster_size, torch.tensor(N))
    assert torch.allclose(vq.embed_sum, torch.tensor(m))
    assert torch.allclose(vq.embedding, torch.tensor(e))


@pytest.mark.parametrize("ema", [False, True])
def test_dead_code_restart_moves_exactly_the_unused_codes(ema):
    def make(seed):
        torch.manual_seed(seed)
        vq = VectorQuantizer(6, 2, ema=ema, decay=0.9, eps=1e-5, restart_after=2)
        with torch.no_grad():
            vq.embedding.copy_(torch.arange(12.0).view(6, 2))
            if ema:
                vq.embed_sum.copy_(vq.embedding)
        vq.unused.copy_(torch.tensor([0, 1, 1, 0, 5, 0]))
        return vq

    flat = torch.randn(50, 2, generator=torch.Generator().manual_seed(3))
    codes = torch.tensor([0, 1, 5] * 16 + [0, 0])  # codes 2, 3 and 4 unused in this batch
    vq, ref = make(0), make(0)
    ref.restart_after = 0
    vq.update(flat, codes, step=7)
    ref.update(flat, codes, step=7)
    # unused counts become (0, 0, 2, 1, 6, 0): codes 2 and 4 reach restart_after=2, 3 not yet
    assert vq.unused.tolist() == [0, 0, 0, 1, 0, 0]
    assert int(vq.restarts) == 2
    dead, alive = [2, 4], [0, 1, 3, 5]  # 3 unused but not long enough: it stays
    assert torch.equal(vq.embedding[alive], ref.embedding[alive])
    for i in dead:  # each moved onto an encoder output of the batch, two different ones
        assert any(torch.equal(vq.embedding[i], row) for row in flat)
    assert not torch.equal(vq.embedding[2], vq.embedding[4])
    if ema:
        assert torch.equal(vq.embed_sum[dead], vq.embedding[dead])
        assert vq.cluster_size[dead].tolist() == [1.0, 1.0]
        assert torch.equal(vq.cluster_size[alive], ref.cluster_size[alive])
    # deterministic given the model's seed and the step; another step picks other rows
    again = make(0)
    again.update(flat, codes, step=7)
    assert torch.equal(again.embedding, vq.embedding)
    later = make(0)
    later.update(flat, codes, step=8)
    assert not torch.equal(later.embedding[dead], vq.embedding[dead])


def test_usage_and_perplexity_by_hand():
    K = 4
    counts, usage, ppl = code_stats(torch.arange(K).repeat(5), K)
    assert counts.tolist() == [5, 5, 5, 5] and usage.item() == 1.0
    assert ppl.item() == pytest.approx(K)
    _, usage, ppl = code_stats(torch.full((3, 2, 2), 2), K)
    assert usage.item() == 0.25 and ppl.item() == pytest.approx(1.0)
    # p = (1/2, 1/4, 1/4, 0): H = 1.5 ln 2, perplexity 2^1.5
    _, usage, ppl = code_stats(torch.tensor([0, 0, 1, 2]), K)
    assert usage.item() == 0.75 and ppl.item() == pytest.approx(2 ** 1.5)


def test_loss_logs_usage_and_perplexity_of_the_batch():
    m = _model()
    x = _x()
    codes = m.encode_codes(x)
    terms = m.loss({"x": x}, "main")
    counts = torch.bincount(codes.flatten(), minlength=8).double()
    p = counts / counts.sum()
    H = -sum(pi * math.log(pi) for pi in p.tolist() if pi > 0)
    assert terms["usage"].item() == pytest.approx((counts > 0).double().mean().item())
    assert terms["perplexity"].item() == pytest.approx(math.exp(H), rel=1e-5)


# ----------------------------------------------------------------------------- the prior's API

@pytest.mark.parametrize("decoder", ["logistic", "bernoulli"])
def test_codes_api_shapes_and_ranges(decoder):
    m = _model(decoder=decoder).eval()
    assert m.codebook_size == 8 and m.code_shape == (4, 4)
    codes = m.encode_codes(_x(5))
    assert codes.shape == (5, 4, 4) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 8
    imgs = m.decode_codes(codes)
    assert imgs.shape == (5, 1, 8, 8) and imgs.min() >= -1 and imgs.max() <= 1
    ll = m.codes_log_likelihood(_x(5), codes)
    assert ll.shape == (5,) and torch.isfinite(ll).all() and (ll <= 0).all()
    lp = m.log_prob(_x(5))  # the bound under the uniform prior: minus h w log K
    assert torch.allclose(lp, ll - 16 * math.log(8))


def test_codes_log_likelihood_of_the_logistic_decoder_by_hand():
    m = _model(decoder="logistic").eval()
    x = _x(3)
    codes = torch.randint(0, 8, (3, 4, 4), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = m.decoder(m.quantizer.lookup(codes)).double()  # (B, 2C, H, W)
    mean, s = out[:, :1], out[:, 1:].clamp(min=-7.0).exp()
    xd = x.double()
    cdf_hi = torch.where(xd > 0.999, torch.ones_like(xd), torch.sigmoid((xd + 1 / 255 - mean) / s))
    cdf_lo = torch.where(xd < -0.999, torch.zeros_like(xd),
                         torch.sigmoid((xd - 1 / 255 - mean) / s))
    expect = torch.log(cdf_hi - cdf_lo).flatten(1).sum(1)
    got = m.codes_log_likelihood(x, codes)
    assert torch.allclose(got.double(), expect, rtol=1e-4)


def test_codes_log_likelihood_of_the_bernoulli_decoder_by_hand():
    m = _model(decoder="bernoulli").eval()
    x = torch.where(_x(3) > 0, 1.0, -1.0)  # binarised data
    codes = m.encode_codes(x)
    with torch.no_grad():
        p = torch.sigmoid(m.decoder(m.quantizer.lookup(codes)).double())
    on = (x > 0).double()
    expect = (on * p.log() + (1 - on) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(m.codes_log_likelihood(x, codes).double(), expect, rtol=1e-5)


@pytest.mark.parametrize("mean,log_scale", [(0.0, 0.0), (0.3, -3.0), (-0.98, -7.0),
                                            (0.999, -6.0), (3.0, -1.0), (-0.5, 2.0)])
def test_discretized_logistic_sums_to_one_over_the_256_levels(mean, log_scale):
    x = torch.arange(256.0) / 127.5 - 1  # every 8-bit level, (256,)
    lp = discretized_logistic_log_prob(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
    assert torch.isfinite(lp).all()
    assert lp.double().exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_sample_decodes_uniform_codes_and_bad_sizes_fail():
    m = _model().eval()
    x = m.sample(4, generator=torch.Generator().manual_seed(0))
    codes = torch.randint(8, (4, 4, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, m.decode_codes(codes))
    with pytest.raises(GenzooError, match="divisible by 4"):
        build_model("vqvae", VQVAEConfig(stages=(8, 8)), DataSpec("image", (1, 6, 6)))


# ----------------------------------------------------------------------------- training

def test_ema_buffers_survive_save_and_load(tmp_path):
    m = _model(restart_after=1)
    for step in range(3):
        m.set_progress(step)
        m.loss({"x": _x(seed=step)}, "main")
        m.post_step("main")
    assert int(m.quantizer.restarts) > 0
    m.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    for name in ("embedding", "cluster_size", "embed_sum", "unused", "restarts", "restart_seed"):
        assert torch.equal(getattr(m.quantizer, name), getattr(loaded.quantizer, name)), name


def _resume_cfg(**train_kw):
    # 64 codes for 64 latent vectors a batch (16 images of 2x2 codes): some are always unused,
    # so codes are restarted at every step, also after the resume point
    cfg = tiny_config("vqvae", **train_kw)
    apply_overrides(cfg, [("model.codebook_size", 64), ("model.restart_after", 1)])
    return cfg


def test_resume_is_bit_exact_with_ema_codebook_and_restarts(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(_resume_cfg(steps=8, checkpoint_every=3), full)
    train(_resume_cfg(steps=7, checkpoint_every=3), part)
    shutil.rmtree(part / "checkpoints" / "step-000007")
    at_resume = read_safetensors(latest_checkpoint(part) / "model.safetensors")[0]
    train(_resume_cfg(steps=8, checkpoint_every=3), part, resume=True)
    a = read_safetensors(latest_checkpoint(full) / "model.safetensors")[0]
    b = read_safetensors(latest_checkpoint(part) / "model.safetensors")[0]
    assert a.keys() == b.keys() and "quantizer.cluster_size" in a
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # codes were restarted after the resume point: the restart RNG resumed exactly too
    assert int(a["quantizer.restarts"]) > int(at_resume["quantizer.restarts"]) > 0
