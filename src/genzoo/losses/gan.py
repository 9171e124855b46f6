"""The GAN objectives, as pure functions of the discriminator's outputs, selectable by name.

An objective is a pair: the discriminator's loss on its outputs for (real, fake) batches and the
generator's loss on its outputs for fakes, each averaged over the batch. What the discriminator
outputs depends on the objective's `kind`:

- "logit":  an unbounded logit of P(real); D(x) = sigmoid(logit)   (gan, nsgan, dragan, ...)
- "score":  a score regressed to 1 for real and 0 for fake           (lsgan)
- "critic": an unbounded score, higher for real                       (wgan, wgan-gp, hinge)
- "energy": an autoencoder's reconstruction error, lower for real     (ebgan, began)

Each paper's own training settings (learning rates, n_critic, penalties) live in the presets
(`genzoo train wgan-gp`), so no loss is handicapped by another's hyper-parameters. The networks
never know which objective trains them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError, choices


@dataclass(frozen=True)
class GanLoss:
    name: str
    d: Callable[..., torch.Tensor]  # (real_out, fake_out, **options) -> scalar
    g: Callable[..., torch.Tensor]  # (fake_out, **options) -> scalar
    kind: str  # "logit" | "score" | "critic" | "energy"
    description: str


GAN_LOSSES: dict[str, GanLoss] = {}


def _register(loss: GanLoss) -> None:
    GAN_LOSSES[loss.name] = loss


# --- logit objectives -------------------------------------------------------------------------

def _targets(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else torch.full_like(x, t)


def bce_d(real: torch.Tensor, fake: torch.Tensor, *, real_label: float | torch.Tensor = 1.0,
          fake_label: float | torch.Tensor = 0.0) -> torch.Tensor:
    """-[t log D(x) + (1-t) log(1-D(x))] on reals (target t) and fakes. Targets are settable (a
    number, or a tensor per example) for one-sided label smoothing (real_label=0.9, Salimans et
    al. 2016, arXiv:1606.03498) and for flipped labels."""
    return (F.binary_cross_entropy_with_logits(real, _targets(real, real_label))
            + F.binary_cross_entropy_with_logits(fake, _targets(fake, fake_label)))


def nsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): strong gradients when D rejects the fakes (Goodfellow et al. 2014)."""
    return F.softplus(-fake).mean()


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))) = -softplus(logit): the original minimax game, which saturates."""
    return -F.softplus(fake).mean()


def lsgan_d(real: torch.Tensor, fake: torch.Tensor, *, real_label: float = 1.0,
            fake_label: float = 0.0) -> torch.Tensor:
    """Least squares (Mao et al. 2017, arXiv:1611.04076), a=0, b=c=1: 1/2 E(D(x)-1)^2 +
    1/2 E D(G(z))^2, here on the raw output."""
    return 0.5 * ((real - real_label) ** 2).mean() + 0.5 * ((fake - fake_label) ** 2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


# --- critic objectives ------------------------------------------------------------------------

def wgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E D(G(z)) - E D(x): the critic's side of the Wasserstein-1 dual (Arjovsky et al. 2017,
    arXiv:1701.07875)."""
    return fake.mean() - real.mean()


def wgan_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E relu(1 - D(x)) + E relu(1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# --- energy objectives (autoencoder discriminators) -------------------------------------------

def ebgan_d(real_energy: torch.Tensor, fake_energy: torch.Tensor, *, margin: float = 1.0
            ) -> torch.Tensor:
    """D(x) + [m - D(G(z))]^+ with D the reconstruction energy (Zhao et al. 2016,
    arXiv:1609.03126)."""
    return real_energy.mean() + F.relu(margin - fake_energy).mean()


def energy_g(fake_energy: torch.Tensor) -> torch.Tensor:
    """The generator lowers the energy of its samples (EBGAN and BEGAN)."""
    return fake_energy.mean()


def pulling_away(codes: torch.Tensor) -> torch.Tensor:
    """EBGAN's pulling-away term: mean squared cosine similarity between distinct codes of a
    batch, pushing the generator's samples apart in the discriminator's code space."""
    s = F.normalize(codes.flatten(1), dim=1)  # (B, K) unit rows
    n = s.shape[0]
    if n < 2:  # no distinct pairs
        return codes.sum() * 0.0
    cos2 = (s @ s.t()) ** 2  # (B, B)
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def began_d(real_loss: torch.Tensor, fake_loss: torch.Tensor, *, k: float | torch.Tensor = 0.0
            ) -> torch.Tensor:
    """L(x) - k_t L(G(z)) (Berthelot et al. 2017, arXiv:1703.10717)."""
    return real_loss.mean() - k * fake_loss.mean()


def began_k_update(k: torch.Tensor, real_loss: torch.Tensor, fake_loss: torch.Tensor, *,
                   gamma: float, lambda_k: float) -> torch.Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1): the equilibrium control."""
    return (k + lambda_k * (gamma * real_loss.mean() - fake_loss.mean())).clamp(0.0, 1.0)


def began_convergence(real_loss: torch.Tensor, fake_loss: torch.Tensor, *, gamma: float
                      ) -> torch.Tensor:
    """M = L(x) + |gamma L(x) - L(G(z))|, BEGAN's measure of convergence (lower is better)."""
    lr, lf = real_loss.mean(), fake_loss.mean()
    return lr + (gamma * lr - lf).abs()


# --- the registry -----------------------------------------------------------------------------

for _loss in [
    GanLoss("nsgan", bce_d, nsgan_g, "logit",
            "non-saturating GAN: G minimises -log D(G(z)) (Goodfellow et al. 2014)"),
    GanLoss("gan", bce_d, minimax_g, "logit",
            "minimax GAN: G minimises log(1 - D(G(z))); saturates early "
            "(Goodfellow et al. 2014, arXiv:1406.2661)"),
    GanLoss("lsgan", lsgan_d, lsgan_g, "score",
            "least-squares GAN (Mao et al. 2017, arXiv:1611.04076)"),
    GanLoss("wgan", wgan_d, wgan_g, "critic",
            "Wasserstein GAN with weight clipping 0.01, RMSprop 5e-5, 5 critic steps "
            "(Arjovsky et al. 2017, arXiv:1701.07875)"),
    GanLoss("wgan-gp", wgan_d, wgan_g, "critic",
            "WGAN with gradient penalty 10 on interpolates, Adam(1e-4, 0, 0.9), 5 critic steps "
            "(Gulrajani et al. 2017, arXiv:1704.00028)"),
    GanLoss("dragan", bce_d, nsgan_g, "logit",
            "non-saturating GAN + gradient penalty 10 around perturbed reals "
            "(Kodali et al. 2017, arXiv:1705.07215)"),
    GanLoss("hinge", hinge_d, wgan_g, "critic",
            "hinge loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018)"),
    GanLoss("ebgan", ebgan_d, energy_g, "energy",
            "energy-based GAN: autoencoder D, margin, pulling-away term "
            "(Zhao et al. 2016, arXiv:1609.03126)"),
    GanLoss("began", began_d, energy_g, "energy",
            "boundary equilibrium GAN: autoencoder D with k_t control, gamma 0.5, "
            "lambda_k 0.001 (Berthelot et al. 2017, arXiv:1703.10717)"),
    # conditional models: the non-saturating objective plus what conditions them
    GanLoss("cgan", bce_d, nsgan_g, "logit",
            "conditional GAN: labels into G and D (Mirza & Osindero 2014, arXiv:1411.1784)"),
    GanLoss("acgan", bce_d, nsgan_g, "logit",
            "auxiliary-classifier GAN: D also predicts the label (Odena et al. 2017, "
            "arXiv:1610.09585)"),
    GanLoss("infogan", bce_d, nsgan_g, "logit",
            "InfoGAN: latent codes recovered by a Q head, mutual-information term "
            "(Chen et al. 2016, arXiv:1606.03657)"),
]:
    _register(_loss)


def get_gan_loss(name: str) -> GanLoss:
    if name not in GAN_LOSSES:
        raise GenzooError(f"unknown GAN loss {name!r}; choose one of: {choices(GAN_LOSSES)}")
    return GAN_LOSSES[name]
