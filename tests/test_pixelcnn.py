"""PixelCNN maths: causal masks (colour order, blind spot), normalised likelihoods, samplers,
class conditioning, the prior over VQ-VAE codes, and the receptive-field plot."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from torch import nn

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import pixelcnn
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig


def _model(arch="pixelcnn", shape=(1, 8, 8), output="bernoulli", classes=0, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"channels": 6, "layers": 2, "kernel": 3, "head": 6, **kw}
    cfg = PixelCNNConfig(arch=arch, output=output, conditional=classes > 0, **kw)
    return PixelCNN(cfg, DataSpec("image", shape, classes)).eval()


def _influence(model, x, r, c, ch=None):
    """Sum over the logits at (r, c) (of colour ch, or all) of |d logit / d x|: (C, H, W)."""
    x = x.clone().requires_grad_(True)
    out = model.causal_logits(x)[0, :, :, r, c]  # (C, L)
    out = out if ch is None else out[ch:ch + 1]
    total = torch.zeros_like(x[0])
    for o in out.flatten():  # one backward per logit: exact, no random projection
        (g,) = torch.autograd.grad(o, x, retain_graph=True)
        total += g[0].abs()
    return total


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_no_output_sees_its_own_or_later_pixels(arch):
    model = _model(arch, shape=(1, 6, 7), channels=16, head=16)  # wide: no all-dead ReLUs
    x = torch.randn(1, 1, 6, 7)
    for r, c in [(0, 0), (0, 3), (2, 0), (3, 4), (5, 6)]:
        g = _influence(model, x, r, c)[0]  # (H, W)
        order = torch.arange(6 * 7).view(6, 7)
        i = r * 7 + c
        assert (g[order >= i] == 0).all(), f"{arch} at {(r, c)} sees itself or the future"
        if i > 0:
            assert (g[order < i] > 0).any(), f"{arch} at {(r, c)} sees nothing of the past"


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_colour_channels_are_ordered_r_g_b(arch):
    model = _model(arch, shape=(3, 5, 5), channels=6, head=6)
    x = torch.randn(1, 3, 5, 5)
    r, c = 2, 2
    order = torch.arange(25).view(5, 5)
    for ch in range(3):
        g = _influence(model, x, r, c, ch)  # (3, H, W)
        assert (g[:, order > r * 5 + c] == 0).all(), "a later pixel is seen"
        assert (g[ch:, r, c] == 0).all(), f"colour {ch} sees itself or a later colour"
        assert (g[:ch, r, c] > 0).all(), f"colour {ch} does not see the earlier colours"
        assert (g[:, order < r * 5 + c] > 0).any()


def test_gated_has_no_blind_spot_and_pixelcnn_has_one():
    x = torch.randn(1, 1, 9, 9)
    r, c = 6, 4
    kw = {"shape": (1, 9, 9), "layers": 2, "channels": 16, "head": 16}
    plain = _influence(_model("pixelcnn", **kw), x, r, c)[0]
    gated = _influence(_model("gated", **kw), x, r, c)[0]
    # the window every 3-layer stack of 3x3 kernels should cover: two rows above, c-2 .. c+2,
    # and the two pixels to the left
    window = [(r - dy, c + dx) for dy in (1, 2) for dx in range(-2, 3)] + [(r, c - 1), (r, c - 2)]
    for pos in window:
        assert gated[pos] > 0, f"gated PixelCNN misses {pos}"
    # plain PixelCNN: right moves come only with up moves, so (r-1, c+2) is never reached,
    # though (r-2, c+2) above it is: the blind spot (arXiv:1606.05328, fig. 1)
    assert plain[r - 2, c + 2] > 0 and plain[r - 1, c + 1] > 0
    assert plain[r - 1, c + 2] == 0
    assert int((plain[[p[0] for p in window], [p[1] for p in window]] == 0).sum()) >= 1
    # the gated field has no holes: each row above is one interval of columns around c
    for row in range(r):
        cols = torch.nonzero(gated[row]).flatten().tolist()
        if cols:
            assert cols == list(range(cols[0], cols[-1] + 1)) and cols[0] <= c <= cols[-1]


def _all_binary(shape):
    d = math.prod(shape)
    bits = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)))
    return bits.view(-1, *shape)


@pytest.mark.parametrize("arch,shape", [("pixelcnn", (1, 2, 2)), ("gated", (1, 2, 2)),
                                        ("pixelcnn", (3, 1, 2)), ("gated", (3, 1, 2))])
def test_bernoulli_likelihood_sums_to_one(arch, shape):
    model = _model(arch, shape=shape, channels=6)
    xs = _all_binary(shape)  # 16 grey 2x2 images; 64 colour 1x2 images
    total = model.log_prob(xs).double().exp().sum().item()
    assert abs(total - 1.0) < 1e-5


@pytest.mark.parametrize("arch", ["pixelcnn", "gated"])
def test_categorical_likelihood_sums_to_one_over_all_256x256_images(arch):
    model = _model(arch, shape=(1, 1, 2), output="categorical")
    v = torch.arange(256, dtype=torch.float32) / 127.5 - 1.0  # the 256 levels in data space
    a, b = torch.meshgrid(v, v, indexing="ij")
    xs = torch.stack([a.flatten(), b.flatten()], 1).view(-1, 1, 1, 2)  # all 65,536 images
    total = sum(model.log_prob(chunk).double().exp().sum().item() for chunk in xs.split(16384))
    assert abs(total - 1.0) < 1e-5
    # the mapping to integers is exact: every level is its own class
    assert torch.equal(model._targets(v.view(1, 1, 1, 256)).flatten(), torch.arange(256))


def test_nll_metric_reports_bits_per_dim(tmp_path):
    from genzoo.data import load_dataset
    from genzoo.metrics import evaluate
    from genzoo.train import train
    from genzoo.train.rundir import load_run

    cfg = tiny_config("pixelcnn", steps=3)
    train(cfg, tmp_path / "run")
    res = evaluate(tmp_path / "run", ["nll"], n=40)["metrics"]["nll"]
    model, run_cfg, _ = load_run(tmp_path / "run")
    assert run_cfg.model_cfg.output == "categorical"  # auto, resolved and recorded
    x = load_dataset(run_cfg.data, "test").x[:40]
    nats = -model.log_prob(x).double().mean().item()
    assert abs(res["nll_nats"] - nats) < 1e-3
    assert abs(res["nll_bits_per_dim"] - res["nll_nats"] / (64 * math.log(2))) < 1e-9
    assert res["dims"] == 64


def test_output_auto_follows_binarisation_and_bernoulli_refuses_grey_data():
    spec = DataSpec("image", (1, 4, 4), extras={"binarize": "dynamic"})
    assert PixelCNN(PixelCNNConfig(channels=4, layers=1), spec).output == "bernoulli"
    model = PixelCNN(PixelCNNConfig(channels=4, layers=1), DataSpec("image", (1, 4, 4)))
    assert model.output == "categorical" and model.cfg.output == "categorical"
    with pytest.raises(GenzooError, match="binarize"):
        _model(shape=(1, 4, 4)).log_prob(torch.zeros(2, 1, 4, 4))


@pytest.mark.parametrize("arch,shape,output,classes", [
    ("pixelcnn", (1, 9, 7), "bernoulli", 0), ("gated", (1, 9, 7), "categorical", 0),
    ("pixelcnn", (3, 6, 6), "categorical", 3), ("gated", (1, 8, 8), "bernoulli", 4)])
def test_fast_sampler_equals_naive_sampler(arch, shape, output, classes):
    model = _model(arch, shape=shape, output=output, classes=classes, layers=1)
    assert model.net.reach < min(shape[1:]) // 2  # the window really is cut
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    fast = model.sample(4, generator=g1)
    naive = model.sample(4, generator=g2, naive=True)
    assert torch.equal(fast, naive)
    assert fast.shape == (4, *shape) and fast.min() >= -1 and fast.max() <= 1
    assert len(fast.unique()) > 1


def test_class_conditioning_changes_the_distribution():
    # three classes with one image each: all off, all on, a checkerboard
    board = (torch.arange(5).view(5, 1) + torch.arange(5)) % 2 * 2.0 - 1
    images = torch.stack([-torch.ones(5, 5), torch.ones(5, 5), board]).unsqueeze(1)  # (3,1,5,5)
    model = _model("gated", shape=(1, 5, 5), classes=3, channels=8, head=8).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    y = torch.arange(3).repeat(4)
    for _ in range(60):
        opt.zero_grad()
        model.loss({"x": images[y], "y": y}, "main")["loss"].backward()
        opt.step()
    model.eval()
    lp = torch.stack([model.log_prob(images, y=torch.full((3,), k)) for k in range(3)])  # (3, 3)
    assert (lp.diag() > -1.0).all(), lp  # each class has learnt its image ...
    assert (lp - torch.eye(3) * 1e9 < -10).all(), lp  # ... and gives the others ~0 probability
    # without labels: the mixture over a uniform class prior
    assert torch.allclose(model.log_prob(images), torch.logsumexp(lp, 0) - math.log(3),
                          atol=1e-5)
    # the first pixel sees no pixels, only the label: samples follow each class
    for k in range(3):
        s = model.sample(20, generator=torch.Generator().manual_seed(k), y=torch.full((20,), k))
        assert (s == images[k]).all(dim=(1, 2, 3)).float().mean() > 0.9
    with pytest.raises(GenzooError, match="labelled"):
        PixelCNN(PixelCNNConfig(conditional=True), DataSpec("image", (1, 4, 4)))


def test_conditional_model_trains_with_labels():
    cfg = tiny_config("pixelcnn")
    cfg.model_cfg.conditional = True
    from genzoo.data import load_dataset

    data = load_dataset(cfg.data, "train")
    model = PixelCNN(cfg.model_cfg, data.spec)
    terms = model.loss(data.batch(0, 8, 0), "main")
    terms["loss"].backward()
    assert model.net.cond.weight.grad.abs().sum() > 0
    assert set(terms) == {"loss", "nll_nats", "bits_per_dim"}


# ----------------------------------------------------------------------------- VQ-VAE prior

class StandInVQVAE(nn.Module):
    """The VQ-VAE API on (1, 8, 8) images: 4x4 codes of K=4 from 2x2 mean intensities."""

    codebook_size = 4

    def __init__(self):
        super().__init__()
        self.spec = DataSpec("image", (1, 8, 8), 10)
        self.scale = nn.Parameter(torch.tensor(0.5))

    def encode_codes(self, x):
        m = F.avg_pool2d(x, 2)[:, 0]  # (B, 4, 4) in [-1, 1]
        return ((m + 1) * 2).long().clamp(0, 3)

    def decode_codes(self, codes):
        m = codes.float() / 1.5 - 1  # (B, 4, 4) in [-1, 1]
        return m.repeat_interleave(2, 1).repeat_interleave(2, 2).unsqueeze(1)  # (B, 1, 8, 8)

    def codes_log_likelihood(self, x, codes):
        return -(self.scale * (x - self.decode_codes(codes)) ** 2).flatten(1).sum(1)


def test_prior_over_stand_in_codes_trains_saves_and_reloads(tmp_path, monkeypatch):
    from genzoo.data import load_dataset
    from genzoo.train import train
    from genzoo.train.rundir import load_run

    stand_in = StandInVQVAE()
    monkeypatch.setattr(pixelcnn, "load_frozen_vqvae", lambda path: StandInVQVAE())
    cfg = tiny_config("pixelcnn", steps=4)
    cfg.model_cfg.prior_of = "stand-in"
    result = train(cfg, tmp_path / "prior")
    assert "bits_per_code" in result["last"]
    model, run_cfg, _ = load_run(tmp_path / "prior")
    assert model.grid == (1, 4, 4) and model.levels == 4
    assert not model.vqvae.training
    assert model.vqvae.scale.item() == 0.5  # saved alongside, untouched by training
    assert [p.name for p in model.phases] == ["main"]
    assert all(not n.startswith("vqvae") for p in model.phases for n in p.modules)
    x = load_dataset(run_cfg.data, "test").x[:5]
    codes = stand_in.encode_codes(x)
    expected = stand_in.codes_log_likelihood(x, codes) + model._log_p(codes.unsqueeze(1), None)
    assert torch.allclose(model.log_prob(x), expected)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    s = model.sample(3, generator=g1)
    assert s.shape == (3, 1, 8, 8) and s.min() >= -1 and s.max() <= 1
    assert torch.equal(s, model.sample(3, generator=g2, naive=True))


def test_prior_over_a_real_vqvae_run(tmp_path):
    from genzoo.config import apply_overrides
    from genzoo.data import load_dataset
    from genzoo.train import train
    from genzoo.train.rundir import load_run

    vq_cfg = tiny_config("vqvae", steps=2)
    train(vq_cfg, tmp_path / "vq")
    cfg = tiny_config("pixelcnn", steps=3)
    apply_overrides(cfg, [("model.prior_of", str(tmp_path / "vq"))])
    train(cfg, tmp_path / "prior")
    model, run_cfg, _ = load_run(tmp_path / "prior")
    vq, _, _ = load_run(tmp_path / "vq")
    x = load_dataset(run_cfg.data, "test").x[:4]
    codes = vq.encode_codes(x)
    expected = vq.codes_log_likelihood(x, codes) + model._log_p(codes.unsqueeze(1), None)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-4)
    s = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, *vq.spec.shape)
    apply_overrides(cfg, [("data.binarize", "dynamic")])  # not the data the VQ-VAE saw
    with pytest.raises(GenzooError, match="binarize=none"):
        train(cfg, tmp_path / "prior2")


def test_prior_refuses_a_run_without_the_vqvae_api(tmp_path, monkeypatch):
    monkeypatch.setattr(pixelcnn, "load_frozen_vqvae", lambda path: nn.Linear(2, 2))
    with pytest.raises(GenzooError, match="encode_codes"):
        PixelCNN(PixelCNNConfig(prior_of="x"), DataSpec("image", (1, 8, 8)))


# ----------------------------------------------------------------------------- plot

def test_receptive_field_plot_writes_a_png(tmp_path):
    from genzoo.cli import main
    from genzoo.train import train
    from genzoo.viz.receptive import influence

    train(tiny_config("pixelcnn", steps=1), tmp_path / "run")
    out = tmp_path / "rf.png"
    assert main(["plot", "receptive-field", str(tmp_path / "run"), "--out", str(out),
                 "--position", "4,3"]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    g = influence(_model(shape=(1, 6, 6), channels=16, head=16), torch.randn(1, 1, 6, 6), (3, 2))
    assert g.shape == (6, 6) and g[3, 2:].sum() == 0 and g[4:].sum() == 0 and g[2].sum() > 0
    assert main(["plot", "receptive-field", str(tmp_path / "run"), "--out", str(out),
                 "--position", "9,9"]) == 1
