"""The 2-D mode-collapse lab: the modes metric (VEEGAN/PacGAN protocol), training GIFs and
discriminator decision surfaces. Fake models stand in for the GAN: only its interface is used."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from genzoo.data import DataConfig, load_dataset
from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, get_metric
from genzoo.metrics.modes import mode_stats
from genzoo.viz.lab2d import decision_surface, discriminator_field, reference_extent, training_gif

# P(|x - mu| < 3 std) for an isotropic 2-D Gaussian: |x - mu| / std is chi with 2 degrees of
# freedom (Rayleigh), so the probability is 1 - exp(-3^2 / 2), not the 1-D 99.73%
P_2D = 1 - math.exp(-4.5)
P_1D = math.erf(3 / math.sqrt(2))


def mixture(name: str) -> tuple[torch.Tensor, float]:
    extras = load_dataset(DataConfig(name=name), "test").spec.extras
    return extras["centers"], extras["std"]


class FakeGAN:
    """A generator drawing from a mixture (optionally one mode only), a distance discriminator."""

    def __init__(self, name: str = "8gaussians", kind: str = "logit", only_mode: int | None = None):
        self.centers, self.std = mixture(name)
        self.only_mode = only_mode
        self.spec = DataSpec("points", (2,))
        self.objective = SimpleNamespace(kind=kind, name=f"fake-{kind}")
        self.sample_sizes: list[int] = []
        self.disc_calls: list[tuple[int, bool]] = []  # (batch size, grad enabled)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        assert isinstance(generator, torch.Generator)
        self.sample_sizes.append(n)
        if self.only_mode is None:
            k = torch.randint(len(self.centers), (n,), generator=generator)
        else:
            k = torch.full((n,), self.only_mode)
        return self.centers[k] + self.std * torch.randn(n, 2, generator=generator)

    def nearest_distance(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, self.centers).min(1).values

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        self.disc_calls.append((len(x), torch.is_grad_enabled()))
        d = self.nearest_distance(x)
        return {"logit": 2.0 - 8.0 * d, "critic": -d, "energy": d ** 2}[self.objective.kind]


def context(model, name: str = "8gaussians", **kw) -> EvalContext:
    cfg = SimpleNamespace(data=DataConfig(name=name))
    return EvalContext(model, cfg, torch.device("cpu"), **kw)


# --- mode_stats on hand-built samples ----------------------------------------------------------

def test_three_modes_hit_and_one_sample_far_away():
    c, std = mixture("8gaussians")
    x = torch.cat([c[[0, 3, 5]], torch.tensor([[10.0, 10.0]])])
    s = mode_stats(x, c, std)
    assert (s["modes_covered"], s["modes_total"], s["n"]) == (3, 8, 4)
    assert s["high_quality_fraction"] == 0.75
    assert s["high_quality_per_mode"] == [1, 0, 0, 1, 0, 1, 0, 0]
    assert (s["n_sigma"], s["min_count"]) == (3.0, 1)


@pytest.mark.parametrize("direction", [(1.0, 0.0), (0.0, -1.0), (0.6, 0.8)])
def test_three_sigma_boundary(direction):
    c, std = mixture("8gaussians")
    u = torch.tensor(direction)
    inside = c[2] + 2.9 * std * u
    outside = c[2] + 3.1 * std * u
    assert mode_stats(inside[None], c, std)["high_quality_fraction"] == 1.0
    s = mode_stats(outside[None], c, std)
    assert (s["high_quality_fraction"], s["modes_covered"]) == (0.0, 0)
    # a wider threshold takes it in
    assert mode_stats(outside[None], c, std, n_sigma=3.2)["modes_covered"] == 1


def test_min_count_sets_samples_needed_per_mode():
    c, std = mixture("25gaussians")
    x = torch.cat([c[[0, 0, 0]], c[[7, 7]], c[[12]], torch.tensor([[9.0, 9.0]])])
    covered = {m: mode_stats(x, c, std, min_count=m)["modes_covered"] for m in (1, 2, 3, 4)}
    assert covered == {1: 3, 2: 2, 3: 1, 4: 0}
    # the quality fraction does not depend on min_count
    assert {mode_stats(x, c, std, min_count=m)["high_quality_fraction"] for m in (1, 4)} == {6 / 7}


def test_a_sample_counts_for_its_nearest_mode_only():
    c, std = mixture("25gaussians")  # spacing 2, std 0.05
    x = torch.tensor([[0.9, 0.0]])  # 0.9 from (0, 0), 1.1 from (2, 0)
    s = mode_stats(x, c, std, n_sigma=30)  # radius 1.5 reaches both centres
    i00 = int(((c - torch.tensor([0.0, 0.0])).abs().sum(1) == 0).nonzero())
    assert s["modes_covered"] == 1 and s["high_quality_per_mode"][i00] == 1


def test_non_finite_samples_are_never_high_quality():
    c, std = mixture("8gaussians")
    x = torch.stack([c[0], torch.tensor([math.nan, 0.0]), torch.tensor([math.inf, 2.0])])
    s = mode_stats(x, c, std)
    assert (s["modes_covered"], s["high_quality_fraction"]) == (1, 1 / 3)


@pytest.mark.parametrize("kw", [{"std": 0.0}, {"n_sigma": -1.0}, {"min_count": 0},
                                {"min_count": 1.5}])
def test_mode_stats_rejects_bad_arguments(kw):
    c, std = mixture("8gaussians")
    args = {"std": std, **kw}
    with pytest.raises(ValueError):
        mode_stats(c, c, **args)
    with pytest.raises(ValueError):
        mode_stats(torch.zeros(0, 2), c, std)
    with pytest.raises(ValueError):
        mode_stats(torch.zeros(3, 3), c, std)


# --- the protocol on perfect and collapsed samplers --------------------------------------------

@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_perfect_sampler_covers_every_mode_with_the_2d_three_sigma_mass(name):
    data = load_dataset(DataConfig(name=name), "train")
    c, std = data.spec.extras["centers"], data.spec.extras["std"]
    n = 2500  # the papers' N
    x = data.batch(step=0, batch_size=n, seed=0)["x"]  # the dataset's own sampler
    s = mode_stats(x, c, std)
    assert s["modes_covered"] == s["modes_total"] == len(c)
    sd = math.sqrt(P_2D * (1 - P_2D) / n)  # binomial standard error, about 0.0021
    assert abs(s["high_quality_fraction"] - P_2D) < 4 * sd


def test_the_2d_value_is_not_the_1d_three_sigma_rule():
    # enough samples to tell 0.98889 from 0.99730 (standard error 0.00074)
    data = load_dataset(DataConfig(name="8gaussians"), "train")
    c, std = data.spec.extras["centers"], data.spec.extras["std"]
    n = 20_000
    s = mode_stats(data.batch(step=1, batch_size=n, seed=3)["x"], c, std)
    sd = math.sqrt(P_2D * (1 - P_2D) / n)
    assert abs(s["high_quality_fraction"] - P_2D) < 4 * sd
    assert abs(s["high_quality_fraction"] - P_1D) > 4 * sd


def test_collapsed_sampler_covers_one_mode():
    model = FakeGAN("8gaussians", only_mode=3)
    x = model.sample(2500, generator=torch.Generator().manual_seed(0))
    s = mode_stats(x, model.centers, model.std)
    assert (s["modes_covered"], s["modes_total"]) == (1, 8)
    assert s["high_quality_per_mode"][3] == round(s["high_quality_fraction"] * 2500)


# --- the registered metric ---------------------------------------------------------------------

def test_metric_is_registered_and_follows_the_protocol():
    metric = get_metric("modes")
    assert "VEEGAN" in metric.description and "PacGAN" in metric.description
    model = FakeGAN("8gaussians")
    out = metric.fn(context(model, seed=5, batch_size=300))
    assert set(out) == {"modes_covered", "modes_total", "high_quality_fraction", "n", "n_sigma",
                        "min_count", "units"}
    assert (out["modes_covered"], out["modes_total"], out["n"]) == (8, 8, 2500)
    assert (out["n_sigma"], out["min_count"]) == (3.0, 1)
    assert "radius 2" in out["units"]
    assert abs(out["high_quality_fraction"] - P_2D) < 0.01
    assert model.sample_sizes == [300] * 8 + [100]  # batches of ctx.batch_size
    # seeded by ctx.seed: the same seed (and batch size) gives the same numbers
    assert metric.fn(context(FakeGAN("8gaussians"), seed=5, batch_size=300)) == out
    assert metric.fn(context(FakeGAN("8gaussians"), seed=6, batch_size=300)) != out


def test_metric_options_and_n():
    ctx = context(FakeGAN("25gaussians"), "25gaussians", n=400, batch_size=128,
                  options={"modes_sigma": "1", "modes_min_count": 5})
    out = get_metric("modes").fn(ctx)
    assert (out["n"], out["n_sigma"], out["min_count"], out["modes_total"]) == (400, 1.0, 5, 25)
    # within 1 std in 2-D: 1 - exp(-1/2) = 0.39 of the samples
    assert abs(out["high_quality_fraction"] - (1 - math.exp(-0.5))) < 0.1
    # 400 samples over 25 modes, 39% of them good: about 6 per mode, so some modes miss 5
    assert out["modes_covered"] < 25


def test_metric_on_a_collapsed_generator():
    out = get_metric("modes").fn(context(FakeGAN("8gaussians", only_mode=0), n=500))
    assert (out["modes_covered"], out["modes_total"]) == (1, 8)


def test_metric_needs_mode_centres():
    with pytest.raises(GenzooError, match="swissroll") as e:
        get_metric("modes").fn(context(FakeGAN(), name="swissroll"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw", [{"n": 0}, {"batch_size": 0}, {"options": {"modes_sigma": 0}},
                                {"options": {"modes_min_count": 0}},
                                {"options": {"modes_sigma": "three"}}])
def test_metric_rejects_bad_settings(kw):
    with pytest.raises(GenzooError):
        get_metric("modes").fn(context(FakeGAN(), **kw))


# --- training GIF -----------------------------------------------------------------------------

COLOURS = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (250, 200, 0)]


def test_training_gif_frames_in_step_order(tmp_path: Path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    # written out of order, one past 6 digits (text order would put 1000000 before 999999)
    steps = [999999, 20, 1000000, 100]
    for step, colour in zip(steps, COLOURS):
        Image.new("RGB", (40, 30), colour).save(run / "samples" / f"step-{step:06d}.png")
    (run / "samples" / "step-latest.png").write_bytes(b"not a sample picture")
    (run / "samples" / "notes.png").write_bytes(b"ignored")
    out = training_gif(run, tmp_path / "train.gif", fps=4)
    assert out == tmp_path / "train.gif"
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == len(steps)
        assert im.info.get("loop") == 0 and im.info.get("duration") == 250
        got = [tuple(int(v) for v in np.asarray(f.convert("RGB"))[15, 20])
               for f in ImageSequence.Iterator(im)]
    by_step = dict(zip(steps, COLOURS))
    want = [by_step[s] for s in sorted(steps)]
    assert all(max(abs(a - b) for a, b in zip(g, w)) <= 8 for g, w in zip(got, want)), got


def test_training_gif_errors(tmp_path: Path):
    with pytest.raises(GenzooError, match="does not exist"):
        training_gif(tmp_path / "nope", tmp_path / "x.gif")
    (tmp_path / "run" / "samples").mkdir(parents=True)
    with pytest.raises(GenzooError, match="no sample pictures"):
        training_gif(tmp_path / "run", tmp_path / "x.gif")
    Image.new("RGB", (8, 8)).save(tmp_path / "run" / "samples" / "step-000001.png")
    with pytest.raises(GenzooError, match="fps"):
        training_gif(tmp_path / "run", tmp_path / "x.gif", fps=0)
    with pytest.raises(GenzooError, match="does not exist"):
        training_gif(tmp_path / "run", tmp_path / "missing" / "x.gif")


# --- decision surface -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logit", "critic", "energy"])
def test_decision_surface_png_for_each_kind(tmp_path: Path, kind: str):
    model = FakeGAN("8gaussians", kind=kind)
    ref = model.sample(400, generator=torch.Generator().manual_seed(1))
    out = decision_surface(model, ref, tmp_path / f"{kind}.png", n_samples=200,
                           generator=torch.Generator().manual_seed(2), resolution=60)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 300
    # the grid went through the discriminator in batches, without autograd
    assert sum(b for b, _ in model.disc_calls) == 60 * 60
    assert not any(grad for _, grad in model.disc_calls)


@pytest.mark.parametrize("kind", ["logit", "critic", "energy"])
def test_discriminator_field_reads_each_kind_as_higher_is_more_real(kind: str):
    model = FakeGAN("8gaussians", kind=kind)
    values, label = discriminator_field(model, (-3, 3, -3, 3), resolution=31, batch_size=100)
    assert values.shape == (31, 31)
    assert max(b for b, _ in model.disc_calls) == 100
    xs = torch.linspace(-3, 3, 31)
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    d = model.nearest_distance(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).reshape(31, 31)
    want = {"logit": torch.sigmoid(2.0 - 8.0 * d), "critic": -d, "energy": -(d ** 2)}[kind]
    torch.testing.assert_close(values, want)
    # row i is the i-th y: the cell at (x=2, y=0) is a mode, (x=0, y=2) too; (0, 0) is not
    assert values[15, 25] > values[15, 15] and values[25, 15] > values[15, 15]
    assert {"logit": "P(real)", "critic": "critic", "energy": "-energy"}[kind] in label


def test_decision_surface_errors(tmp_path: Path):
    ref = torch.zeros(10, 2)
    model = FakeGAN(kind="wasserstein-ish")
    with pytest.raises(GenzooError, match="kind"):
        decision_surface(model, ref, tmp_path / "a.png")
    no_d = SimpleNamespace(name="vae", sample=lambda n, generator=None: torch.zeros(n, 2))
    with pytest.raises(GenzooError, match="no discriminator"):
        decision_surface(no_d, ref, tmp_path / "a.png")
    with pytest.raises(GenzooError, match=r"\(M, 2\)"):
        decision_surface(FakeGAN(), torch.zeros(10, 3), tmp_path / "a.png")
    with pytest.raises(GenzooError, match="extent"):
        decision_surface(FakeGAN(), ref, tmp_path / "a.png", extent=(1, -1, 0, 1))


def test_reference_extent_frames_the_data_with_a_margin():
    c, _ = mixture("25gaussians")
    x0, x1, y0, y1 = reference_extent(c)
    assert x0 < -4 and x1 > 4 and y0 < -4 and y1 > 4
    assert x1 - x0 == pytest.approx(y1 - y0) and x1 - x0 == pytest.approx(8 * 1.5)
    assert reference_extent(torch.zeros(3, 2)) == (-1.0, 1.0, -1.0, 1.0)


def test_decision_surface_looks_in_eval_mode_and_restores_training(tmp_path: Path):
    class ModuleGAN(torch.nn.Module):
        objective = SimpleNamespace(kind="critic", name="wgan")

        def __init__(self):
            super().__init__()
            self.d = torch.nn.Linear(2, 1)
            self.modes_seen: list[bool] = []

        def sample(self, n, generator=None):
            self.modes_seen.append(self.training)
            return torch.randn(n, 2, generator=generator)

        def discriminate(self, x):
            self.modes_seen.append(self.training)
            assert x.device == self.d.weight.device
            return self.d(x).squeeze(1)

    model = ModuleGAN().train()
    decision_surface(model, torch.randn(50, 2), tmp_path / "s.png", n_samples=20, resolution=8)
    assert model.modes_seen and not any(model.modes_seen)
    assert model.training
