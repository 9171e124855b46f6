"""ProGAN: the fade-in, the schedule, the paper's pieces, and exact resume across growth."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from conftest import check_phase_gradients, growing_progan_config, tiny_config

from genzoo.data import load_dataset
from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.base import read_safetensors
from genzoo.models.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from genzoo.models.progan import advance_stage, growth_state, stage_at
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint

SPEC16 = DataSpec("image", (1, 16, 16))


def _progan(**over):
    from genzoo.models.progan import ProGANConfig

    cfg = ProGANConfig(nz=8, channels=(8, 8, 4), fade_kimg=0.064, stab_kimg=0.064, **over)
    torch.manual_seed(0)
    return build_model("progan", cfg, SPEC16)


# ----------------------------------------------------------------------------- fade-in

def test_fade_alpha0_is_old_network_upsampled_alpha1_is_new_layers_only():
    m = _progan()
    G, D = m.generator, m.discriminator
    z = torch.randn(5, 8)
    with torch.no_grad():
        old = G(z, 1, 1.0)  # the 8x8 network, stabilised
        grown0 = G(z, 2, 0.0)  # 16x16 network, fade just started
        assert grown0.shape == (5, 1, 16, 16)
        up = old.repeat_interleave(2, 2).repeat_interleave(2, 3)  # nearest upsampling by hand
        assert torch.allclose(grown0, up, atol=1e-6)
        # alpha = 1: the old toRGB no longer counts
        new = G(z, 2, 1.0)
        G.to_rgb["1"].weight.add_(1.0)
        assert torch.equal(G(z, 2, 1.0), new)
        assert not torch.allclose(G(z, 2, 0.5), new)  # mid-fade it still does
        # D: at alpha = 0 it is the old D on the 2x-pooled image
        x = torch.randn(5, 1, 16, 16)
        d_old = D(torch.nn.functional.avg_pool2d(x, 2), 1, 1.0)
        assert torch.allclose(D(x, 2, 0.0), d_old, atol=1e-6)
        d_new = D(x, 2, 1.0)
        D.from_rgb["1"].weight.add_(1.0)
        assert torch.equal(D(x, 2, 1.0), d_new)


def test_every_parameter_learns_mid_fade():
    """Mid-fade at the last resolution both toRGB/fromRGB pairs and every block are in use."""
    from genzoo.models.progan import ProGANConfig

    data = load_dataset(tiny_config("progan").data, "train")  # digits, 8x8
    torch.manual_seed(0)
    m = build_model("progan", ProGANConfig(nz=8, channels=(8, 4), fade_kimg=0.016,
                                           stab_kimg=0.016, batch_sizes=(8,)), data.spec)
    m.set_progress(3)  # 2 steps 4x4, then the 8x8 fade: step 3 is alpha 0.5
    assert m.stage() == (1, 0.5)
    check_phase_gradients(m, data.batch(0, 16, 0))


def test_schedule_counts_images_at_each_resolution_batch():
    # 32x32: levels 0..3; 1,000 images per phase; batches 100, 50, 25, 20 per level
    b = [100, 50, 25, 20]
    assert growth_state(0, 3, 1.0, 1.0, b) == (0, 1.0)
    assert growth_state(9, 3, 1.0, 1.0, b) == (0, 1.0)
    assert growth_state(10, 3, 1.0, 1.0, b) == (1, 0.0)  # 10 steps of 100 = 1,000 images
    assert growth_state(15, 3, 1.0, 1.0, b) == (1, 0.25)  # 5 of 20 fade steps (batch 50)
    assert growth_state(30, 3, 1.0, 1.0, b) == (1, 1.0)  # stabilise at 8x8
    assert growth_state(50, 3, 1.0, 1.0, b) == (2, 0.0)  # fade in 16x16: 40 steps of 25
    assert growth_state(70, 3, 1.0, 1.0, b) == (2, 0.5)
    assert growth_state(130, 3, 1.0, 1.0, b) == (3, 0.0)  # fade in 32x32: 50 steps of 20
    assert growth_state(155, 3, 1.0, 1.0, b) == (3, 0.5)
    assert growth_state(180, 3, 1.0, 1.0, b) == (3, 1.0)
    assert growth_state(10 ** 6, 3, 1.0, 1.0, b) == (3, 1.0)  # the last phase never ends
    # alpha is linear in images shown over the fade
    alphas = [growth_state(s, 3, 1.0, 1.0, b)[1] for s in range(130, 180)]
    assert alphas == pytest.approx([i / 50 for i in range(50)])


def test_batch_sizes_take_a_prefix_and_are_checked():
    from genzoo.models.progan import ProGANConfig

    cfg = ProGANConfig(batch_sizes=(16, 8), fade_kimg=1, stab_kimg=1)
    assert stage_at(cfg, 2, 0, None) == (0, 1.0)  # explicit sizes: known before the batch
    assert stage_at(ProGANConfig(), 2, 0, None) is None  # implicit: needs the drawn batch
    assert stage_at(ProGANConfig(progressive=False), 2, 99, None) == (2, 1.0)
    with pytest.raises(GenzooError, match="batch_sizes"):
        stage_at(cfg, 2, 0, 12)
    m = _progan(batch_sizes=(6, 4))
    x = torch.rand(10, 1, 16, 16) * 2 - 1
    m.set_progress(0)
    assert m._batch({"x": x})[0].shape[0] == 6
    m.set_progress(10 ** 4)
    xb, lv, a = m._batch({"x": x})
    assert (xb.shape[0], lv, a) == (4, 2, 1.0)
    assert torch.equal(xb, x[:4])


def test_reals_are_faded_like_the_fakes():
    m = _progan()
    x = torch.randn(3, 1, 16, 16)
    pooled8 = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(m.reals(x, 1, 1.0), pooled8)
    blurred = torch.nn.functional.avg_pool2d(x, 4).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(m.reals(x, 1, 0.0), blurred, atol=1e-6)
    assert torch.allclose(m.reals(x, 2, 0.25), 0.75 * torch.nn.functional.avg_pool2d(
        x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3) + 0.25 * x, atol=1e-6)


def test_samples_are_at_data_size_while_growing():
    m = _progan()
    m.set_progress(0)
    advance_stage(m, 16)  # 4x4 at step 0
    x = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 16, 16) and x.abs().max() <= 1
    # a 4x4 image repeated in 4x4 blocks
    assert torch.equal(x, x[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3))


# ----------------------------------------------------------------------------- the pieces

def test_equalized_lr_unit_variance_init_and_scaled_step():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    w = conv.weight.detach()
    assert w.std().item() == pytest.approx(1.0, abs=0.02)  # stored weights N(0, 1)
    assert conv.w_scale == pytest.approx(math.sqrt(2 / (64 * 9)))  # He's constant
    plain = EqualizedConv2d(64, 32, 3, equalized=False)
    assert plain.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.03)
    # output variance is the same either way (He init), but an Adam step moves the stored
    # weights by ~lr and hence the effective weights by lr * c: the step scales with c
    x = torch.randn(8, 64, 6, 6)
    for layer in (conv, plain):
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        before = (layer.weight * layer.w_scale).detach().clone()
        layer(x).square().mean().backward()
        opt.step()
        step = ((layer.weight * layer.w_scale).detach() - before).abs().mean().item()
        expect = 1e-3 * layer.w_scale  # Adam's first step is lr * sign(grad) per weight
        assert step == pytest.approx(expect, rel=0.02)
    lin = EqualizedLinear(100, 10, lr_mul=0.01)
    assert lin.weight.std().item() == pytest.approx(100, rel=0.1)  # N(0, 1/lr_mul^2)
    assert lin.w_scale == pytest.approx(math.sqrt(2 / 100) * 0.01)


def test_pixel_norm_unit_average_feature_norm():
    x = torch.randn(4, 16, 5, 5) * 7 + 3
    y = PixelNorm()(x)
    ms = y.pow(2).mean(1)  # (B, H, W): mean square over features at every pixel
    assert torch.allclose(ms, torch.ones_like(ms), atol=1e-5)
    # per-pixel direction unchanged
    cos = torch.nn.functional.cosine_similarity(x, y, dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)


def test_minibatch_stddev_zero_for_identical_images():
    layer = MinibatchStdDev(group_size=4)
    same = torch.randn(1, 3, 4, 4).expand(8, 3, 4, 4).contiguous()
    out = layer(same)
    assert out.shape == (8, 4, 4, 4)
    assert torch.equal(out[:, :3], same)
    assert torch.allclose(out[:, 3], torch.full((8, 4, 4), 1e-4))  # sqrt(0 + 1e-8): no spread
    varied = layer(torch.randn(8, 3, 4, 4))
    assert varied[:, 3].min() > 0.5  # unit-variance data: std near 1


@pytest.mark.parametrize("switch", ["minibatch_std", "equalized_lr", "pixel_norm"])
def test_switches_change_the_networks(switch):
    on, off = _progan(), _progan(**{switch: False})
    if switch == "minibatch_std":
        assert isinstance(on.discriminator.mbstd, MinibatchStdDev)
        assert on.discriminator.conv.weight.shape[1] == off.discriminator.conv.weight.shape[1] + 1
    elif switch == "equalized_lr":
        assert on.generator.conv.w_scale < 1 and off.generator.conv.w_scale == 1.0
    else:
        assert isinstance(on.generator.norm, PixelNorm)
        assert isinstance(off.generator.norm, torch.nn.Identity)


def test_progressive_off_builds_full_resolution_only():
    m = _progan(progressive=False)
    assert list(m.generator.to_rgb) == ["2"] and list(m.discriminator.from_rgb) == ["2"]
    m.set_progress(0)
    assert m.stage() == (2, 1.0)


def test_drift_term_and_wgan_gp_are_added():
    m = _progan(batch_sizes=(8,))
    m.set_progress(10 ** 4)
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    torch.manual_seed(1)
    t = m.loss({"x": x}, "D")
    expect = t["d_fake"] - t["d_real"] + 10 * t["gp"] + 1e-3 * t["drift"]
    assert t["loss"].item() == pytest.approx(expect.item(), rel=1e-5, abs=1e-6)
    torch.manual_seed(1)
    real_out = m.discriminator(x, 2, 1.0)
    assert t["drift"].item() == pytest.approx(real_out.pow(2).mean().item(), rel=1e-5)


def test_bad_sizes_are_refused():
    from genzoo.models.progan import ProGANConfig

    with pytest.raises(GenzooError, match="power-of-two"):
        build_model("progan", ProGANConfig(), DataSpec("image", (1, 28, 28)))


# ----------------------------------------------------------------------------- exact resume

def test_exact_resume_across_a_growth_boundary(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(growing_progan_config(8), full)
    rows = [json.loads(r) for r in (full / "metrics.jsonl").read_text().splitlines()]
    # rows average steps (0, 1), (2, 3), ...: 4x4 until step 2, 8x8 from step 3 (fading to 5)
    assert [r["D/res"] for r in rows] == [4.0, 6.0, 8.0, 8.0]
    assert [r["D/alpha"] for r in rows] == pytest.approx([1.0, 0.5, 0.5, 1.0])
    # interrupted after step 5, mid-fade; only the step-4 checkpoint survived
    train(growing_progan_config(5), part)
    shutil.rmtree(part / "checkpoints" / "step-000005")
    train(growing_progan_config(8), part, resume=True)
    for name in ("model.safetensors", "ema.safetensors"):
        a = read_safetensors(latest_checkpoint(full) / name)[0]
        b = read_safetensors(latest_checkpoint(part) / name)[0]
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k} differs after resume"
    state = read_safetensors(latest_checkpoint(full) / "model.safetensors")[0]
    assert int(state["level"]) == 1 and float(state["alpha"]) == 1.0
