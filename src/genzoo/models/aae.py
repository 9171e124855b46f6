"""Adversarial autoencoder (Makhzani et al. 2015, arXiv:1511.05644): an autoencoder whose
aggregate posterior q(z) = E_x q(z|x) is matched to a prior p(z) by a discriminator on codes.

    D phase (discriminator):   z ~ p(z) is "real", z = E(x) is "fake"      (sec. 2, eq. 1)
    main phase (encoder, decoder):
        loss = reconstruction(x, Dec(E(x))) + adv_weight * -log D(E(x))     (non-saturating)

The paper alternates a reconstruction phase (encoder + decoder) and a regularisation phase
(encoder against D); here both terms are summed in one phase of the encoder and decoder, which
follows the same gradients with one optimizer. The encoder is deterministic (sec. 2.1 option 1).

Priors (`prior`):
    gaussian     N(0, I) in latent_dim dimensions
    mixture      10 (n_classes) 2-D Gaussians on a circle of radius 4, each elongated along its
                 radius (std 1 radial, 0.25 tangential), as in the paper's fig. 4; with
                 supervised=true the label's one-hot also enters D, and the prior sample of an
                 image of class k comes from component k (sec. 3, "incorporating label
                 information"): each class is pushed into its own arm
    categorical  the semi-supervised AAE (sec. 5, fig. 8): the encoder gives q(y|x) (softmax
                 over n_classes) and a style code z; a second discriminator matches q(y) to a
                 one-hot Categorical, the first matches z to N(0, I); the decoder sees
                 [q(y|x), z]. With labelled > 0, a fixed fraction of the training images add the
                 cross-entropy of q(y|x) with their label (the semi-supervised phase of sec. 5)

The networks are the VAE's (genzoo.models.vae.autoencoder_nets); the discriminators are MLPs
(the paper: 2 layers of 1000 ReLU units on MNIST).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.vae import _mlp, autoencoder_nets


@dataclass
class AAEConfig:
    arch: Literal["mlp", "conv"] = "conv"  # the VAE's networks: MLP, or conv for images
    latent_dim: int = 8  # size of z (the style code for prior=categorical)
    hidden: tuple[int, ...] = (1000, 1000)  # MLP hidden layer sizes (decoder mirrors them)
    channels: tuple[int, ...] = (32, 64)  # conv: channels of each stride-2 stage
    fc: int = 256  # conv: width of the fully connected layer after the conv stages (0: none)
    prior: Literal["gaussian", "mixture", "categorical"] = "gaussian"  # p(z); see above
    n_classes: int = 10  # mixture components / categories
    supervised: bool = False  # mixture: condition D on the label (one arm per class)
    labelled: float = 0.0  # categorical: fraction of training images whose label is used
    label_weight: float = 1.0  # categorical: weight of the labelled cross-entropy
    adv_weight: float = 1.0  # weight of the adversarial term in the main phase
    d_hidden: tuple[int, ...] = (1000, 1000)  # discriminator hidden layers (ReLU)
    d_lr: float = 2e-4  # discriminator learning rate (Adam, betas 0.5, 0.999)

    def check(self) -> None:
        if self.latent_dim < 1 or self.n_classes < 2:
            raise GenzooError("latent_dim must be >= 1 and n_classes >= 2")
        if self.prior == "mixture" and self.latent_dim != 2:
            raise GenzooError(f"prior=mixture is a 2-D mixture; set latent_dim=2 (got "
                              f"{self.latent_dim})")
        if self.supervised and self.prior != "mixture":
            raise GenzooError("supervised=true applies to prior=mixture; for prior=categorical "
                              "use labelled=FRACTION")
        if not 0 <= self.labelled <= 1 or (self.labelled and self.prior != "categorical"):
            raise GenzooError(f"labelled={self.labelled} must be in [0, 1] and needs "
                              "prior=categorical")
        if self.adv_weight < 0 or self.label_weight < 0 or not self.d_lr > 0:
            raise GenzooError("adv_weight and label_weight must be >= 0, d_lr positive")
        if any(h < 1 for h in self.hidden + self.channels + self.d_hidden) or self.fc < 0:
            raise GenzooError("hidden, channels and d_hidden sizes must be positive")


def mixture_prior(n: int, k: int, labels: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples of the 2-D k-arm mixture (component = labels when given): (z (n, 2), comp)."""
    comp = labels if labels is not None else torch.randint(k, (n,), generator=generator)
    comp = comp.cpu()
    eps = torch.randn(n, 2, generator=generator) * torch.tensor([1.0, 0.25])  # radial, tangent
    a = comp.float() * (2 * math.pi / k)  # the arm's angle
    c, s = a.cos(), a.sin()
    x = (4.0 + eps[:, 0]) * c - eps[:, 1] * s  # rotate (radius 4 + radial, tangential)
    y = (4.0 + eps[:, 0]) * s + eps[:, 1] * c
    return torch.stack([x, y], 1), comp


def labelled_mask(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """(B,) bool: is this image in the fixed labelled subset? A hash of the pixels (a fixed
    random projection, fractional part), so the same image is in or out at every epoch."""
    w = torch.randn(x[0].numel(), generator=torch.Generator().manual_seed(20151118),
                    dtype=torch.float64).to(x.device)
    h = (x.flatten(1).double() * 1000).round() @ w  # (B,), rounded: robust to float noise
    return torch.frac(h.abs() * 0.6180339887) < fraction


@register_model("aae")
class AAE(GenerativeModel):
    description = "adversarial autoencoder: D matches q(z) to a Gaussian, 2-D mixture or " \
                  "categorical prior"
    Config = AAEConfig
    data_kinds = ("image",)

    def __init__(self, cfg: AAEConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        K, L = cfg.n_classes, cfg.latent_dim
        self.n_cat = K if cfg.prior == "categorical" else 0  # q(y|x) logits before z
        if (cfg.supervised or cfg.labelled) and spec.num_classes != K:
            raise GenzooError(f"labels are used but the data has {spec.num_classes} classes, "
                              f"not n_classes={K}")
        if cfg.labelled and spec.extras.get("binarize", "none") == "dynamic":
            raise GenzooError("labelled picks images by a hash of their pixels; use "
                              "binarize=none (dynamic binarisation changes them every epoch)")
        self.encoder, self.decoder = autoencoder_nets(spec, cfg, code_out=self.n_cat + L,
                                                      code_in=self.n_cat + L)
        extra = K if cfg.supervised else 0  # the label's one-hot enters D
        self.discriminator = _mlp([L + extra, *cfg.d_hidden, 1])  # (B, L) -> (B, 1) logits
        if self.n_cat:
            self.cat_discriminator = _mlp([K, *cfg.d_hidden, 1])  # on q(y|x) vs one-hot

    @property
    def phases(self) -> tuple[Phase, ...]:
        ds = ("discriminator", "cat_discriminator") if self.n_cat else ("discriminator",)
        return (Phase("D", ds, lr=self.cfg.d_lr, betas=(0.5, 0.999)),
                Phase("main", ("encoder", "decoder")))

    @property
    def latent_dim(self) -> int:
        """Size of the code `decode` takes: latent_dim, plus n_classes for prior=categorical."""
        return self.n_cat + self.cfg.latent_dim

    # --- codes ------------------------------------------------------------------------------
    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        h = self.encoder(x)  # (B, n_cat + L)
        return (h[:, :self.n_cat] if self.n_cat else None), h[:, self.n_cat:]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> the code (B, latent_dim); for prior=categorical [q(y|x), z]."""
        logits, z = self._split(x)
        return z if logits is None else torch.cat([logits.softmax(1), z], 1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """prior=categorical: q(y|x) logits (B, n_classes)."""
        if not self.n_cat:
            raise GenzooError("classify needs prior=categorical")
        return self._split(x)[0]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """The code (as `encode` gives it) -> mean image in [-1, 1]."""
        out = self.decoder(code).view(code.shape[0], *self.spec.shape)
        return torch.sigmoid(out) * 2 - 1

    def prior_sample(self, n: int, labels: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from p(z) (mixture arms follow `labels` when given), on the model's device."""
        if self.cfg.prior == "mixture":
            return mixture_prior(n, self.cfg.n_classes, labels, generator)[0].to(self.device)
        z = self.randn(n, self.cfg.latent_dim, generator=generator)
        if self.n_cat:
            y = torch.randint(self.n_cat, (n,), generator=generator).to(self.device)
            z = torch.cat([F.one_hot(y, self.n_cat).float(), z], 1)
        return z

    def _d_in(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.supervised:  # (B, 2 + K): the code beside its label's one-hot
            return torch.cat([z, F.one_hot(y, self.cfg.n_classes).float()], 1)
        return z

    # --- the contract -----------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x, y = batch["x"], batch.get("y")
        if self.cfg.supervised and y is None:
            raise GenzooError("supervised=true needs a labelled dataset")
        B = x.shape[0]
        bce = F.binary_cross_entropy_with_logits
        if phase == "D":
            with torch.no_grad():  # codes are D's inputs only: no gradient reaches the encoder
                code = self.encode(x)
                prior = self.prior_sample(B, y if self.cfg.supervised else None)
            parts = [(self.discriminator, self._d_in(code[:, self.n_cat:], y),
                      self._d_in(prior[:, self.n_cat:], y))]
            if self.n_cat:
                parts.append((self.cat_discriminator, code[:, :self.n_cat],
                              prior[:, :self.n_cat]))
            loss, acc = 0.0, 0.0
            for d, fake, real in parts:
                d_real, d_fake = d(real), d(fake)  # (B, 1) logits
                loss = loss + bce(d_real, torch.ones_like(d_real)) \
                    + bce(d_fake, torch.zeros_like(d_fake))
                acc = acc + 0.5 * ((d_real > 0).float().mean() + (d_fake < 0).float().mean())
            return {"loss": loss, "d_accuracy": (acc / len(parts)).detach()}
        logits, z = self._split(x)
        code = z if logits is None else torch.cat([logits.softmax(1), z], 1)
        out = self.decoder(code).view(B, *self.spec.shape)
        recon = bce(out, (x + 1) / 2, reduction="none").flatten(1).sum(1).mean()  # nats/image
        g = self.discriminator(self._d_in(z, y))
        adv = bce(g, torch.ones_like(g))  # non-saturating: -log D(E(x))
        if self.n_cat:
            gc = self.cat_discriminator(logits.softmax(1))
            adv = adv + bce(gc, torch.ones_like(gc))
        loss = recon + self.cfg.adv_weight * adv
        terms = {"recon": recon.detach(), "adv": adv.detach()}
        if self.cfg.labelled:
            mask = labelled_mask(x, self.cfg.labelled)
            ce = F.cross_entropy(logits[mask], y[mask]) if mask.any() else logits.sum() * 0
            loss = loss + self.cfg.label_weight * ce
            terms["label_ce"] = ce.detach()
        return {"loss": loss, **terms}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        labels = cond.get("y")
        return self.decode(self.prior_sample(n, labels, generator))
