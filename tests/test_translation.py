"""CycleGAN and pix2pix: the image pool, the cycle and identity losses, PatchGAN and U-Net shapes,
exact resume with the pool, the translation metrics and `genzoo translate`."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import run_error, run_ok, tiny_config
from torch import nn

from genzoo.data import DataConfig, load_dataset
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.base import read_safetensors
from genzoo.models.cyclegan import cycle_loss, identity_loss
from genzoo.models.translation_nets import (
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    receptive_field,
)
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint

# ----------------------------------------------------------------------------- the image pool


def _tagged(start: int, n: int) -> torch.Tensor:
    """n one-pixel images whose value is their id: start, start + 1, ..."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1)


def test_pool_fill_phase_returns_and_stores_every_image():
    pool = ImagePool(5, (1, 1, 1), p=0.5)
    torch.manual_seed(0)
    out = pool.query(_tagged(0, 3))
    assert out.flatten().tolist() == [0, 1, 2] and int(pool.count) == 3
    # two more fill the pool: returned as they are; the last one meets a full pool
    before = torch.get_rng_state()
    out = pool.query(_tagged(3, 2))
    assert out.flatten().tolist() == [3, 4]
    assert torch.equal(torch.get_rng_state(), before), "the fill phase draws no random numbers"
    assert pool.images.flatten().tolist() == [0, 1, 2, 3, 4] and int(pool.count) == 5


@pytest.mark.parametrize("p", [0.0, 0.5, 0.8, 1.0])
def test_pool_returns_past_images_with_probability_p(p):
    """Once full, each query image is swapped for a stored one with probability p; the stored
    one returned was inserted earlier, and the new one takes its place."""
    size, n = 50, 4000
    pool = ImagePool(size, (1, 1, 1), p=p)
    pool.query(_tagged(0, size))  # fill
    torch.manual_seed(1)
    past = 0
    for i in range(n):
        new = size + i
        out = int(pool.query(_tagged(new, 1)))
        stored = set(pool.images.flatten().int().tolist())
        if out == new:  # returned as is: the pool did not change
            assert new not in stored
        else:  # swapped: an earlier image comes back and the new one is stored instead
            past += 1
            assert out < new and out not in stored and new in stored
        assert len(stored) == size
    # binomial(4000, p): the std of the fraction is at most 0.008; 4 std of tolerance
    assert abs(past / n - p) < 0.032, f"{past / n} returned from the pool, expected {p}"


def test_pool_picks_stored_images_uniformly():
    pool = ImagePool(10, (1, 1, 1), p=1.0)
    torch.manual_seed(2)
    pool.query(_tagged(0, 10))
    slots = torch.zeros(10)
    for i in range(3000):  # p=1: every query swaps one slot; which slot does the new id land in
        pool.query(_tagged(100 + i, 1))
        slots[(pool.images.flatten() == 100 + i).nonzero()[0, 0]] += 1
    assert (slots / 3000 - 0.1).abs().max() < 0.025, slots  # 4.6 std of a 300-count bin


def test_pool_of_size_zero_is_a_pass_through():
    pool = ImagePool(0, (1, 1, 1))
    x = _tagged(0, 4)
    assert torch.equal(pool.query(x), x)


# ----------------------------------------------------------------------------- losses by hand


def test_cycle_and_identity_losses_by_hand():
    x = torch.tensor([[[[0.5, -1.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    rec = torch.tensor([[[[0.0, -0.5], [0.25, 1.0]]]])
    assert cycle_loss(x, rec).item() == pytest.approx((0.5 + 0.5 + 0.25 + 0.0) / 4)
    assert identity_loss(x, rec).item() == pytest.approx(0.3125)
    assert cycle_loss(x, x).item() == 0.0


class _Affine(nn.Module):
    def __init__(self, scale, shift):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return self.scale * x + self.shift


class _Const(nn.Module):
    """A 'discriminator' scoring every patch of every image with the same value: (B, 1, 2, 2)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1, 2, 2), self.value)


def test_cyclegan_generator_loss_is_the_papers_sum():
    """G(a) = 0.5 a, F(b) = b + 0.1, D_B = 0.2, D_A = 0.6 everywhere; lambda 10, identity 0.5:
    adv = (0.2-1)^2 + (0.6-1)^2 = 0.8; cycle = |F(G(a)) - a| + |G(F(b)) - b| and identity =
    |G(b) - b| + |F(a) - a| worked out per pixel below."""
    cfg = tiny_config("cyclegan")
    data = load_dataset(cfg.data, "train")
    model = build_model("cyclegan", cfg.model_cfg, data.spec)
    model.gen_ab, model.gen_ba = _Affine(0.5, 0.0), _Affine(1.0, 0.1)
    model.disc_b, model.disc_a = _Const(0.2), _Const(0.6)
    model.eval()  # no preview to store from these 2-channel images
    a = torch.tensor([0.4, -0.2]).view(1, 2, 1, 1).expand(1, 2, 8, 8)  # (1, 2, 8, 8)
    b = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    terms = model.loss({"x": a, "x_b": b}, "G")
    # F(G(a)) - a = 0.5 a + 0.1 - a = -0.5 a + 0.1: |-0.1|, |0.2| -> mean 0.15
    # G(F(b)) - b = 0.5 (b + 0.1) - b = -0.5 b + 0.05: |-0.45|, |0.05| -> mean 0.25
    cyc = 0.15 + 0.25
    # G(b) - b = -0.5 b: 0.5, 0 -> 0.25 ; F(a) - a = 0.1 -> 0.1
    idt = 0.25 + 0.1
    adv = (0.2 - 1) ** 2 + (0.6 - 1) ** 2
    assert terms["cycle"].item() == pytest.approx(cyc)
    assert terms["identity"].item() == pytest.approx(idt)
    assert terms["adv"].item() == pytest.approx(adv)
    assert terms["loss"].item() == pytest.approx(adv + 10 * cyc + 0.5 * 10 * idt)
    # lambda_cycle_b weighs the B -> A -> B cycle and, as in the reference code, G's identity
    model.cfg.lambda_cycle_b = 2.0
    terms = model.loss({"x": a, "x_b": b}, "G")
    assert terms["loss"].item() == pytest.approx(adv + 10 * 0.15 + 2 * 0.25
                                                 + 0.5 * (2 * 0.25 + 10 * 0.1))
    assert terms["cycle"].item() == pytest.approx(cyc)  # the logged terms stay unweighted
    # identity_follows=lambda_cycle: G's identity keeps lambda_cycle while B's cycle is 2
    model.cfg.identity_follows = "lambda_cycle"
    terms = model.loss({"x": a, "x_b": b}, "G")
    assert terms["loss"].item() == pytest.approx(adv + 10 * 0.15 + 2 * 0.25
                                                 + 0.5 * (10 * 0.25 + 10 * 0.1))


def test_invariance_terms_equal_hand_computed_values():
    """invariance_b=invert adds lambda_inv |F(-b) - F(b)|; with F(b) = b + 0.1 that is
    |-2 b| = mean(2, 0) = 1.0; invariance_a=invert adds |G(-a) - G(a)| = |a| = mean(0.4, 0.2) =
    0.3; channel-roll on b = (1, 0) -> (0, 1): |roll(b) - b| = 1.0. An F that ignores the change
    (|b|) scores 0, and the term reaches both translations' parameters."""
    cfg = tiny_config("cyclegan")
    data = load_dataset(cfg.data, "train")
    model = build_model("cyclegan", cfg.model_cfg, data.spec)
    model.gen_ab, model.gen_ba = _Affine(0.5, 0.0), _Affine(1.0, 0.1)
    model.disc_b, model.disc_a = _Const(0.2), _Const(0.6)
    model.eval()
    a = torch.tensor([0.4, -0.2]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    b = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    plain = model.loss({"x": a, "x_b": b}, "G")
    assert "invariance" not in plain
    for inv_a, inv_b, want in [((), ("invert",), 1.0), (("invert",), (), 0.3),
                               ((), ("channel-roll",), 1.0),
                               ((), ("invert-first",), 1.0),  # b = (1, 0) -> (-1, 0)
                               (("invert-first",), (), 0.2),  # G(a) = a / 2: |0.4, 0| / 2
                               ((), ("half-contrast",), 0.25),  # |b / 2 - b| = (0.5, 0) / 2
                               (("invert",), ("invert", "channel-roll"), 2.3)]:
        model.cfg.invariance_a, model.cfg.invariance_b = inv_a, inv_b
        model.cfg.lambda_invariance = 4.0
        terms = model.loss({"x": a, "x_b": b}, "G")
        assert terms["invariance"].item() == pytest.approx(want)
        assert terms["loss"].item() == pytest.approx(plain["loss"].item() + 4.0 * want)

    class _Abs(nn.Module):
        def forward(self, x):
            return x.abs()
    model.gen_ba = _Abs()
    model.cfg.invariance_a, model.cfg.invariance_b = (), ("invert",)
    assert model.loss({"x": a, "x_b": b}, "G")["invariance"].item() == 0.0
    # with real generators the term has a gradient for F (and for G with invariance_a)
    real = build_model("cyclegan", cfg.model_cfg, data.spec)
    real.cfg.invariance_a, real.cfg.invariance_b = ("invert",), ("invert",)
    real.eval()
    x = torch.rand(2, *data.spec.shape) * 2 - 1
    fb, fa = real.gen_ab(x), real.gen_ba(x)
    real._invariance(x, x, fb, fa).backward()
    for net in (real.gen_ab, real.gen_ba):
        assert sum(p.grad.abs().sum() for p in net.parameters() if p.grad is not None) > 0


def test_cycle_modulo_invariance_scores_the_nearest_variant_per_image():
    """With invariance_b=invert and cycle_modulo_invariance, an image brought back inverted
    costs nothing in the B cycle, per image; the A cycle (no invariance) is unchanged. The
    orbit of invert + channel-roll on RGB has 6 members, on one channel 2."""
    from genzoo.models.cyclegan import orbit

    cfg = tiny_config("cyclegan")
    data = load_dataset(cfg.data, "train")
    model = build_model("cyclegan", cfg.model_cfg, data.spec)
    model.cfg.invariance_b = ("invert",)
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x_rec = torch.stack([x[0], -x[1]])  # first image back as it was, second inverted
    assert model._cycle(x, x_rec, ("invert",)).item() == pytest.approx(
        (x_rec - x).abs().mean().item())  # switch off: the plain L1
    model.cfg.cycle_modulo_invariance = True
    assert model._cycle(x, x_rec, ("invert",)).item() == 0.0
    assert model._cycle(x, x_rec, ()).item() == pytest.approx((x_rec - x).abs().mean().item())
    off = torch.stack([x[0] + 0.5, -x[1]])  # image 0 off by 0.5 everywhere, image 1 exact
    want = (0.5 + 0.0) / 2
    assert model._cycle(x, off, ("invert",)).item() == pytest.approx(want)
    assert len(orbit(x, ("invert", "channel-roll"))) == 6
    # every subset of inverted channels (8) in every roll (3)
    assert len(orbit(x, ("invert-first", "channel-roll"))) == 24
    # a contrast cut never comes back, so it is not part of an orbit
    assert len(orbit(x, ("invert", "half-contrast"))) == 2
    assert len(orbit(x, ("half-contrast",))) == 1
    assert len(orbit(x[:, :1], ("invert", "channel-roll"))) == 2
    # in the loss: G(F(b)) = -(b + 0.1) is b inverted, off by 0.1
    model.gen_ab, model.gen_ba = _Affine(-1.0, 0.0), _Affine(1.0, 0.1)
    model.disc_b, model.disc_a = _Const(0.2), _Const(0.6)
    model.eval()
    a = torch.tensor([0.4, -0.2]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    b = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    # |F(G(a)) - a| = |-2a + 0.1| -> (0.7, 0.5); |G(F(b)) + b| = 0.1 instead of |-2b - 0.1|
    assert model.loss({"x": a, "x_b": b}, "G")["cycle"].item() == pytest.approx(0.6 + 0.1)
    model.cfg.cycle_modulo_invariance = False
    assert model.loss({"x": a, "x_b": b}, "G")["cycle"].item() == pytest.approx(0.6 + 1.1)


def test_cycle_augment_maps_back_a_random_variant_in_training_only():
    """cycle_augment with invariance_b=invert: the A cycle maps back G(a) or -G(a), drawn per
    image from the global RNG; with G = identity and F(x) = x the cycle error of an image is 0
    when it was kept and 2|a| when it was inverted. Eval mode and no invariance: plain cycle."""
    cfg = tiny_config("cyclegan")
    data = load_dataset(cfg.data, "train")
    model = build_model("cyclegan", cfg.model_cfg, data.spec)
    model.gen_ab, model.gen_ba = _Affine(1.0, 0.0), _Affine(1.0, 0.0)
    model.disc_b, model.disc_a = _Const(0.2), _Const(0.6)
    model.cfg.invariance_b, model.cfg.cycle_augment = ("invert",), True
    model.cfg.lambda_identity = 0.0
    model.train()
    model.preview_n.fill_(1)
    a = torch.full((6, 2, 8, 8), 0.5)
    b = torch.zeros(6, 2, 8, 8)  # F(b) = 0: the B cycle and the invariance term are 0
    torch.manual_seed(3)
    terms = model.loss({"x": a, "x_b": b}, "G")
    torch.manual_seed(3)
    flipped = torch.randint(2, (6,))  # the draw _augment makes: 1 = the inverted variant
    assert 0 < int(flipped.sum()) < 6  # this seed draws both kinds
    assert terms["cycle"].item() == pytest.approx(flipped.float().mean().item() * 1.0)
    model.eval()
    assert model.loss({"x": a, "x_b": b}, "G")["cycle"].item() == 0.0
    model.train()
    model.cfg.invariance_b = ()
    assert model.loss({"x": a, "x_b": b}, "G")["cycle"].item() == 0.0


def test_auto_invariances_come_from_the_datasets_and_are_written_out(tmp_path, capsys):
    """`auto` takes the changes the domain's dataset declares: mnist-m declares invert,
    invert-first, channel-roll and half-contrast, mnist5k nothing, a folder layout nothing;
    config.yaml records the result, so a resumed run does not depend on the registry; an
    unresolved `auto` is refused."""
    from genzoo.config import build_config
    from genzoo.data import DATASETS, _ensure_loaded

    _ensure_loaded()
    assert DATASETS["mnist-m"].invariances == ("invert", "invert-first", "channel-roll",
                                                "half-contrast")
    assert DATASETS["mnist5k"].invariances == ()
    cfg = build_config("cyclegan", overrides=[("model.invariance_a", "auto"),
                                              ("model.invariance_b", "invert,auto")])
    assert cfg.model_cfg.invariance_a == ()
    assert cfg.model_cfg.invariance_b == ("invert", "invert-first", "channel-roll",
                                          "half-contrast")  # no repeats
    folder = build_config("cyclegan", overrides=[("data.name", "unpaired-folder"),
                                                 ("data.target", None),
                                                 ("model.invariance_b", "auto")])
    assert folder.model_cfg.invariance_b == ()
    cfg.model_cfg.invariance_b = ("auto",)
    with pytest.raises(GenzooError, match="'auto' is resolved from the data"):
        cfg.model_cfg.check()
    run = tmp_path / "run"
    run_ok(capsys, "train", "cyclegan", "--out", run, "--steps", 1, "--set", "ngf=4",
           "--set", "ndf=4", "--set", "blocks=1", "--set", "model.invariance_b=auto",
           "--set", "progress=none", "--batch-size", 2)
    saved = (run / "config.yaml").read_text()
    assert "invariance_b:\n  - invert\n  - invert-first\n  - channel-roll\n  - half-contrast" \
        in saved, saved
    assert "G/invariance" in (run / "metrics.jsonl").read_text()


@pytest.mark.parametrize("key, value, message", [
    ("invariance_b", ("flip",), "invariance_b: 'flip' is not a known change"),
    ("pool_prob", 1.5, "pool_prob=1.5 must be in"),
    ("loss", "ebgan", "needs an autoencoder discriminator"),
    ("lambda_invariance", -1.0, "must be >= 0"),
])
def test_cyclegan_config_refuses(key, value, message):
    cfg = tiny_config("cyclegan")
    data = load_dataset(cfg.data, "train")
    setattr(cfg.model_cfg, key, value)
    with pytest.raises(GenzooError, match=message):
        build_model("cyclegan", cfg.model_cfg, data.spec)


def test_cycle_noise_perturbs_only_the_cycles_input_and_only_in_training():
    """cycle_noise=s: the cycle terms map G(a) + s n1 and F(b) + s n2 back (n ~ N(0, 1), drawn in
    that order); eval mode and s=0 give the plain cycle. Same affine stand-ins as above."""
    cfg = tiny_config("cyclegan")
    cfg.model_cfg.cycle_noise = 0.3
    data = load_dataset(cfg.data, "train")
    model = build_model("cyclegan", cfg.model_cfg, data.spec)
    model.gen_ab, model.gen_ba = _Affine(0.5, 0.0), _Affine(1.0, 0.1)
    model.disc_b, model.disc_a = _Const(0.2), _Const(0.6)
    a = torch.tensor([0.4, -0.2]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    b = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    model.eval()
    assert model.loss({"x": a, "x_b": b}, "G")["cycle"].item() == pytest.approx(0.15 + 0.25)
    model.train()
    model.preview_n.fill_(1)  # nothing to store from these 2-channel stand-ins
    torch.manual_seed(5)
    terms = model.loss({"x": a, "x_b": b}, "G")
    torch.manual_seed(5)
    n1, n2 = torch.randn(a.shape), torch.randn(b.shape)
    want = ((0.5 * a + 0.3 * n1 + 0.1 - a).abs().mean()
            + (0.5 * (b + 0.1 + 0.3 * n2) - b).abs().mean())
    assert terms["cycle"].item() == pytest.approx(want.item(), rel=1e-6)
    assert terms["cycle"].item() != pytest.approx(0.15 + 0.25, abs=1e-3)
    assert terms["identity"].item() == pytest.approx(0.25 + 0.1)  # identity: no noise
    cfg.model_cfg.cycle_noise = -0.1
    with pytest.raises(GenzooError, match="cycle_noise=-0.1 must be >= 0"):
        build_model("cyclegan", cfg.model_cfg, data.spec)


# ----------------------------------------------------------------------------- network shapes


@pytest.mark.parametrize("layers,size,out", [(3, 256, 30), (2, 28, 5), (1, 8, 2)])
def test_patchgan_output_shape(layers, size, out):
    d = PatchDiscriminator(3, 4, layers)
    assert tuple(d(torch.zeros(2, 3, size, size)).shape) == (2, 1, out, out)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field_matches_the_gradient_footprint(layers):
    """The input pixels that move one central output: a square of receptive_field(layers)."""
    assert receptive_field(3) == 70  # the paper's 70x70 PatchGAN
    torch.manual_seed(0)
    d = PatchDiscriminator(1, 4, layers, norm="none")  # a norm would couple every position
    size = receptive_field(layers) * 2 + 16
    x = torch.randn(1, 1, size, size, requires_grad=True)
    y = d(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    rows, cols = (x.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == receptive_field(layers)
    assert int(cols.max() - cols.min() + 1) == receptive_field(layers)


def test_patchgan_minibatch_std_makes_each_score_depend_on_the_batch():
    """Without the switch an image's scores depend on that image alone; with it they also
    depend on the rest of the batch (the spread channel), and a batch of identical images gets
    the zero-spread value."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 28, 28)
    y = x.clone()
    y[1:] = torch.randn(3, 3, 28, 28)  # the same first image among other companions
    for flag in (False, True):
        torch.manual_seed(1)
        d = PatchDiscriminator(3, 4, 2, norm="instance", minibatch_std=flag).eval()
        same = torch.allclose(d(x)[0], d(y)[0])
        assert same is (not flag)
    with torch.no_grad():
        h = d.net[:-2](x[:1].expand(4, -1, -1, -1))  # features of 4 identical images
        stat = d.net[-2](h)[:, -1]  # the appended channel
    assert torch.allclose(stat, torch.full_like(stat, 1e-4))  # sqrt(0 + 1e-8)



def test_resnet_generator_keeps_the_shape():
    g = ResnetGenerator(3, 3, ngf=4, blocks=2, downs=2)
    y = g(torch.randn(2, 3, 28, 28))
    assert y.shape == (2, 3, 28, 28) and y.abs().max() <= 1


def test_unet_skips_join_maps_of_the_same_size():
    g = UNetGenerator(1, 3, ngf=4, depth=3, dropout=0.5)
    seen = []
    for up in g.up[1:]:  # every decoder level after the innermost takes [decoder, skip]
        up.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    y = g(torch.randn(2, 1, 32, 32))
    assert y.shape == (2, 3, 32, 32)
    # level widths 4, 8, 16 at 16, 8, 4 px: the decoder map and the skip each bring C channels
    assert seen == [(2, 16, 8, 8), (2, 8, 16, 16)]


def test_unet_output_reaches_the_input_through_the_skips_alone():
    """With the bottleneck cut (its conv zeroed), the output still depends on the input: the
    skip connections carry it."""
    torch.manual_seed(0)
    g = UNetGenerator(1, 1, ngf=4, depth=3, dropout=0.0)
    with torch.no_grad():
        inner = g.down[-1][-1]  # the innermost conv
        inner.weight.zero_()
        inner.bias.zero_()
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    g(x).sum().backward()
    assert x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- training runs


def _weights(run):
    return read_safetensors(latest_checkpoint(run) / "model.safetensors")[0]


@pytest.mark.parametrize("augment", [False, True])
def test_cyclegan_resume_is_bit_exact_with_the_pool(tmp_path, augment):
    """8 steps of batch 16 put 128 images through each pool of 4: the swap phase is exercised;
    the pool's images and count are in the checkpoint, so the resumed run lands on the same
    weights and the same pool. With cycle_augment (the preset's), the variants drawn from the
    global RNG after the resume are the ones the unbroken run drew."""
    def cfg(steps):
        c = tiny_config("cyclegan", steps=steps, checkpoint_every=3)
        if augment:
            c.model_cfg.invariance_b = ("invert-first", "channel-roll")
            c.model_cfg.cycle_augment = True
        return c
    full, part = tmp_path / "full", tmp_path / "part"
    train(cfg(8), full)
    train(cfg(7), part)
    shutil.rmtree(part / "checkpoints" / "step-000007")
    train(cfg(8), part, resume=True)
    a, b = _weights(full), _weights(part)
    assert {"pool_a.images", "pool_a.count", "pool_b.images", "preview_a"} <= a.keys()
    assert int(a["pool_a.count"]) == 4 and a["pool_b.images"].abs().sum() > 0
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cyclegan") / "run"
    train(tiny_config("cyclegan", steps=2, checkpoint_every=2), run)
    return run


def test_report_says_translation_samples_are_fixed_inputs(tiny_run, tmp_path):
    """The report's caption of a translation run names its stored inputs, not noise."""
    from conftest import cli
    assert cli("report", tiny_run, "--out", tmp_path / "r.html") == 0
    page = (tmp_path / "r.html").read_text()
    assert "The same stored inputs every time, each beside its translation (AtoB, BtoA)" in page
    assert "The same noise every time" not in page


def test_samples_show_inputs_beside_translations(tiny_run):
    from genzoo.train.rundir import load_run

    model, cfg, _ = load_run(tiny_run)
    x = model.sample(8)  # quads (a, G(a), b, F(b))
    assert x.shape == (8, 3, 8, 8)
    assert torch.equal(x[0], model.preview_a[0]) and torch.equal(x[2], model.preview_b[0])
    assert torch.allclose(x[1], model.gen_ab(model.preview_a[:1])[0], atol=1e-5)
    assert torch.allclose(x[3], model.gen_ba(model.preview_b[:1])[0], atol=1e-5)
    first = load_dataset(cfg.data, "train").batch(0, 16, cfg.train.seed)
    assert torch.equal(model.preview_a[0], first["x"][0])  # the first training batch


def test_translate_cli_file_and_folder(tiny_run, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray((torch.rand(8, 8, 3) * 255).byte().numpy()).save(src / f"im{i}.png")
    (src / "notes.txt").write_text("not an image")
    out = run_ok(capsys, "translate", tiny_run, "--input", src, "--direction", "BtoA",
                 "--out", tmp_path / "out")
    assert "translated 3 images BtoA" in out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["im0.png", "im1.png", "im2.png"]
    assert Image.open(tmp_path / "out" / "im0.png").size == (8, 8)
    run_ok(capsys, "translate", tiny_run, "--input", src / "im1.png", "--out",
           tmp_path / "one.png")
    assert (tmp_path / "one.png").is_file()


def test_translate_cli_errors(tiny_run, tmp_path, capsys):
    assert "does not exist" in run_error(capsys, "translate", tiny_run, "--input",
                                         tmp_path / "nope.png", "--out", tmp_path / "o.png")
    (tmp_path / "a.png").write_bytes(b"not a png")
    assert "cannot read" in run_error(capsys, "translate", tiny_run, "--input",
                                      tmp_path / "a.png", "--out", tmp_path / "o.png")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    err = run_error(capsys, "translate", tiny_run, "--input", tmp_path / "b.png",
                    "--direction", "sideways", "--out", tmp_path / "o.png")
    assert "--direction 'sideways' is not valid" in err
    assert "must be a .png" in run_error(capsys, "translate", tiny_run, "--input",
                                         tmp_path / "b.png", "--out", tmp_path / "o.jpg")
    assert "does not exist" in run_error(capsys, "translate", tmp_path / "norun", "--input",
                                         tmp_path / "b.png", "--out", tmp_path / "o.png")


# ----------------------------------------------------------------------------- pix2pix


class _Gen(nn.Module):
    def forward(self, x):
        return 0.5 * x


def test_pix2pix_generator_loss_is_adversarial_plus_100_l1():
    """G(a) = 0.5 a and D = 0.3 everywhere: adv = softplus(-0.3) (non-saturating), and
    L1 = mean |0.5 a - b| worked out by hand."""
    cfg = tiny_config("pix2pix")
    data = load_dataset(cfg.data, "train")
    model = build_model("pix2pix", cfg.model_cfg, data.spec).eval()
    model.generator, model.discriminator = _Gen(), _Const(0.3)
    a = torch.tensor([0.4, -0.8]).view(2, 1, 1, 1).expand(2, 1, 8, 8)  # two flat images
    b = torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).expand(2, 1, 8, 8)
    terms = model.loss({"x": a, "x_b": b}, "G")
    l1 = (abs(0.2 - 1.0) + abs(-0.4 - 0.0)) / 2
    adv = torch.nn.functional.softplus(torch.tensor(-0.3)).item()
    assert terms["l1"].item() == pytest.approx(l1)
    assert terms["adv"].item() == pytest.approx(adv)
    assert terms["loss"].item() == pytest.approx(adv + 100 * l1)


def test_pix2pix_discriminator_sees_the_input_beside_the_output():
    cfg = tiny_config("pix2pix")
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    model = build_model("pix2pix", cfg.model_cfg, data.spec).eval()
    assert model.discriminator.net[0].in_channels == 6  # digit as RGB (3) + digits-m (3)
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    assert not torch.allclose(model._d(a, b), model._d(torch.randn(2, 3, 8, 8), b))


def test_sobel_edges_outline_a_square():
    from genzoo.data.edges import sobel_edges

    img = torch.zeros(1, 1, 12, 12, dtype=torch.uint8)
    img[..., 3:9, 3:9] = 255  # a 6x6 filled square
    e = sobel_edges(img)[0, 0] > 0
    assert e[3, 5] and e[2, 5] and e[8, 5] and e[9, 5]  # both sides of each border
    assert not e[5, 5] and not e[4:8, 4:8].any()  # flat inside
    assert not e[0, 0] and not e[11, 11]  # flat outside


def test_edges2mnist_pairs_are_aligned():
    data = load_dataset(DataConfig(name="edges2mnist"), "test")
    assert data.paired and data.spec.extras["domains"] == ("mnist5k-edges", "mnist5k")
    digits = load_dataset(DataConfig(name="mnist5k"), "test")
    batch = data.batch(3, 16, 0)
    idx = digits.indices(3, 16, 0)
    assert torch.equal(batch["x_b"], digits.to_float(digits.x[idx]))
    assert torch.equal(batch["y"], batch["y_b"])


# ----------------------------------------------------------------------------- metrics


def test_psnr_by_hand():
    from genzoo.metrics.translation import psnr

    x, ref = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    ref[1] = 0.5  # MSE 1 and 0.25 over the range 2: 10 log10(4), 10 log10(16)
    assert psnr(x, ref).tolist() == pytest.approx([6.0206, 12.0412], abs=1e-4)


@pytest.fixture()
def tiny_classifiers(tmp_path, monkeypatch):
    """A few steps of the domain CNN on each tiny domain, registered as their classifiers."""
    from genzoo.metrics.classifier import train_classifier
    from genzoo.metrics.features import register_classifier

    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    for name in ("digits", "digits-m"):
        d = tmp_path / f"clf-{name}"
        train_classifier(DataConfig(name=name), d, steps=3, batch_size=32, log=lambda s: None)
        register_classifier(name, d)


def test_translation_accuracy_and_cycle_error_recomputed(tiny_run, tiny_classifiers, capsys):
    from genzoo.metrics.features import ClassifierExtractor, default_classifier
    from genzoo.train.rundir import load_run

    run_ok(capsys, "eval", tiny_run, "--metrics", "translation-accuracy,cycle-error")
    doc = json.loads((tiny_run / "eval" / "metrics.json").read_text())["metrics"]
    assert (tiny_run / "eval" / "translations.png").is_file()
    model, cfg, _ = load_run(tiny_run)
    test = load_dataset(cfg.data, "test")
    xa, xb = test.a.to_float(test.a.x), test.b.to_float(test.b.x)
    with torch.no_grad():
        fb, fa = model.gen_ab(xa), model.gen_ba(xb)
        clf_b = ClassifierExtractor(default_classifier("digits-m"), "cpu")
        clf_a = ClassifierExtractor(default_classifier("digits"), "cpu")
        acc_ab = (clf_b(fb)["logits"].argmax(1) == test.a.y).float().mean().item()
        acc_ba = (clf_a(fa)["logits"].argmax(1) == test.b.y).float().mean().item()
        cyc_a = (model.gen_ba(fb) - xa).abs().mean().item()
    got = doc["translation-accuracy"]
    assert got["acc_AtoB"] == pytest.approx(acc_ab) and got["acc_BtoA"] == pytest.approx(acc_ba)
    assert got["n_AtoB"] == len(xa) == 300
    assert doc["cycle-error"]["cycle_A"] == pytest.approx(cyc_a, rel=1e-5)


def test_psnr_metric_on_a_pix2pix_run(tmp_path, capsys):
    from genzoo.metrics.translation import psnr
    from genzoo.train.rundir import load_run

    run = tmp_path / "p2p"
    train(tiny_config("pix2pix", steps=2, checkpoint_every=2), run)
    run_ok(capsys, "eval", run, "--metrics", "psnr", "--n", "50")
    got = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]["psnr"]
    model, cfg, _ = load_run(run)
    test = load_dataset(cfg.data, "test")
    a, b = test.a.to_float(test.a.x[:50]), test.b.to_float(test.b.x[:50])
    with torch.no_grad():
        fake = model.translate(a)
    assert got["n"] == 50
    assert got["psnr"] == pytest.approx(psnr(fake, b).mean().item(), rel=1e-5)
    assert got["l1"] == pytest.approx((fake - b).abs().mean().item(), rel=1e-5)
    err = run_error(capsys, "eval", run, "--metrics", "cycle-error")
    assert "translates both ways" in err


# ----------------------------------------------------------------------------- command line


def test_presets_hold_the_papers_settings():
    from genzoo.config import build_config

    c = build_config("cyclegan")
    assert (c.data.name, c.data.target) == ("mnist5k", "mnist-m")
    m = c.model_cfg
    assert (m.loss, m.lambda_cycle, m.lambda_identity, m.pool_size) == ("lsgan", 10, 0.5, 50)
    assert (c.train.lr, c.train.beta1, c.train.beta2, c.train.lr_decay) == \
        (2e-4, 0.5, 0.999, "linear")
    p = build_config("pix2pix")
    assert p.data.name == "edges2mnist" and p.model_cfg.lambda_l1 == 100
    assert p.model_cfg.loss == "nsgan" and p.model_cfg.dropout == 0.5


def test_train_cyclegan_without_data_runs_mnist5k_to_mnist_m(tmp_path, capsys):
    out = run_ok(capsys, "train", "cyclegan", "--out", tmp_path / "r", "--steps", 1,
                 "--batch-size", 2, "--set", "ngf=2", "--set", "ndf=2", "--set", "blocks=0",
                 "--set", "progress=none")
    assert "cyclegan finished at step 1" in out
    cfg = (tmp_path / "r" / "config.yaml").read_text()
    assert "target: mnist-m" in cfg and "name: mnist5k" in cfg


@pytest.mark.parametrize("model,args,fragment", [
    ("cyclegan", ["--data", "digits", "--set", "target=null"], "needs two image domains"),
    ("pix2pix", ["--data", "digits", "--set", "target=digits-m"], "needs paired data"),
    ("pix2pix", ["--data", "digits"], "needs two image domains"),
])
def test_one_domain_or_unpaired_data_is_refused_early(model, args, fragment, tmp_path, capsys):
    err = run_error(capsys, "train", model, "--out", tmp_path / "r", *args)
    assert fragment in err
    assert not (tmp_path / "r").exists()
