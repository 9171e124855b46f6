"""WaveNet's own math: causality and receptive field, mu-law, fast == naive sampling, a
normalised likelihood, and the CLI round trip to WAV files."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models.wavenet import WaveNet, WaveNetConfig, mu_law_decode, mu_law_encode


def _model(T=64, classes=0, seed=0, **kw) -> WaveNet:
    kw = {"residual_channels": 4, "skip_channels": 8, "dilations": (1, 2, 4), **kw}
    torch.manual_seed(seed)
    m = WaveNet(WaveNetConfig(**kw), DataSpec("audio", (1, T), num_classes=classes))
    with torch.no_grad():  # away from the initial values: sharper, more varied distributions
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


# ----------------------------------------------------------------------------- causality
@pytest.mark.parametrize("kw", [{}, {"cycles": 2}, {"kernel_size": 3, "dilations": (1, 3)}])
def test_causal_and_receptive_field_matches_formula(kw):
    m = _model(classes=3, **kw)
    dil = m.cfg.all_dilations
    R = (m.cfg.kernel_size - 1) * sum(dil) + 1
    assert m.receptive_field == R
    T = R + 30
    x = (torch.rand(2, 1, T, generator=torch.Generator().manual_seed(1)) * 1.8 - 0.9)
    x[:, :, :8] = 0  # silence: the straight-through gradient must not vanish there
    x.requires_grad_(True)
    logits = m.causal_logits(x, torch.tensor([0, 2]))  # (B, Q, T)
    assert logits.shape == (2, 256, T)
    w = torch.randn(256, generator=torch.Generator().manual_seed(2))
    for t in (0, 5, R - 1, R, T - 1):
        (g,) = torch.autograd.grad((logits[1, :, t] * w).sum(), x, retain_graph=True)
        assert g[0].abs().sum() == 0  # examples do not mix
        nz = (g[1, 0] != 0).nonzero().flatten().tolist()
        assert torch.all(g[1, 0, t:] == 0), f"output {t} depends on inputs at or after {t}"
        # every input the receptive field holds counts, none before it
        assert nz == list(range(max(0, t - R), t)), (t, nz)


def test_causal_logits_predict_the_next_level_and_loss_is_their_cross_entropy():
    m = _model(classes=2)
    x = torch.rand(3, 1, 40) * 2 - 1
    y = torch.tensor([0, 1, 1])
    logits = m.causal_logits(x, y)
    loss = m.loss({"x": x, "y": y}, "main")
    ce = F.cross_entropy(logits, mu_law_encode(x[:, 0]))
    assert torch.allclose(loss["loss"], ce)
    assert torch.allclose(loss["bits_per_sample"], ce / math.log(2))
    # y=None means label 0 (for tools that know nothing of labels)
    assert torch.equal(m.causal_logits(x), m.causal_logits(x, 0))
    with pytest.raises(GenzooError, match="labels"):
        m.loss({"x": x}, "main")


# ----------------------------------------------------------------------------- mu-law
@pytest.mark.parametrize("levels", [256, 16])
def test_mu_law_round_trip_within_the_step_and_monotonic(levels):
    mu = levels - 1
    x = torch.linspace(-1, 1, 200_001, dtype=torch.float64).float()
    q = mu_law_encode(x, levels)
    xr = mu_law_decode(q, levels)
    # rounding moves f(x) by at most half a step, 1/mu; x = ((1+mu)^|f| - 1)/mu grows by at
    # most a factor (1+mu)^(1/mu) over that step, so |x - x^| <= (1 + mu|x|)((1+mu)^(1/mu)-1)/mu
    bound = (1 + mu * x.abs()) * ((1 + mu) ** (1 / mu) - 1) / mu
    assert torch.all((x - xr).abs() <= bound + 1e-6)
    assert (x - xr).abs().max() > 0.5 * bound.max()  # the bound is tight, not vacuous
    assert torch.all(q[1:] >= q[:-1]), "encode must be monotonic"
    levels_t = torch.arange(levels)
    assert torch.all(mu_law_decode(levels_t, levels).diff() > 0), "decode strictly increasing"
    assert torch.equal(mu_law_encode(mu_law_decode(levels_t, levels), levels), levels_t)
    assert q[0] == 0 and q[-1] == mu and q.min() == 0 and q.max() == mu
    assert mu_law_decode(torch.tensor([0, mu]), levels).tolist() == [-1.0, 1.0]
    assert mu_law_encode(torch.tensor([-5.0, 5.0]), levels).tolist() == [0, mu]  # clamped
    assert set(q.unique().tolist()) == set(range(levels))  # every level is used


# ----------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("classes,kw", [(0, {}), (3, {}), (3, {"kernel_size": 3, "cycles": 2}),
                                        (0, {"quant_levels": 16})])
def test_fast_sampler_equals_naive_sampler(classes, kw):
    m = _model(classes=classes, **kw)
    T = 3 * m.receptive_field + 5  # well past the first full window

    def draw(fn, **extra):
        return fn(3, generator=torch.Generator().manual_seed(11), length=T, **extra)

    fast, naive = draw(m.sample), draw(m.sample_naive)
    assert fast.shape == (3, 1, T)
    assert torch.equal(fast, naive)
    assert len(fast.unique()) > 5  # not a constant signal
    if classes:
        y = torch.tensor([2, 0, 1])
        assert torch.equal(draw(m.sample, y=y), draw(m.sample_naive, y=y))
        assert not torch.equal(draw(m.sample, y=y), fast)
    # the uniforms are drawn time-major: a shorter sample is a prefix of a longer one
    short = m.sample(3, generator=torch.Generator().manual_seed(11), length=T // 2)
    assert torch.equal(short, fast[..., :T // 2])


def test_sampler_arithmetic_agrees_with_the_training_network():
    """The samplers' per-position arithmetic computes the same function as causal_logits."""
    m = _model(classes=2, cycles=2)
    R, T = m.receptive_field, 2 * m.receptive_field
    x = mu_law_decode(torch.randint(0, 256, (2, T)), 256).unsqueeze(1)  # exactly on levels
    y = torch.tensor([1, 0])
    ref = m.causal_logits(x, y)  # (2, Q, T)
    q = mu_law_encode(x[:, 0])
    q_in = torch.cat([torch.full((2, 1), m.start), q[:, :-1]], 1)
    with torch.no_grad():
        weights = [layer.exact_weights() for layer in m.layers]
        cond = m._cond(y, 2)
        for t in (0, 3, R - 1, T - 1):
            out = m._window_logits(q_in[:, max(0, t - R + 1):t + 1], cond, weights)
            assert torch.allclose(out, ref[:, :, t], atol=1e-5, rtol=1e-5), t


# ----------------------------------------------------------------------------- likelihood
def _all_sequences(levels: int, T: int) -> torch.Tensor:
    q = torch.cartesian_prod(*[torch.arange(levels)] * T).reshape(-1, T)  # (levels^T, T)
    return mu_law_decode(q, levels).unsqueeze(1)  # (levels^T, 1, T)


@pytest.mark.parametrize("levels,T,classes", [(256, 2, 0), (4, 4, 0), (4, 3, 2)])
def test_log_prob_sums_to_one_over_all_sequences(levels, T, classes):
    m = _model(T=T, classes=classes, quant_levels=levels)
    x = _all_sequences(levels, T)
    ys = [None] if not classes else [0, 1, None]  # each p(x|y), and the marginal p(x)
    for y in ys:
        total = torch.zeros((), dtype=torch.float64)
        for chunk in x.split(8192):
            lab = None if y is None else torch.full((len(chunk),), y)
            total += m.log_prob(chunk, lab).double().exp().sum()
        assert abs(total.item() - 1) < 1e-4, (y, total.item())


def test_log_prob_is_minus_loss_times_length():
    m = _model(T=50, classes=4)
    x = torch.rand(6, 1, 50) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    lp = m.log_prob(x, y)  # nats per example
    assert lp.shape == (6,)
    with torch.no_grad():
        loss = m.loss({"x": x, "y": y}, "main")["loss"]
    assert torch.allclose(lp.mean(), -loss * 50, rtol=1e-5)
    # the marginal over labels lies between the best and the worst label's likelihood
    per = torch.stack([m.log_prob(x, torch.full((6,), k)) for k in range(4)])
    marg = m.log_prob(x)
    assert torch.all(marg <= per.max(0).values + 1e-4) and torch.all(marg >= per.min(0).values)


def test_bad_settings_and_data_are_refused():
    with pytest.raises(GenzooError, match="kernel_size"):
        WaveNetConfig(kernel_size=1).check()
    with pytest.raises(GenzooError, match="dilations"):
        WaveNetConfig(dilations=(1, 0)).check()
    with pytest.raises(GenzooError, match="quant_levels"):
        WaveNetConfig(quant_levels=1).check()
    with pytest.raises(GenzooError, match="audio"):
        WaveNet(WaveNetConfig(), DataSpec("image", (1, 8, 8)))
    with pytest.raises(GenzooError, match="mono"):
        WaveNet(WaveNetConfig(), DataSpec("audio", (2, 64)))


# ----------------------------------------------------------------------------- CLI
def test_cli_train_then_sample_wav_files(tmp_path, capsys):
    from genzoo.cli import main
    from genzoo.data.audio import read_wav

    run = tmp_path / "run"
    args = ["train", "wavenet", "--out", str(run), "--steps", "4", "--batch-size", "8",
            "--set", "clip_length=64", "--set", "residual_channels=4", "--set", "skip_channels=8",
            "--set", "dilations=1,2,4", "--set", "n_samples=3", "--set", "progress=none",
            "--set", "sample_rate=4000"]
    assert main(args) == 0
    assert (run / "samples" / "step-000004.png").is_file()
    out = tmp_path / "x.wav"
    assert main(["sample", str(run), "--out", str(out), "--n", "3"]) == 0
    printed = capsys.readouterr().out
    assert "x-000.wav" in printed and "x.png" in printed
    for i in range(3):
        rate, a = read_wav(tmp_path / f"x-{i:03d}.wav")
        assert rate == 4000 and a.shape == (64,) and abs(a).max() <= 1
    assert (tmp_path / "x.png").is_file() and not out.exists()
    assert main(["sample", str(run), "--out", str(tmp_path / "y.npy"), "--n", "2"]) == 0
