"""GAN objectives and gradient penalties against values computed by hand.

Every expected value below is computed with plain `math` on small fixed lists, or from a closed
form (a linear or quadratic discriminator, whose input-gradient is known exactly), never by
calling the code under test a second time. Tensors are float64 so that a relative tolerance of
1e-6 separates a right formula from a wrong one.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import GAN_LOSSES, get_gan_loss
from genzoo.losses.gan import (
    bce_d,
    began_convergence,
    began_d,
    began_k_update,
    ebgan_d,
    energy_g,
    hinge_d,
    lsgan_d,
    lsgan_g,
    minimax_g,
    nsgan_g,
    pulling_away,
    wgan_d,
    wgan_g,
)
from genzoo.losses.penalties import dragan, r1, wgan_gp

REAL, FAKE = [0.0, 2.0, -1.0], [0.5, -3.0, 1.0]


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _bce(logit: float, target: float) -> float:
    """-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))]."""
    p = _sig(logit)
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def _norm(v) -> float:
    return math.sqrt(sum(a * a for a in v))


def _dot(u, v) -> float:
    return sum(a * b for a, b in zip(u, v))


# --- logit objectives -------------------------------------------------------------------------

def test_discriminator_bce():
    # -E log D(x) - E log(1 - D(G(z))), D = sigmoid(logit) (Goodfellow et al. 2014)
    want = (-sum(math.log(_sig(r)) for r in REAL) / 3
            - sum(math.log(1 - _sig(f)) for f in FAKE) / 3)
    assert bce_d(_t(REAL), _t(FAKE)).item() == pytest.approx(want, rel=1e-6)
    for name in ("nsgan", "gan", "dragan"):
        got = get_gan_loss(name).d(_t(REAL), _t(FAKE)).item()
        assert got == pytest.approx(want, rel=1e-6)


def test_bce_one_sided_label_smoothing():
    # real_label=0.9: the reals' target becomes 0.9, the fakes' stays 0 (Salimans et al. 2016)
    want = _mean(_bce(r, 0.9) for r in REAL) + _mean(_bce(f, 0.0) for f in FAKE)
    got = bce_d(_t(REAL), _t(FAKE), real_label=0.9).item()
    assert got == pytest.approx(want, rel=1e-6)
    assert got != pytest.approx(bce_d(_t(REAL), _t(FAKE)).item(), rel=1e-3)


def test_bce_fake_label():
    want = _mean(_bce(r, 1.0) for r in REAL) + _mean(_bce(f, 0.1) for f in FAKE)
    got = bce_d(_t(REAL), _t(FAKE), fake_label=0.1).item()
    assert got == pytest.approx(want, rel=1e-6)
    both = _mean(_bce(r, 0.9) for r in REAL) + _mean(_bce(f, 0.1) for f in FAKE)
    got = bce_d(_t(REAL), _t(FAKE), real_label=0.9, fake_label=0.1).item()
    assert got == pytest.approx(both, rel=1e-6)


def test_bce_targets_per_example():
    # a tensor of targets, one per example: smoothed, flipped and plain labels in one batch
    t_real, t_fake = [1.0, 0.9, 0.0], [0.0, 1.0, 0.2]
    want = (_mean(_bce(r, t) for r, t in zip(REAL, t_real))
            + _mean(_bce(f, t) for f, t in zip(FAKE, t_fake)))
    got = bce_d(_t(REAL), _t(FAKE), real_label=_t(t_real), fake_label=_t(t_fake)).item()
    assert got == pytest.approx(want, rel=1e-6)


def test_generator_losses():
    ns = -sum(math.log(_sig(f)) for f in FAKE) / 3  # -log D(G(z))
    mm = sum(math.log(1 - _sig(f)) for f in FAKE) / 3  # log(1 - D(G(z)))
    assert nsgan_g(_t(FAKE)).item() == pytest.approx(ns, rel=1e-6)
    assert minimax_g(_t(FAKE)).item() == pytest.approx(mm, rel=1e-6)
    assert get_gan_loss("nsgan").g(_t(FAKE)).item() == pytest.approx(ns, rel=1e-6)
    assert get_gan_loss("gan").g(_t(FAKE)).item() == pytest.approx(mm, rel=1e-6)


def test_minimax_saturates_where_nonsaturating_does_not():
    # when D confidently rejects a fake (logit -8), minimax gives G almost no gradient:
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l), while d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    f = torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)
    get_gan_loss("gan").g(f).backward()
    g_mm = f.grad.item()
    f.grad = None
    get_gan_loss("nsgan").g(f).backward()
    g_ns = f.grad.item()
    assert g_mm == pytest.approx(-_sig(-8.0), rel=1e-6)
    assert g_ns == pytest.approx(-(1 - _sig(-8.0)), rel=1e-6)
    assert abs(g_mm) < 1e-3 < abs(g_ns)


def test_lsgan():
    # a=0 (fake), b=1 (real), c=1 (generator) (Mao et al. 2017, arXiv:1611.04076)
    want_d = 0.5 * _mean((r - 1) ** 2 for r in REAL) + 0.5 * _mean(f ** 2 for f in FAKE)
    want_g = 0.5 * _mean((f - 1) ** 2 for f in FAKE)
    assert lsgan_d(_t(REAL), _t(FAKE)).item() == pytest.approx(want_d, rel=1e-6)
    assert lsgan_g(_t(FAKE)).item() == pytest.approx(want_g, rel=1e-6)
    assert get_gan_loss("lsgan").d(_t(REAL), _t(FAKE)).item() == pytest.approx(want_d, rel=1e-6)
    assert get_gan_loss("lsgan").g(_t(FAKE)).item() == pytest.approx(want_g, rel=1e-6)
    # the labels are settable, e.g. a=-1 (fake), b=1 (real)
    want = 0.5 * _mean((r - 1) ** 2 for r in REAL) + 0.5 * _mean((f + 1) ** 2 for f in FAKE)
    got = lsgan_d(_t(REAL), _t(FAKE), real_label=1.0, fake_label=-1.0).item()
    assert got == pytest.approx(want, rel=1e-6)


# --- critic objectives ------------------------------------------------------------------------

def test_wgan():
    # critic minimises E D(G(z)) - E D(x); generator minimises -E D(G(z)) (Arjovsky et al. 2017)
    want_d = _mean(FAKE) - _mean(REAL)
    want_g = -_mean(FAKE)
    assert wgan_d(_t(REAL), _t(FAKE)).item() == pytest.approx(want_d, rel=1e-6)
    assert wgan_g(_t(FAKE)).item() == pytest.approx(want_g, rel=1e-6)
    for name in ("wgan", "wgan-gp"):
        loss = get_gan_loss(name)
        assert loss.d(_t(REAL), _t(FAKE)).item() == pytest.approx(want_d, rel=1e-6)
        assert loss.g(_t(FAKE)).item() == pytest.approx(want_g, rel=1e-6)


def test_hinge():
    # E relu(1 - D(x)) + E relu(1 + D(G(z))); G: -E D(G(z)) (Lim & Ye 2017; Miyato et al. 2018)
    # REAL = [0, 2, -1]: 1 - r = [1, -1, 2], so the real at 2 is past the hinge (contributes 0);
    # FAKE = [0.5, -3, 1]: 1 + f = [1.5, -2, 2], so the fake at -3 is past the hinge.
    want = (1 + 0 + 2) / 3 + (1.5 + 0 + 2) / 3
    assert want == pytest.approx(_mean(max(0.0, 1 - r) for r in REAL)
                                 + _mean(max(0.0, 1 + f) for f in FAKE))
    assert hinge_d(_t(REAL), _t(FAKE)).item() == pytest.approx(want, rel=1e-6)
    # without the relu the outliers would count: (1 - 1 + 2)/3 + (1.5 - 2 + 2)/3
    assert want != pytest.approx((1 - 1 + 2) / 3 + (1.5 - 2 + 2) / 3)
    loss = get_gan_loss("hinge")
    assert loss.d(_t(REAL), _t(FAKE)).item() == pytest.approx(want, rel=1e-6)
    assert loss.g(_t(FAKE)).item() == pytest.approx(-_mean(FAKE), rel=1e-6)


# --- energy objectives ------------------------------------------------------------------------

E_REAL = [0.2, 0.5, 1.1]
E_FAKE = [0.5, 2.5, 1.0, 3.0]  # margin 2: two below it (pushed up), two above it (ignored)


def test_ebgan_discriminator_with_margin():
    # D(x) + [m - D(G(z))]^+ (Zhao et al. 2016, arXiv:1609.03126), energies = reconstruction errors
    m = 2.0
    want = _mean(E_REAL) + (1.5 + 0.0 + 1.0 + 0.0) / 4
    assert want == pytest.approx(_mean(E_REAL) + _mean(max(0.0, m - f) for f in E_FAKE))
    got = ebgan_d(_t(E_REAL), _t(E_FAKE), margin=m).item()
    assert got == pytest.approx(want, rel=1e-6)
    got = get_gan_loss("ebgan").d(_t(E_REAL), _t(E_FAKE), margin=m).item()
    assert got == pytest.approx(want, rel=1e-6)
    # default margin 1: only the fake at 0.5 is below it
    want1 = _mean(E_REAL) + (0.5 + 0 + 0 + 0) / 4
    assert ebgan_d(_t(E_REAL), _t(E_FAKE)).item() == pytest.approx(want1, rel=1e-6)


def test_energy_generator():
    assert energy_g(_t(E_FAKE)).item() == pytest.approx(7.0 / 4, rel=1e-6)
    for name in ("ebgan", "began"):
        assert get_gan_loss(name).g(_t(E_FAKE)).item() == pytest.approx(7.0 / 4, rel=1e-6)


def test_pulling_away_by_hand():
    # f_PT = 1/(N(N-1)) sum_{i != j} cos^2(S_i, S_j) (Zhao et al. 2016, eq. for the PT term)
    codes = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 2.0, 2.0]]
    # by hand: cos(a,b) = 1/sqrt2, cos(a,c) = 1/3, cos(b,c) = 3/(sqrt2*3) = 1/sqrt2
    pairs = {(0, 1): 0.5, (0, 2): 1 / 9, (1, 2): 0.5}
    for (i, j), c2 in pairs.items():
        cos = _dot(codes[i], codes[j]) / (_norm(codes[i]) * _norm(codes[j]))
        assert cos ** 2 == pytest.approx(c2, rel=1e-12)
    want = 2 * sum(pairs.values()) / (3 * 2)  # each unordered pair counted twice
    assert want == pytest.approx(10 / 27)
    assert pulling_away(_t(codes)).item() == pytest.approx(want, rel=1e-6)
    # scale-free, and codes of any shape are flattened per example
    scaled = _t(codes) * _t([[2.0], [0.5], [7.0]])
    assert pulling_away(scaled.view(3, 3, 1, 1)).item() == pytest.approx(want, rel=1e-6)


def test_pulling_away_extremes():
    assert pulling_away(torch.eye(4, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    same = _t([[1.0, -2.0, 0.5]] * 3)
    assert pulling_away(same).item() == pytest.approx(1.0, rel=1e-6)
    opposite = _t([[1.0, -2.0, 0.5], [-2.0, 4.0, -1.0]])  # cos = -1, squared = 1
    assert pulling_away(opposite).item() == pytest.approx(1.0, rel=1e-6)


def test_pulling_away_single_code_is_zero():
    assert pulling_away(_t([[1.0, 2.0, 3.0]])).item() == 0.0


L_REAL, L_FAKE = [0.2, 0.4], [0.3, 0.5, 0.7]  # autoencoder losses: means 0.3 and 0.5


def test_began_discriminator_with_k():
    # L(x) - k_t L(G(z)) (Berthelot et al. 2017, arXiv:1703.10717)
    got = began_d(_t(L_REAL), _t(L_FAKE), k=0.25).item()
    assert got == pytest.approx(0.3 - 0.25 * 0.5, rel=1e-6)
    got = get_gan_loss("began").d(_t(L_REAL), _t(L_FAKE), k=_t(0.6)).item()
    assert got == pytest.approx(0.3 - 0.6 * 0.5, rel=1e-6)
    # k_0 = 0: the discriminator starts by only reconstructing the reals
    assert began_d(_t(L_REAL), _t(L_FAKE)).item() == pytest.approx(0.3, rel=1e-6)


def test_began_k_update():
    # k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)
    got = began_k_update(_t(0.5), _t(L_REAL), _t(L_FAKE), gamma=0.5, lambda_k=0.001)
    assert got.item() == pytest.approx(0.5 + 0.001 * (0.5 * 0.3 - 0.5), rel=1e-6)
    got = began_k_update(_t(0.5), _t(L_REAL), _t([0.1]), gamma=0.7, lambda_k=0.001)
    assert got.item() == pytest.approx(0.5 + 0.001 * (0.7 * 0.3 - 0.1), rel=1e-6)
    # clamped at 0: 0.01 + 0.1 * (0.15 - 0.5) = -0.025 -> 0
    got = began_k_update(_t(0.01), _t(L_REAL), _t(L_FAKE), gamma=0.5, lambda_k=0.1)
    assert got.item() == 0.0
    # clamped at 1: 0.99 + 0.1 * (1.0 * 0.3 - 0.0) = 1.02 -> 1
    got = began_k_update(_t(0.99), _t(L_REAL), _t([0.0]), gamma=1.0, lambda_k=0.1)
    assert got.item() == 1.0


def test_began_convergence():
    # M = L(x) + |gamma L(x) - L(G(z))|, on both sides of the equilibrium
    got = began_convergence(_t(L_REAL), _t([0.1]), gamma=0.5).item()
    assert got == pytest.approx(0.3 + abs(0.15 - 0.1), rel=1e-6)
    got = began_convergence(_t(L_REAL), _t(L_FAKE), gamma=0.5).item()
    assert got == pytest.approx(0.3 + abs(0.15 - 0.5), rel=1e-6)
    assert got == pytest.approx(0.65, rel=1e-6)


# --- the registry -----------------------------------------------------------------------------

PAIRS = {
    "nsgan": (bce_d, nsgan_g), "gan": (bce_d, minimax_g), "lsgan": (lsgan_d, lsgan_g),
    "wgan": (wgan_d, wgan_g), "wgan-gp": (wgan_d, wgan_g), "dragan": (bce_d, nsgan_g),
    "hinge": (hinge_d, wgan_g), "ebgan": (ebgan_d, energy_g), "began": (began_d, energy_g),
    "cgan": (bce_d, nsgan_g), "acgan": (bce_d, nsgan_g), "infogan": (bce_d, nsgan_g),
}
KINDS = {"lsgan": "score", "wgan": "critic", "wgan-gp": "critic", "hinge": "critic",
         "ebgan": "energy", "began": "energy"}  # every other objective is on logits
CITATION = re.compile(r"arXiv:\d{4}\.\d{4,5}|[A-Z][a-z]+ (et al\.|& [A-Z][a-z]+) (19|20)\d\d")


def test_registry_names_and_pairs():
    assert set(GAN_LOSSES) == set(PAIRS)
    for name, (d, g) in PAIRS.items():
        loss = GAN_LOSSES[name]
        assert loss.name == name and get_gan_loss(name) is loss
        assert (loss.d, loss.g) == (d, g), name
        assert loss.kind == KINDS.get(name, "logit"), name
        assert loss.kind in {"logit", "score", "critic", "energy"}


@pytest.mark.parametrize("name", sorted(GAN_LOSSES))
def test_registry_description_cites_a_paper(name):
    assert CITATION.search(GAN_LOSSES[name].description), GAN_LOSSES[name].description


@pytest.mark.parametrize("data", ["mnist5k", "8gaussians"])
def test_presets_hold_the_papers_settings(data):
    from genzoo.config import build_config

    # WGAN, Algorithm 1 (arXiv:1701.07875): alpha = 0.00005, c = 0.01, n_critic = 5, RMSProp
    # on images the papers' step sizes; the 2-D lab's 6,000-step budget takes larger ones
    images = data == "mnist5k"
    w = build_config("wgan", overrides=[("data.name", data)])
    assert w.train.optimizer == "rmsprop" and (w.train.beta1, w.train.beta2) == (0.0, 0.99)
    assert w.train.lr == (5e-5 if images else 5e-4)
    assert (w.model_cfg.n_critic, w.model_cfg.weight_clip, w.model_cfg.loss) == (5, 0.01, "wgan")
    # WGAN-GP, Algorithm 1 (arXiv:1704.00028): lambda = 10, n_critic = 5, Adam(1e-4, 0, 0.9)
    g = build_config("wgan-gp", overrides=[("data.name", data)])
    assert g.train.optimizer == "adam" and g.train.beta2 == 0.9
    if images:
        assert (g.train.lr, g.train.beta1) == (1e-4, 0.0)
    assert (g.model_cfg.n_critic, g.model_cfg.penalty, g.model_cfg.gp_weight) == (5, "wgan-gp",
                                                                                10.0)
    assert g.model_cfg.weight_clip == 0.0  # the penalty replaces weight clipping
    assert g.model_cfg.norm_d != "batch"  # no batch norm in a per-example-penalised critic
    # DRAGAN (arXiv:1705.07215; the authors' code: lambda = 10, Adam(1e-4, 0.5, 0.9))
    d = build_config("dragan", overrides=[("data.name", data)])
    # the lab weights the penalty 1: 10 smoothed D across the ring's narrow modes (docs/gan.md)
    assert (d.model_cfg.penalty, d.model_cfg.gp_weight) == ("dragan", 10.0 if images else 1.0)
    assert (d.train.beta1, d.train.beta2) == (0.5, 0.9)
    if images:
        assert d.train.lr == 1e-4
    # every loss of the zoo has a preset that selects it (minimax under its own name)
    from genzoo.config import preset_names

    for name in GAN_LOSSES:
        preset = "minimax" if name == "gan" else name
        assert preset in preset_names()
        assert build_config(preset).model_cfg.loss == name


def test_unknown_loss_lists_the_choices():
    with pytest.raises(GenzooError, match="nope") as err:
        get_gan_loss("nope")
    assert ", ".join(sorted(GAN_LOSSES)) in str(err.value)


# --- gradient penalties with closed-form input gradients --------------------------------------

W = [1.0, 2.0, 2.0, 4.0]  # ||w|| = 5
X_REAL = _t([[[1.0, 2.0], [0.0, -1.0]], [[3.0, 0.5], [1.0, 1.0]], [[-2.0, 0.0], [0.0, 2.0]]])
X_FAKE = _t([[[0.5, 0.5], [1.0, 0.0]], [[-1.0, 2.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])


def _linear(w):
    """D(x) = <w, x> per example: grad_x D = w everywhere."""
    w = _t(w)
    return lambda x: x.flatten(1) @ w


def _quadratic(x):
    """D(x) = 0.5 ||x||^2 per example: grad_x D = x."""
    return 0.5 * (x.flatten(1) ** 2).sum(1)


@pytest.mark.parametrize("w", [W, [0.3, 0.4, 0.0, 0.0]])  # ||w|| = 5 and ||w|| = 0.5
def test_penalties_on_a_linear_discriminator(w):
    n = _norm(w)
    D = _linear(w)
    g = torch.Generator().manual_seed(3)
    assert wgan_gp(D, X_REAL, X_FAKE).item() == pytest.approx((n - 1) ** 2, rel=1e-6)
    assert wgan_gp(D, X_REAL, X_FAKE, g).item() == pytest.approx((n - 1) ** 2, rel=1e-6)
    assert dragan(D, X_REAL).item() == pytest.approx((n - 1) ** 2, rel=1e-6)
    assert r1(D, X_REAL).item() == pytest.approx(n ** 2, rel=1e-6)


def test_r1_on_a_quadratic_discriminator():
    # grad = x, so R1 = mean_i ||x_i||^2 = mean(1+4+0+1, 9+0.25+1+1, 4+0+0+4)
    want = _mean(sum(v * v for v in x) for x in X_REAL.flatten(1).tolist())
    assert want == pytest.approx((6 + 11.25 + 8) / 3)
    assert r1(_quadratic, X_REAL).item() == pytest.approx(want, rel=1e-6)


def test_wgan_gp_on_a_quadratic_discriminator():
    # grad at x_hat = x_hat, so the penalty is mean_i (||eps_i x_i + (1 - eps_i) x~_i|| - 1)^2,
    # with one eps per example, drawn as the implementation documents: rand((B, 1, 1), generator)
    got = wgan_gp(_quadratic, X_REAL, X_FAKE, torch.Generator().manual_seed(7)).item()
    eps = torch.rand((3, 1, 1), generator=torch.Generator().manual_seed(7)).flatten().tolist()
    terms = []
    for e, x, f in zip(eps, X_REAL.flatten(1).tolist(), X_FAKE.flatten(1).tolist()):
        x_hat = [e * a + (1 - e) * b for a, b in zip(x, f)]
        terms.append((_norm(x_hat) - 1) ** 2)
    assert got == pytest.approx(_mean(terms), rel=1e-6)
    # a different seed gives a different penalty: the draws really are used
    other = wgan_gp(_quadratic, X_REAL, X_FAKE, torch.Generator().manual_seed(8)).item()
    assert other != pytest.approx(got, rel=1e-6)


def test_dragan_without_perturbation_on_a_quadratic_discriminator():
    # c = 0: the gradient is taken at the reals themselves, grad = x
    want = _mean((_norm(x) - 1) ** 2 for x in X_REAL.flatten(1).tolist())
    assert dragan(_quadratic, X_REAL, c=0.0).item() == pytest.approx(want, rel=1e-6)


def _recording(D):
    seen = []

    def wrapped(x):
        seen.append(x.detach().clone())
        return D(x)
    return wrapped, seen


def test_dragan_perturbs_the_reals_within_c_std():
    torch.manual_seed(0)
    x = 3.0 * torch.randn(16, 3, 4, 4, dtype=torch.float64) + 1.0  # std ~ 3: the scale matters
    D, seen = _recording(_linear([1.0] * 48))
    dragan(D, x, c=0.5)
    (x_p,) = seen
    delta = x_p - x
    assert (delta >= 0).all() and (delta <= 0.5 * x.std()).all()
    assert delta.abs().max() > 0.25 * x.std()  # and actually perturbs


def test_dragan_interpolates_towards_the_perturbed_reals():
    torch.manual_seed(0)
    x = torch.randn(2000, 50, dtype=torch.float64)
    D, seen = _recording(_linear([1.0] * 50))
    dragan(D, x, c=0.5)
    frac = ((seen[0] - x) / (0.5 * x.std())).mean().item()
    # E[alpha * U] = 1/4 with the interpolation; E[U] = 1/2 without it
    assert frac == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize("penalty", ["wgan-gp", "dragan", "r1"])
def test_penalties_are_differentiable_in_the_discriminator(penalty):
    # D = nn.Linear: ||grad_x D|| = ||w||, so d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    # and d/dw ||w||^2 = 2 w; the bias does not enter; the data get no gradient
    lin = nn.Linear(4, 1, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(_t([W]))
        lin.bias.fill_(0.3)

    def D(x):
        return lin(x.flatten(1)).squeeze(1)
    real = X_REAL.clone().requires_grad_(True)
    fake = X_FAKE.clone().requires_grad_(True)
    if penalty == "wgan-gp":
        p = wgan_gp(D, real, fake, torch.Generator().manual_seed(0))
    elif penalty == "dragan":
        p = dragan(D, real)
    else:
        p = r1(D, real)
    p.backward()
    n = _norm(W)
    want = [2 * v for v in W] if penalty == "r1" else [2 * (n - 1) * v / n for v in W]
    torch.testing.assert_close(lin.weight.grad, _t([want]), rtol=1e-6, atol=0)
    assert lin.bias.grad is None or torch.all(lin.bias.grad == 0)
    assert real.grad is None and fake.grad is None
