"""StyleGAN: AdaIN, truncation, noise, style mixing, w_avg, R1, growth and the paper's figures."""

from __future__ import annotations

import pytest
import torch
from conftest import run_error, run_ok, tiny_config

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.stylegan import AdaIN, StyleGANConfig, mix_styles, style_groups
from genzoo.train import train

SPEC32 = DataSpec("image", (1, 32, 32))


def _model(spec=SPEC32, **over):
    kw = dict(nz=8, w_dim=6, mapping_layers=2, channels=(8, 4))
    kw.update(over)
    torch.manual_seed(0)
    m = build_model("stylegan", StyleGANConfig(**kw), spec)
    with torch.no_grad():  # away from the zero init, so noise and styles matter
        for layer in m.generator.synthesis.layers:
            layer.noise_scale.normal_()
    return m.eval()


def test_adain_output_statistics_are_the_styles_scale_and_bias():
    torch.manual_seed(0)
    ada = AdaIN(5, 7, eq=True)
    with torch.no_grad():
        ada.affine.bias.normal_()
    x = torch.randn(3, 5, 8, 8) * 4 + 2
    w = torch.randn(3, 7)
    ys, yb = ada.style(w)  # (3, 5) each
    y = ada(x, w)
    assert torch.allclose(y.mean((2, 3)), yb, atol=1e-5)
    assert torch.allclose(y.std((2, 3), unbiased=False), ys.abs(), atol=1e-4)
    # independent formula: y_s * (x - mu) / sigma + y_b
    mu, sd = x.mean((2, 3), keepdim=True), x.std((2, 3), unbiased=False, keepdim=True)
    assert torch.allclose(y, ys[..., None, None] * (x - mu) / sd + yb[..., None, None], atol=1e-4)


def test_truncation_psi0_gives_w_avg_for_every_z():
    m = _model(noise=False)
    with torch.no_grad():
        m.generator.w_avg.normal_()
    z = torch.randn(4, 8)
    ws = m.styles(z, psi=0.0)  # (4, L, w_dim)
    assert torch.allclose(ws, m.generator.w_avg.expand_as(ws))
    x = m.synthesize(ws)
    assert torch.equal(x, x[:1].expand_as(x))  # every z the same image
    half = m.styles(z, psi=0.5)
    assert torch.allclose(half, 0.5 * (m.styles(z, psi=1.0) + m.generator.w_avg), atol=1e-6)
    # cutoff: truncated only below the cutoff layer
    cut = m.truncate(m.styles(z, psi=1.0), 0.0, cutoff=2)
    assert torch.allclose(cut[:, :2], m.generator.w_avg.expand(4, 2, -1))
    assert torch.equal(cut[:, 2:], m.styles(z, psi=1.0)[:, 2:])


def test_w_avg_is_an_ema_of_the_mapped_latents():
    m = _model(style_mixing=0.0).train()
    batch = {"x": torch.rand(6, 1, 32, 32) * 2 - 1}
    torch.manual_seed(5)
    m.loss(batch, "G")
    torch.manual_seed(5)
    w = m.generator.mapping(torch.randn(6, 8))  # the first draw of the G phase
    assert torch.allclose(m.generator.w_avg, 0.005 * w.mean(0), atol=1e-6)


def test_without_noise_sampling_is_deterministic_in_w():
    m = _model()
    ws = m.styles(torch.randn(3, 8))
    torch.manual_seed(1)
    a = m.synthesize(ws, None)
    torch.manual_seed(2)
    assert torch.equal(a, m.synthesize(ws, None))
    # with noise, two draws differ (the scales are non-zero); noise=false has no noise inputs
    n1, n2 = m.noise_inputs(3), m.noise_inputs(3)
    assert not torch.equal(m.synthesize(ws, n1), m.synthesize(ws, n2))
    off = _model(noise=False)
    assert all(t is None for t in off.noise_inputs(3))
    assert torch.equal(off.sample(2, generator=torch.Generator().manual_seed(0)),
                       off.sample(2, generator=torch.Generator().manual_seed(0)))


def test_noise_only_in_chosen_layers():
    m = _model()
    noise = m.noise_inputs(2, layers=style_groups(m.levels)["fine"])
    assert [t is not None for t in noise] == [False] * 6 + [True] * 2
    assert noise[6].shape == (2, 1, 32, 32)


def test_noise_start_leaves_the_coarse_layers_without_noise():
    """noise_start=4: layers 0-3 (4x4, 8x8) never get noise, in training and in sampling;
    a layer list is intersected with it."""
    m = _model(noise_start=4)
    assert [t is not None for t in m.noise_inputs(2)] == [False] * 4 + [True] * 4
    assert [t is not None for t in m.noise_inputs(2, layers=[1, 2, 5])] == \
        [False] * 5 + [True] + [False] * 2
    with pytest.raises(GenzooError, match="noise_start"):
        _model(noise_start=-1)


def test_noise_lr_mul_scales_the_noise_strength_and_its_adam_step():
    """B = stored x noise_lr_mul at run time: the image equals a model whose B is that product,
    and one Adam step from B = 0 moves the effective B by lr x noise_lr_mul (Adam's first step
    is lr times the gradient's sign)."""
    slow = _model(noise_lr_mul=0.05)
    plain = _model()  # the same seed: the same weights and stored B
    with torch.no_grad():
        for a, b in zip(slow.generator.synthesis.layers, plain.generator.synthesis.layers):
            b.noise_scale.copy_(a.noise_scale * 0.05)
    ws = slow.generator.mapping(torch.randn(3, 8))[:, None].expand(-1, 8, -1)
    noise = slow.noise_inputs(3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(slow.synthesize(ws, noise), plain.synthesize(ws, noise), atol=1e-6)
    assert not torch.allclose(slow.synthesize(ws, noise), slow.synthesize(ws, None), atol=1e-3)

    layer = slow.generator.synthesis.layers[3]
    with torch.no_grad():
        layer.noise_scale.zero_()
    opt = torch.optim.Adam([layer.noise_scale], lr=0.1, betas=(0.0, 0.99))
    slow.synthesize(ws, noise).square().sum().backward()
    assert (layer.noise_scale.grad != 0).all()
    opt.step()
    effective = layer.noise_scale.detach() * layer.noise_lr_mul
    assert torch.allclose(effective.abs(), torch.full_like(effective, 0.1 * 0.05), rtol=1e-3)


def test_style_mixing_honours_the_crossover_layer():
    m = _model(noise=False)
    w1, w2 = m.generator.mapping(torch.randn(2, 8)), m.generator.mapping(torch.randn(2, 8))
    L = m.generator.n_layers
    for k in (1, 3, L - 1):
        ws = mix_styles(w1, w2, L, k)
        assert torch.equal(ws[:, :k], w1.unsqueeze(1).expand(-1, k, -1))
        assert torch.equal(ws[:, k:], w2.unsqueeze(1).expand(-1, L - k, -1))
    # in the network: layers before the crossover see only w1, so their outputs are w1's
    k = 3
    outs = {}
    hooks = [lay.register_forward_hook(lambda mod, i, o, j=j: outs.__setitem__(j, o))
             for j, lay in enumerate(m.generator.synthesis.layers)]
    m.synthesize(w1.unsqueeze(1).repeat(1, L, 1))
    pure = dict(outs)
    m.synthesize(mix_styles(w1, w2, L, k))
    for h in hooks:
        h.remove()
    for j in range(L):
        assert torch.equal(outs[j], pure[j]) == (j < k), f"layer {j}"


def test_training_mixes_styles_with_the_configured_probability(monkeypatch):
    import genzoo.models.stylegan as S

    calls = []
    real = S.mix_styles
    monkeypatch.setattr(S, "mix_styles", lambda *a: calls.append(a[3]) or real(*a))
    m = _model(style_mixing=0.5).train()
    torch.manual_seed(0)
    for _ in range(200):
        m._fakes(2, m.levels, 1.0)
    assert 70 < len(calls) < 130  # Binomial(200, 0.5)
    assert set(calls) == set(range(1, m.generator.n_layers))  # crossover uniform in 1..L-1
    m0 = _model(style_mixing=0.0).train()
    calls.clear()
    m0._fakes(2, m0.levels, 1.0)
    assert calls == []


def test_mapping_normalises_z():
    m = _model()
    z = torch.randn(3, 8)
    assert torch.allclose(m.generator.mapping(z), m.generator.mapping(5 * z), atol=1e-5)


def test_style_groups():
    assert style_groups(3) == {"coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}
    assert style_groups(1) == {"coarse": [0, 1], "middle": [], "fine": [2, 3]}


def test_r1_loss_and_progressive_fade():
    from genzoo.losses.gan import bce_d

    m = _model(style_mixing=0.0).train()
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    torch.manual_seed(3)
    t = m.loss({"x": x}, "D")
    torch.manual_seed(3)  # the same fakes again, then the loss by hand
    fake = m._fakes(4, m.levels, 1.0)[0].detach()
    real = x.clone().requires_grad_(True)
    out_r = m.discriminator(real, m.levels, 1.0)
    (grad,) = torch.autograd.grad(out_r.sum(), real)
    r1 = grad.flatten(1).pow(2).sum(1).mean()  # E ||grad D(x)||^2
    expect = bce_d(out_r, m.discriminator(fake, m.levels, 1.0)) + 10.0 / 2 * r1
    assert t["gp"].item() == pytest.approx(r1.item(), rel=1e-4)
    assert t["loss"].item() == pytest.approx(expect.item(), rel=1e-4)
    g = _model(progressive=True, noise=False)
    ws = g.styles(torch.randn(2, 8))
    syn = g.generator.synthesis
    old = syn(ws, 1, 1.0)  # 8x8
    assert torch.allclose(syn(ws, 2, 0.0), old.repeat_interleave(2, 2).repeat_interleave(2, 3),
                          atol=1e-6)


def test_figures_from_a_trained_run(tmp_path, capsys):
    from PIL import Image

    run = tmp_path / "run"
    train(tiny_config("stylegan", steps=2, ema_decay=0.9), run)
    for fig in ("style-mixing", "noise", "truncation"):
        out = tmp_path / f"{fig}.png"
        assert "wrote" in run_ok(capsys, "plot", fig, run, "--out", out)
        with Image.open(out) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    run_ok(capsys, "plot", "interpolation", run, "--out", tmp_path / "walk.gif", "--steps", 4)
    with Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames == 6  # 4 forward, 2 back
    assert "--psi" in run_error(capsys, "plot", "truncation", run, "--psi", "a,b")
    gan = tmp_path / "gan"
    train(tiny_config("gan", steps=1), gan)
    assert "stylegan" in run_error(capsys, "plot", "noise", gan, "--out", tmp_path / "n.png")


def test_tiny_stylegan_trains_and_samples_in_range(tmp_path):
    run = tmp_path / "r"
    res = train(tiny_config("stylegan", steps=3), run)
    assert res["step"] == 3
    m = _model()
    x = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 32, 32) and x.abs().max() <= 1


def test_bad_truncation_cutoff():
    from genzoo.errors import GenzooError

    with pytest.raises(GenzooError, match="truncation_cutoff"):
        _model(truncation_cutoff=99)
