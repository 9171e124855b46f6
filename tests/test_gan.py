"""The GAN: the model contract for every loss of the zoo and every training trick, then one test
per trick that it does exactly what its config comment says.

Tiny networks only (widths 4-8, digits at 8x8 or 16x16, 2-D points), so the file runs in seconds.
Images: arch=dcgan on `digits` (labelled); points: arch=mlp on `8gaussians` (no labels).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    check_loss_terms,
    check_phase_gradients,
    check_save_load,
    only_phase_grads,
    tiny_config,
)
from torch import nn

from genzoo.config import RunConfig, TrainConfig, apply_overrides
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.losses import GAN_LOSSES
from genzoo.losses import gan as L
from genzoo.models import build_model, load_model
from genzoo.models.gan import GAN, GANConfig
from genzoo.models.layers import MinibatchDiscrimination, MinibatchStdDev
from genzoo.train import train
from genzoo.train.ema import EMA
from genzoo.train.loop import make_optimizer

# ------------------------------------------------------------------------------------ helpers

ARCH = {  # data and network overrides of the two tiny set-ups
    "dcgan": {"data.name": "digits", "data.image_size": 8, "model.arch": "dcgan"},
    "mlp": {"data.name": "8gaussians", "data.image_size": None, "model.arch": "mlp",
            "model.hidden": 8, "model.layers": 2},
}
SMALL = {"model.nz": 4, "model.ngf": 4, "model.ndf": 4, "model.code_dim": 4,
         "model.embed_dim": 4, "model.n_cat": 4, "model.n_cont": 2}
LABELLED = ("cgan", "acgan")  # need labels: digits only
B = 16  # batch size of every contract check

_DATA: dict = {}


def run_config(arch: str = "dcgan", *, data: dict | None = None, steps: int = 3,
               **model) -> RunConfig:
    """tiny_config("gan") on `arch`, with data.* overrides and model.* fields."""
    cfg = tiny_config("gan", steps=steps)
    over = {**ARCH[arch], **SMALL, **{f"data.{k}": v for k, v in (data or {}).items()},
            **{f"model.{k}": v for k, v in model.items()}}
    apply_overrides(cfg, list(over.items()))
    cfg.check()
    return cfg


def dataset(cfg: RunConfig):
    key = (cfg.data.name, cfg.data.image_size)
    if key not in _DATA:  # loading digits costs about a second: once per file
        _DATA[key] = load_dataset(cfg.data, "train")
    return _DATA[key]


def make(arch: str = "dcgan", *, data: dict | None = None, seed: int = 0, **model):
    """(model, dataset) for a tiny GAN; the model is in train mode, like the trainer's."""
    cfg = run_config(arch, data=data, **model)
    d = dataset(cfg)
    torch.manual_seed(seed)
    m = build_model("gan", cfg.model_cfg, d.spec)
    m.train()
    return m, d


def batch_of(d, n: int = B, step: int = 0) -> dict[str, torch.Tensor]:
    return d.batch(step, n, 0)


def phase(model, name: str):
    return next(p for p in model.phases if p.name == name)


def modules_of(module: nn.Module, *types) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, types)]


# ------------------------------------------------------------------- the variants under test

def _variants():
    out = []
    for loss in sorted(GAN_LOSSES):  # every loss of the zoo on both networks where it applies
        for arch in ("dcgan", "mlp"):
            if arch == "mlp" and loss in LABELLED:
                continue
            out.append((f"{loss}-{arch}", arch, {"loss": loss}))
    alone = [  # each trick switched on alone (nsgan unless the trick needs another loss)
        ("sphere", {"latent": "sphere"}, ("dcgan", "mlp")),
        ("mixed", {"d_batch": "mixed"}, ("dcgan", "mlp")),
        ("norm-instance", {"norm_g": "instance", "norm_d": "instance"}, ("dcgan",)),
        ("norm-layer", {"norm_g": "layer", "norm_d": "layer"}, ("dcgan", "mlp")),
        ("norm-none", {"norm_g": "none", "norm_d": "none"}, ("dcgan", "mlp")),
        ("leaky", {"act_g": "leaky"}, ("dcgan", "mlp")),
        ("pixelshuffle", {"up": "pixelshuffle"}, ("dcgan",)),
        ("avgpool", {"down": "avgpool"}, ("dcgan",)),
        ("linear-out", {"g_output": "linear"}, ("dcgan",)),
        ("tanh-out", {"g_output": "tanh"}, ("mlp",)),
        ("spectral", {"spectral_norm": True}, ("dcgan", "mlp")),
        ("stddev", {"minibatch": "stddev"}, ("dcgan", "mlp")),
        ("mbdisc", {"minibatch": "discrimination"}, ("dcgan", "mlp")),
        ("pack", {"pack": 2}, ("dcgan", "mlp")),
        ("gp-wgan-gp", {"gp": "wgan-gp"}, ("dcgan", "mlp")),
        ("gp-dragan", {"gp": "dragan"}, ("dcgan", "mlp")),
        ("gp-r1", {"gp": "r1"}, ("dcgan", "mlp")),
        ("clip", {"loss": "wgan", "clip": 0.01}, ("dcgan", "mlp")),
        ("n-critic", {"n_critic": 5}, ("dcgan", "mlp")),
        ("smoothing", {"label_smoothing": 0.1}, ("dcgan", "mlp")),
        ("flip", {"label_flip": 0.3}, ("dcgan", "mlp")),
        ("replay", {"replay": 32}, ("dcgan", "mlp")),
        ("noise", {"instance_noise": 0.5, "instance_noise_steps": 100}, ("dcgan", "mlp")),
        ("feature-matching", {"feature_matching": True}, ("dcgan", "mlp")),
        ("data-scale", {"data_scale": 4.0}, ("mlp",)),
        ("optimizers", {"opt_d": "sgd", "opt_g": "adam", "lr_d": 0.1, "lr_g": 1e-3},
         ("dcgan", "mlp")),
    ]
    for name, over, archs in alone:
        for arch in archs:
            out.append((f"{name}-{arch}", arch, over))
    combos = [
        ("wgan-gp+gp+pack", "mlp", {"loss": "wgan-gp", "gp": "wgan-gp", "pack": 2}),
        ("wgan-gp+gp+pack", "dcgan", {"loss": "wgan-gp", "gp": "wgan-gp", "pack": 2}),
        ("dragan+gp", "dcgan", {"loss": "dragan", "gp": "dragan", "norm_d": "layer"}),
        ("cgan+mixed", "dcgan", {"loss": "cgan", "d_batch": "mixed"}),
        ("cgan+pack", "dcgan", {"loss": "cgan", "pack": 2}),
        ("cgan+wgan-gp", "dcgan", {"loss": "cgan", "gp": "wgan-gp"}),
        ("acgan+stddev", "dcgan", {"loss": "acgan", "minibatch": "stddev"}),
        ("acgan+mbdisc+mixed", "dcgan", {"loss": "acgan", "minibatch": "discrimination",
                                         "d_batch": "mixed"}),
        ("infogan+spectral", "dcgan", {"loss": "infogan", "spectral_norm": True}),
        ("infogan+spectral", "mlp", {"loss": "infogan", "spectral_norm": True}),
        ("infogan+fm", "dcgan", {"loss": "infogan", "feature_matching": True}),
        ("ebgan+pack", "dcgan", {"loss": "ebgan", "pack": 2}),
        ("ebgan+pack", "mlp", {"loss": "ebgan", "pack": 2}),
        ("ebgan+mixed+sn", "dcgan", {"loss": "ebgan", "d_batch": "mixed",
                                     "spectral_norm": True}),
        ("began+replay", "dcgan", {"loss": "began", "replay": 32}),
        ("began+replay", "mlp", {"loss": "began", "replay": 32}),
        ("hinge+sn+avgpool", "dcgan", {"loss": "hinge", "spectral_norm": True,
                                       "down": "avgpool", "norm_d": "none"}),
        ("lsgan+r1+mixed", "mlp", {"loss": "lsgan", "gp": "r1", "d_batch": "mixed"}),
        ("wgan+clip+ncritic", "mlp", {"loss": "wgan", "clip": 0.01, "n_critic": 5,
                                      "opt_d": "rmsprop", "opt_g": "rmsprop"}),
        ("nsgan+replay+noise+smooth", "dcgan", {"replay": 32, "instance_noise": 0.1,
                                                "label_smoothing": 0.1, "latent": "sphere"}),
        ("nsgan+16px+shuffle+pool", "dcgan16", {"up": "pixelshuffle", "down": "avgpool",
                                                "norm_d": "layer"}),
    ]
    for name, arch, over in combos:
        out.append((f"{name}-{arch}", arch, over))
    return out


VARIANTS = _variants()


def _params():
    return [pytest.param(arch, over, id=vid)
            for vid, arch, over in VARIANTS]


def make_variant(arch: str, over: dict, seed: int = 0):
    if arch == "dcgan16":
        return make("dcgan", data={"image_size": 16}, seed=seed, **over)
    return make(arch, seed=seed, **over)


def test_every_loss_is_covered_on_both_networks():
    ids = {vid for vid, _, _ in VARIANTS}
    for loss in GAN_LOSSES:
        assert f"{loss}-dcgan" in ids
        assert (f"{loss}-mlp" in ids) == (loss not in LABELLED)


# ------------------------------------------------------------------------- part 1: contract

@pytest.mark.parametrize("arch,over", _params())
def test_loss_terms(arch, over):
    model, d = make_variant(arch, over)
    assert [p.name for p in model.phases] == ["D", "G"]
    check_loss_terms(model, batch_of(d))


@pytest.mark.parametrize("arch,over", _params())
def test_phase_gradients(arch, over):
    """In its phase every parameter of that phase gets a non-zero gradient, no other one any."""
    model, d = make_variant(arch, over)
    check_phase_gradients(model, batch_of(d))


@pytest.mark.parametrize("arch,over", _params())
def test_sample_shape_and_determinism(arch, over):
    model, d = make_variant(arch, over)
    model.eval()
    x = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert tuple(x.shape) == (5, *d.spec.shape)
    assert torch.isfinite(x).all()
    if d.spec.kind == "image" and over.get("g_output", "auto") != "linear":
        assert x.min() >= -1 and x.max() <= 1
    y = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, y), "the same generator must give the same samples"
    z = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(x, z), "another generator must give other samples"


@pytest.mark.parametrize("arch,over", _params())
def test_save_load_round_trip(arch, over, tmp_path):
    model, d = make_variant(arch, over)
    model.loss(batch_of(d), "D")  # fills a replay buffer, moves running stats
    if hasattr(model, "k"):
        model.k.fill_(0.37)
    check_save_load(model, tmp_path / "model.safetensors")


def _train_params():
    return [pytest.param(arch, loss, id=f"{loss}-{arch}")
            for loss in sorted(GAN_LOSSES) for arch in ("dcgan", "mlp")
            if not (arch == "mlp" and loss in LABELLED)]


@pytest.mark.parametrize("arch,loss", _train_params())
def test_train_three_steps(arch, loss, tmp_path):
    cfg = run_config(arch, steps=3, loss=loss)
    res = train(cfg, tmp_path / "run")
    assert res["step"] == 3 and not res["stopped"]
    row = res["last"]
    assert "D/loss" in row and "G/loss" in row
    for k, v in row.items():
        if isinstance(v, float):
            assert math.isfinite(v), f"{k} = {v}"


# ------------------------------------------------------- part 2: each trick does what it says

@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_latent_sphere(arch):
    model, d = make(arch, latent="sphere", nz=6)
    radius = torch.full((64,), 6 ** 0.5)
    torch.testing.assert_close(model.latent(64, torch.Generator().manual_seed(0)).norm(dim=1),
                               radius)
    torch.testing.assert_close(model.latent(64).norm(dim=1), radius)
    seen = []  # the z the generator gets inside the losses lies on the sphere too
    model.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model.loss(batch_of(d), "D")
    model.loss(batch_of(d), "G")
    assert len(seen) == 2
    for z in seen:
        torch.testing.assert_close(z.norm(dim=1), radius[:B])
    gauss, _ = make(arch, nz=6)
    norms = gauss.latent(64, torch.Generator().manual_seed(0)).norm(dim=1)
    assert (norms - 6 ** 0.5).abs().max() > 0.1


@pytest.mark.parametrize("loss", ["nsgan", "ebgan"])
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("d_batch,calls", [("mixed", 1), ("separate", 2)])
def test_d_batch_forward_count(arch, loss, d_batch, calls):
    model, d = make(arch, loss=loss, d_batch=d_batch)
    n = []
    model.discriminator.body.register_forward_hook(lambda m, i, o: n.append(i[0].shape[0]))
    model.loss(batch_of(d), "D")
    assert len(n) == calls
    assert sum(n) == 2 * B


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_d_batch_mixed_changes_batchnorm_stats(arch):
    kw = {"data": {"image_size": 16}} if arch == "dcgan" else {}  # 16px: D has a batch norm
    sep, d = make(arch, norm_d="batch", **kw)
    mix, _ = make(arch, norm_d="batch", d_batch="mixed", **kw)
    mix.load_state_dict(sep.state_dict())
    batch = batch_of(d)
    stats = {}
    for name, m in (("separate", sep), ("mixed", mix)):
        bns = modules_of(m.discriminator, nn.BatchNorm1d, nn.BatchNorm2d)
        assert bns, "D should have a batch norm"
        rows = []
        bns[0].register_forward_pre_hook(lambda mod, args, rows=rows: rows.append(len(args[0])))
        torch.manual_seed(1)
        m.loss(batch, "D")
        stats[name] = (rows, [bn.running_mean.clone() for bn in bns],
                       [int(bn.num_batches_tracked) for bn in bns])
    assert stats["separate"][0] == [B, B] and stats["mixed"][0] == [2 * B]
    assert set(stats["separate"][2]) == {2} and set(stats["mixed"][2]) == {1}
    for a, b in zip(stats["separate"][1], stats["mixed"][1]):
        assert not torch.allclose(a, b)


NORM_TYPES = {"batch": (nn.BatchNorm1d, nn.BatchNorm2d), "instance": (nn.InstanceNorm2d,),
              "layer": (nn.GroupNorm, nn.LayerNorm)}
NORMS = ("batch", "instance", "layer", "none")


def norm_kinds(module: nn.Module) -> set[str]:
    return {k for k, ts in NORM_TYPES.items() if modules_of(module, *ts)}


def _norm_params():
    out = []
    for loss in ("nsgan", "began"):
        for arch in ("dcgan", "mlp"):
            for i, nd in enumerate(NORMS):
                ng = NORMS[(i + 1) % 4]  # G and D differ, so each switch is seen on its own
                if arch == "mlp" and "instance" in (ng, nd):
                    continue
                out.append(pytest.param(
                    loss, arch, ng, nd, id=f"{loss}-{arch}-g_{ng}-d_{nd}"))
    return out


@pytest.mark.parametrize("loss,arch,norm_g,norm_d", _norm_params())
def test_norm_switches(loss, arch, norm_g, norm_d):
    kw = {"data": {"image_size": 16}} if arch == "dcgan" else {}  # 16px: 2 stages, D has norms
    model, _ = make(arch, loss=loss, norm_g=norm_g, norm_d=norm_d, **kw)
    assert norm_kinds(model.generator) == {norm_g} - {"none"}
    assert norm_kinds(model.discriminator) == {norm_d} - {"none"}


@pytest.mark.parametrize("which", ["norm_g", "norm_d"])
def test_mlp_refuses_instance_norm(which):
    with pytest.raises(GenzooError, match="batch, layer or none"):
        make("mlp", **{which: "instance"})


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_act_g_leaky(arch):
    leaky, _ = make(arch, act_g="leaky")
    assert not modules_of(leaky.generator, nn.ReLU)
    acts = modules_of(leaky.generator, nn.LeakyReLU)
    assert acts and all(a.negative_slope == 0.2 for a in acts)
    relu, _ = make(arch)
    assert modules_of(relu.generator, nn.ReLU) and not modules_of(relu.generator, nn.LeakyReLU)


@pytest.mark.parametrize("size", [8, 16])
def test_up_pixelshuffle(size):
    model, d = make("dcgan", data={"image_size": size}, up="pixelshuffle")
    g = model.generator
    assert len(modules_of(g, nn.PixelShuffle)) == int(math.log2(size)) - 2
    tconv = modules_of(g, nn.ConvTranspose2d)
    assert len(tconv) == 1 and tconv[0] is g.net[0]
    z = torch.randn(3, model.cfg.nz)
    assert tuple(g.net[0](z.view(3, -1, 1, 1)).shape[2:]) == (4, 4)  # 1x1 -> 4x4
    assert tuple(model.generate(z).shape) == (3, *d.spec.shape)
    plain, _ = make("dcgan", data={"image_size": size})
    assert not modules_of(plain.generator, nn.PixelShuffle)


@pytest.mark.parametrize("size", [8, 16])
def test_down_avgpool(size):
    model, d = make("dcgan", data={"image_size": size}, down="avgpool")
    D = model.discriminator
    assert len(modules_of(D, nn.AvgPool2d)) == int(math.log2(size)) - 2
    convs = modules_of(D, nn.Conv2d)
    assert convs and all(c.stride == (1, 1) for c in convs)
    assert model.d_out(batch_of(d)["x"])[0].shape == (B,)
    plain, _ = make("dcgan", data={"image_size": size})
    assert not modules_of(plain.discriminator, nn.AvgPool2d)
    assert any(c.stride == (2, 2) for c in modules_of(plain.discriminator, nn.Conv2d))


def test_g_output():
    img, _ = make("dcgan")
    assert isinstance(img.generator.net[-1], nn.Tanh)
    pts, _ = make("mlp")
    assert not modules_of(pts.generator, nn.Tanh)
    lin, _ = make("dcgan", g_output="linear")
    assert not modules_of(lin.generator, nn.Tanh)
    tanh_pts, _ = make("mlp", g_output="tanh")
    assert isinstance(tanh_pts.generator.net[-1], nn.Tanh)


def fixed_d(model, monkeypatch, out_r, out_f):
    """Make D's outputs on the real and fake batches fixed tensors."""
    def both(real, fake, y, y_fake):
        return out_r, out_f, torch.zeros(len(out_r), 3), torch.zeros(len(out_f), 3)
    monkeypatch.setattr(model, "_both", both)


def test_label_smoothing_targets(monkeypatch):
    r, f = torch.linspace(-2, 3, B), torch.linspace(-1, 1.5, B)
    for s in (0.1, 0.0):
        model, d = make("mlp", label_smoothing=s)
        fixed_d(model, monkeypatch, r, f)
        t = 1 - s
        want = (t * F.softplus(-r) + (1 - t) * F.softplus(r)).mean() + F.softplus(f).mean()
        torch.testing.assert_close(model.loss(batch_of(d), "D")["loss"], want)


def test_label_flip_rate(monkeypatch):
    p, n = 0.3, 20000
    model, d = make("mlp", label_flip=p)
    fixed_d(model, monkeypatch, torch.full((n,), 5.0), torch.full((n,), -5.0))
    torch.manual_seed(0)
    got = float(model.loss(batch_of(d, n), "D")["loss"])
    side = (1 - p) * F.softplus(torch.tensor(-5.0)) + p * F.softplus(torch.tensor(5.0))
    # real side: target 1 w.p. 1-p, 0 w.p. p; the fake side mirrors it. Each term has std
    # sqrt(p(1-p)) * 5 / sqrt(n) ~ 0.016: 0.1 is over 4 standard deviations of the sum
    assert abs(got - 2 * float(side)) < 0.1, got


@pytest.mark.parametrize("loss", ["wgan", "wgan-gp", "hinge", "lsgan", "ebgan", "began"])
@pytest.mark.parametrize("trick", ["label_smoothing", "label_flip"])
def test_label_tricks_refused_for_non_bce_losses(loss, trick):
    with pytest.raises(GenzooError, match="BCE"):
        GANConfig(loss=loss, **{trick: 0.1}).check()
    with pytest.raises(GenzooError, match="BCE"):
        make("mlp", loss=loss, **{trick: 0.1})


def record_generate(model) -> list[torch.Tensor]:
    fakes: list[torch.Tensor] = []
    gen = model.generate

    def wrapped(*a, **k):
        out = gen(*a, **k)
        fakes.append(out.detach().clone())
        return out
    model.generate = wrapped
    return fakes


def rows_in(rows: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """(N,) bool: row i of `rows` equals some row of `pool` exactly."""
    return (rows.flatten(1)[:, None] == pool.flatten(1)[None]).all(-1).any(1)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_replay_buffer_fills_with_past_fakes(arch):
    size = 40
    model, d = make(arch, replay=size)
    fakes = record_generate(model)
    assert int(model.replay_n) == 0
    for step in range(6):
        model.loss(batch_of(d, step=step), "D")
        assert int(model.replay_n) == B * (step + 1)
        if B * (step + 1) <= size:  # not full yet: the fakes in the order they came
            n = B * (step + 1)
            assert torch.equal(model.replay_buf[:n], torch.cat(fakes)[:n])
    assert len(fakes) == 6
    assert rows_in(model.replay_buf, torch.cat(fakes)).all(), "the buffer holds past fakes only"
    assert not rows_in(model.replay_buf, torch.cat(fakes[:2])).all(), "the buffer never moves"


@pytest.mark.parametrize("prob,lo,hi", [(0.99, 0.9, 1.0), (0.5, 0.38, 0.62)])
def test_replay_prob_mixes_buffer_into_fakes(prob, lo, hi):
    model, d = make("mlp", replay=64, replay_prob=prob)
    fakes = record_generate(model)
    seen: list[torch.Tensor] = []
    both = model._both
    model._both = lambda real, fake, y, yf: (seen.append(fake.clone()), both(real, fake, y, yf))[1]
    model.loss(batch_of(d), "D")
    assert torch.equal(seen[0], fakes[0]), "an empty buffer leaves the fakes as they are"
    from_buf = 0
    steps = 10
    for step in range(1, steps + 1):
        old = model.replay_buf[:min(int(model.replay_n), 64)].clone()
        model.loss(batch_of(d, step=step), "D")
        current, shown = fakes[-1], seen[-1]
        same = (shown == current).all(1)
        past = rows_in(shown, old)
        assert (same | past).all(), "each fake D sees is the current one or a buffered one"
        from_buf += int((past & ~same).sum())
    frac = from_buf / (steps * B)
    assert lo <= frac <= hi, frac


def test_replay_state_is_saved(tmp_path):
    model, d = make("mlp", replay=32)
    sd = model.state_dict()
    assert "replay_buf" in sd and "replay_n" in sd
    for step in range(3):
        model.loss(batch_of(d, step=step), "D")
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert int(loaded.replay_n) == 3 * B
    assert torch.equal(loaded.replay_buf, model.replay_buf) and loaded.replay_buf.abs().sum() > 0


def test_replay_is_refused_for_labelled_losses():
    # the buffer keeps images without labels: pairing them with new labels would be wrong
    for loss in ("cgan", "acgan"):
        with pytest.raises(GenzooError, match="replay"):
            make("dcgan", loss=loss, replay=64)


def test_per_phase_optimizers_and_learning_rates():
    model, _ = make("mlp", opt_d="sgd", opt_g="adam", lr_d=0.05, lr_g=3e-3)
    tc = TrainConfig(optimizer="rmsprop", lr=1e-4)
    opt_d = make_optimizer(phase(model, "D"), list(model.phase_parameters(phase(model, "D"))), tc)
    opt_g = make_optimizer(phase(model, "G"), list(model.phase_parameters(phase(model, "G"))), tc)
    assert type(opt_d) is torch.optim.SGD and opt_d.param_groups[0]["lr"] == 0.05
    assert type(opt_g) is torch.optim.Adam and opt_g.param_groups[0]["lr"] == 3e-3
    plain, _ = make("mlp")
    for ph in plain.phases:  # unset: the run's optimizer and lr
        o = make_optimizer(ph, list(plain.phase_parameters(ph)), tc)
        assert type(o) is torch.optim.RMSprop and o.param_groups[0]["lr"] == 1e-4


def _gp_params():
    cases = [("lsgan", "r1"), ("hinge", "wgan-gp"), ("nsgan", "dragan"), ("wgan", "r1"),
             ("cgan", "wgan-gp"), ("acgan", "dragan"), ("ebgan", "wgan-gp")]
    return [pytest.param(loss, gp, arch, id=f"{loss}+{gp}-{arch}") for loss, gp in cases
            for arch in ("dcgan", "mlp") if not (arch == "mlp" and loss in LABELLED)]


@pytest.mark.parametrize("loss,gp,arch", _gp_params())
def test_gradient_penalty_adds_weighted_term(loss, gp, arch):
    w = 3.0
    with_gp, d = make(arch, loss=loss, gp=gp, gp_weight=w)
    without, _ = make(arch, loss=loss, gp="none")
    without.load_state_dict(with_gp.state_dict())
    batch = batch_of(d)
    torch.manual_seed(7)
    a = with_gp.loss(batch, "D")
    torch.manual_seed(7)
    b = without.loss(batch, "D")
    assert "gp" not in b and float(a["gp"]) > 0
    weight = w / 2 if gp == "r1" else w
    torch.testing.assert_close(a["loss"] - b["loss"], weight * a["gp"], rtol=1e-5, atol=1e-6)


def test_r1_penalty_value():
    """r1's logged gp is E||grad_x D(x)||^2 on the reals, computed here independently."""
    model, d = make("mlp", gp="r1", norm_d="none")
    x = batch_of(d)["x"]
    gp = float(model.loss({"x": x}, "D")["gp"])
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.d_out(xr)[0].sum(), xr)
    assert gp == pytest.approx(float(g.pow(2).sum(1).mean()), rel=1e-5)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_instance_noise_schedule(arch):
    model, d = make(arch, instance_noise=0.5, instance_noise_steps=100)
    assert model.noise_std == 0.5
    for step, want in ((0, 0.5), (50, 0.25), (100, 0.0), (200, 0.0), (25, 0.375)):
        model.set_progress(step)
        assert model.noise_std == pytest.approx(want, abs=1e-12), step
    const, _ = make(arch, instance_noise=0.5, instance_noise_steps=0)
    for step in (0, 50, 100, 10_000):
        const.set_progress(step)
        assert const.noise_std == 0.5


def test_instance_noise_is_added_to_d_inputs():
    model, d = make("mlp", instance_noise=0.5, instance_noise_steps=100)
    x = batch_of(d, 20000)["x"]
    model.set_progress(50)
    torch.manual_seed(0)
    noise = model._d_input(x, None) - x
    assert noise.std().item() == pytest.approx(0.25, abs=0.01)
    assert noise.mean().abs().item() < 0.01
    model.set_progress(100)
    assert torch.equal(model._d_input(x, None), x)


def test_n_critic_interval_in_training(monkeypatch, tmp_path):
    calls: list[str] = []
    orig = GAN.loss

    def counted(self, batch, ph):
        calls.append(ph)
        return orig(self, batch, ph)
    monkeypatch.setattr(GAN, "loss", counted)
    cfg = run_config("mlp", steps=10, n_critic=5)
    model, _ = make("mlp", n_critic=5)
    assert phase(model, "G").interval == 5 and phase(model, "D").interval == 1
    train(cfg, tmp_path / "run")
    assert calls.count("G") == 2 and calls.count("D") == 10
    assert calls == ["D", "G"] + ["D"] * 4 + ["D", "G"] + ["D"] * 4


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_weight_clipping(arch):
    model, _ = make(arch, loss="wgan", clip=0.01)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.post_step("G")
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"post_step('G') changed {n}"
    model.post_step("D")
    d_names = {f"discriminator.{n}" for n, _ in model.discriminator.named_parameters()}
    assert d_names
    for n, p in model.named_parameters():
        if n in d_names:
            assert p.abs().max() <= 0.01
            assert torch.equal(p, before[n].clamp(-0.01, 0.01))
        else:
            assert torch.equal(p, before[n]), f"clipping changed {n}, not a D weight"
    unclipped, _ = make(arch, loss="wgan", clip=0.0)
    with torch.no_grad():
        for p in unclipped.parameters():
            p.fill_(0.5)
    unclipped.post_step("D")
    assert all((p == 0.5).all() for p in unclipped.parameters())


@pytest.mark.parametrize("shape", [(8, 3, 4, 4), (8, 5)])
def test_minibatch_stddev(shape):
    layer = MinibatchStdDev()
    same = torch.randn(1, *shape[1:]).expand(shape).contiguous()
    out = layer(same)
    assert out.shape == (shape[0], shape[1] + 1, *shape[2:])
    assert torch.equal(out[:, :shape[1]], same)
    assert (out[:, shape[1]:] - 1e-4).abs().max() <= 1e-3  # sqrt(0 + 1e-8)
    x = torch.randn(shape)
    out = layer(x)
    # groups of 4 strided examples: example i is in group i % 2 with i, i+2, i+4, i+6
    for i in range(shape[0]):
        g = x[i % 2::2]
        want = (g.var(0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, shape[1]:], torch.full_like(out[i, shape[1]:], want))


def test_minibatch_discrimination():
    layer = MinibatchDiscrimination(6, n_kernels=5, kernel_dim=3)
    same = torch.randn(1, 6).expand(8, 6)
    out = layer(same)
    assert out.shape == (8, 11)
    torch.testing.assert_close(out[:, 6:], torch.full((8, 5), 7.0))  # sum_j exp(0) - 1 = B - 1
    far = torch.eye(6)[:4] * 1e4  # examples far apart: no neighbours at all
    torch.testing.assert_close(layer(far)[:, 6:], torch.zeros(4, 5))


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_minibatch_layers_in_d(arch):
    std, _ = make(arch, minibatch="stddev")
    assert len(modules_of(std.discriminator, MinibatchStdDev)) == 1
    mbd, _ = make(arch, minibatch="discrimination")
    assert isinstance(mbd.discriminator.mbd, MinibatchDiscrimination)
    assert mbd.discriminator.features == mbd.discriminator.body.features + 32
    plain, _ = make(arch)
    assert not modules_of(plain.discriminator, MinibatchStdDev, MinibatchDiscrimination)


@pytest.mark.parametrize("loss", ["ebgan", "began"])
def test_minibatch_and_feature_matching_refused_for_energy_losses(loss):
    for over in ({"minibatch": "stddev"}, {"feature_matching": True}):
        with pytest.raises(GenzooError, match="autoencoder"):
            make("mlp", loss=loss, **over)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_feature_matching_g_loss(arch):
    model, d = make(arch, feature_matching=True)
    batch = batch_of(d)
    torch.manual_seed(3)
    got = model.loss(batch, "G")["loss"]
    torch.manual_seed(3)
    z = model.latent(B)
    D = model.discriminator
    f_fake = D.forward_features(model.generator(z))
    f_real = D.forward_features(batch["x"])
    want = (f_real.mean(0) - f_fake.mean(0)).pow(2).sum()
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, L.nsgan_g(D.head(f_fake).view(-1)))


def sn_modules(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules()
            if hasattr(m, "parametrizations") and "weight" in m.parametrizations]


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_spectral_norm_bounds_d_weights(arch):
    model, d = make(arch, spectral_norm=True)
    mods = sn_modules(model.discriminator)
    assert len(mods) >= 2 and model.discriminator.head in mods
    assert not sn_modules(model.generator)
    with torch.no_grad():
        for m in mods:  # far from norm 1, so the check cannot pass by accident
            w = m.parametrizations.weight.original
            w.mul_(5 / torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2))
        for step in range(10):  # 20 forward passes of D: real and fake per D loss
            model.loss(batch_of(d, step=step), "D")
    model.eval()
    with torch.no_grad():
        for m in mods:
            w = m.weight
            sigma = float(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2))
            assert abs(sigma - 1) < 0.05, (m, sigma)
    plain, _ = make(arch)
    assert not sn_modules(plain.discriminator)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_pack(arch):
    model, d = make(arch, pack=2)
    first = modules_of(model.discriminator, nn.Conv2d, nn.Linear)[0]
    c = d.spec.shape[0]  # channels (dcgan) or features (mlp)
    assert (first.in_channels if arch == "dcgan" else first.in_features) == 2 * c
    x = batch_of(d)["x"]
    assert model.d_out(x)[0].shape == (B // 2,)
    packed = model._d_input(x, None)
    assert torch.equal(packed[1], torch.cat([x[2], x[3]], 0))  # consecutive examples together
    plain, _ = make(arch)
    first = modules_of(plain.discriminator, nn.Conv2d, nn.Linear)[0]
    assert (first.in_channels if arch == "dcgan" else first.in_features) == c
    assert plain.d_out(x)[0].shape == (B,)




@pytest.mark.parametrize("d_batch", [
    "separate", "mixed"])
def test_pack_odd_batch_keeps_real_and_fake_apart(d_batch):
    model, d = make("mlp", pack=2, d_batch=d_batch, norm_d="none")
    real = batch_of(d, 15)["x"]
    fake = torch.full_like(real, 100.0)
    out_r, out_f, _, _ = model._both(real, fake, None, None)
    assert out_r.shape == out_f.shape == (7,)
    want_f, _ = model.d_out(fake)
    torch.testing.assert_close(out_f, want_f)


def test_acgan_cgan_infogan_heads():
    ac, _ = make("dcgan", loss="acgan")
    assert isinstance(ac.aux, nn.Linear) and ac.aux.out_features == 10
    assert ac.aux.in_features == ac.discriminator.features
    assert "aux" in phase(ac, "D").modules and "aux" not in phase(ac, "G").modules
    cg, _ = make("dcgan", loss="cgan", embed_dim=5)
    assert modules_of(cg.discriminator, nn.Conv2d)[0].in_channels == 1 + 5
    cg2, _ = make("dcgan", loss="cgan", embed_dim=5, pack=2)
    assert modules_of(cg2.discriminator, nn.Conv2d)[0].in_channels == 2 * (1 + 5)
    assert "embed_d" in phase(cg, "D").modules and "embed_g" in phase(cg, "G").modules
    info, d = make("dcgan", loss="infogan", n_cat=4, n_cont=3)
    assert info.q_head[-1].out_features == 4 + 3
    assert "q_head" in phase(info, "G").modules and "q_head" not in phase(info, "D").modules
    only_phase_grads(info, phase(info, "G"))
    try:
        terms = info.loss(batch_of(d), "G")
        assert "info" in terms
        terms["loss"].backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0
                   for p in info.q_head.parameters())
    finally:
        for p in info.parameters():
            p.requires_grad_(True)
    plain, _ = make("dcgan")
    assert not any(hasattr(plain, a) for a in ("aux", "q_head", "embed_d", "embed_g"))


@pytest.mark.parametrize("loss", LABELLED)
def test_labelled_losses_need_labels(loss):
    with pytest.raises(GenzooError, match="labelled"):
        make("mlp", loss=loss)


def test_began_k_update_and_logs(monkeypatch):
    model, d = make("mlp", loss="began", began_lambda_k=0.1)
    model.k.fill_(0.5)
    r, f = torch.full((B,), 1.0), torch.full((B,), 0.2)
    fixed_d(model, monkeypatch, r, f)
    terms = model.loss(batch_of(d), "D")
    torch.testing.assert_close(terms["loss"], torch.tensor(1.0 - 0.5 * 0.2))  # L(x) - k L(G(z))
    torch.testing.assert_close(model.k, torch.tensor(0.5 + 0.1 * (0.5 * 1.0 - 0.2)))
    torch.testing.assert_close(terms["k"], model.k)
    torch.testing.assert_close(terms["M"], torch.tensor(1.0 + abs(0.5 - 0.2)))
    model.cfg.began_lambda_k = 10.0  # k is clipped to [0, 1]
    model.loss(batch_of(d), "D")
    assert float(model.k) == 1.0
    fixed_d(model, monkeypatch, f, r)
    model.loss(batch_of(d), "D")
    assert float(model.k) == 0.0


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_began_k_moves_in_a_real_d_loss(arch):
    model, d = make(arch, loss="began")
    model.k.fill_(0.5)
    terms = model.loss(batch_of(d), "D")
    assert {"M", "k"} <= set(terms)
    assert float(model.k) != 0.5 and 0.0 <= float(model.k) <= 1.0
    assert float(terms["k"]) == float(model.k)


def test_ebgan_losses(monkeypatch):
    model, d = make("mlp", loss="ebgan", margin=2.0, pt_weight=0.3)
    batch = batch_of(d)
    torch.manual_seed(0)
    g = model.loss(batch, "G")
    assert "pt" in g
    torch.manual_seed(0)
    energy, code = model.d_out(model.generator(model.latent(B)))
    torch.testing.assert_close(g["pt"], L.pulling_away(code).detach())
    torch.testing.assert_close(g["loss"], energy.mean() + 0.3 * L.pulling_away(code))
    r, f = torch.linspace(0, 1, B), torch.linspace(0.5, 3, B)
    fixed_d(model, monkeypatch, r, f)
    torch.testing.assert_close(model.loss(batch, "D")["loss"],
                               r.mean() + F.relu(2.0 - f).mean())


def test_data_scale():
    model, d = make("mlp", data={"name": "25gaussians"}, data_scale=4.0)
    model.eval()
    x = model.sample(32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        raw = model.generate(model.latent(32, torch.Generator().manual_seed(5)))
    torch.testing.assert_close(x, 4 * raw, rtol=0, atol=0)
    model.train()
    seen = []
    d_out = model.d_out
    model.d_out = lambda x, y=None: (seen.append(x), d_out(x, y))[1]
    batch = batch_of(d)
    model.loss(batch, "D")
    torch.testing.assert_close(seen[0], batch["x"] / 4, rtol=0, atol=0)  # D sees data / scale


def test_ema_update_exact():
    model, d = make("mlp")  # the MLP generator has batch norm: buffers to copy
    ema = EMA(model, ("generator",), 0.9)
    assert all(k.startswith("generator.") for k in ema.shadow)
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(torch.randn_like(p))
        model.generator(torch.randn(B, model.cfg.nz))  # moves the running statistics
    old = {k: v.clone() for k, v in ema.shadow.items()}
    ema.update()
    params = dict(model.generator.named_parameters())
    buffers = dict(model.generator.named_buffers())
    assert buffers and set(ema.shadow) == {f"generator.{k}" for k in {**params, **buffers}}
    for k, p in params.items():
        want = 0.9 * old[f"generator.{k}"] + 0.1 * p.detach()
        torch.testing.assert_close(ema.shadow[f"generator.{k}"], want)
        assert not torch.equal(ema.shadow[f"generator.{k}"], p)
    for k, b in buffers.items():
        assert torch.equal(ema.shadow[f"generator.{k}"], b)


def test_loss_implies_its_defining_penalty_and_clipping():
    # wgan-gp and dragan are defined by their penalties, wgan by weight clipping: 'auto'/None
    # give them, an explicit value overrides
    assert make("mlp", loss="wgan-gp")[0].cfg.penalty == "wgan-gp"
    assert make("mlp", loss="dragan")[0].cfg.penalty == "dragan"
    assert make("mlp", loss="nsgan")[0].cfg.penalty == "none"
    assert make("mlp", loss="wgan-gp", gp="none")[0].cfg.penalty == "none"
    assert make("mlp", loss="lsgan", gp="r1")[0].cfg.penalty == "r1"
    assert make("mlp", loss="wgan")[0].cfg.weight_clip == 0.01
    assert make("mlp", loss="hinge")[0].cfg.weight_clip == 0.0
    assert make("mlp", loss="wgan", clip=0.05)[0].cfg.weight_clip == 0.05
    model, _ = make("mlp", loss="wgan")
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.fill_(0.5)
    model.post_step("D")
    assert all((p == 0.01).all() for p in model.discriminator.parameters())


@pytest.mark.parametrize("reuse", [True, False])
def test_reuse_fakes_is_the_dcgan_reference_step(reuse):
    """reuse_fakes: one trainer step equals the textbook loop: D on real and on detached fakes,
    D's update, then G through the updated D on the *same* fakes (one G forward in all)."""
    import copy

    model, d = make("dcgan", reuse_fakes=reuse)
    model.train()
    G, D = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    batch = batch_of(d)
    opts = {}
    for ph in model.phases:
        opts[ph.name] = torch.optim.Adam(list(model.phase_parameters(ph)), lr=1e-2)
    g_calls = []
    model.generator.register_forward_hook(lambda m, i, o: g_calls.append(1))
    torch.manual_seed(5)
    model.set_progress(0)
    for ph in model.phases:  # what the trainer does in one step
        only_phase_grads(model, ph)
        opts[ph.name].zero_grad()
        model.loss(batch, ph.name)["loss"].backward()
        opts[ph.name].step()
    for p in model.parameters():
        p.requires_grad_(True)

    torch.manual_seed(5)  # the reference: the same noise (the model's first draw)
    z = torch.randn(B, model.cfg.nz)
    opt_d, opt_g = torch.optim.Adam(D.parameters(), lr=1e-2), torch.optim.Adam(G.parameters(),
                                                                               lr=1e-2)
    real = batch["x"]
    fake = G(z)
    d_loss = F.binary_cross_entropy_with_logits(D(real).view(-1), torch.ones(B)) \
        + F.binary_cross_entropy_with_logits(D(fake.detach()).view(-1), torch.zeros(B))
    d_loss.backward()
    opt_d.step()
    G.zero_grad()
    F.binary_cross_entropy_with_logits(D(fake).view(-1), torch.ones(B)).backward()
    opt_g.step()

    for a, b in zip(D.parameters(), model.discriminator.parameters()):
        torch.testing.assert_close(a, b)  # D's step never depends on the switch
    same = all(torch.allclose(a, b, atol=1e-6)
               for a, b in zip(G.parameters(), model.generator.parameters()))
    assert same == reuse  # without reuse G's step uses fresh noise
    assert len(g_calls) == (1 if reuse else 2)
    assert getattr(model, "_kept", None) is None  # no graph held over to the next step
