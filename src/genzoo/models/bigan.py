"""BiGAN / ALI: a GAN with an encoder, judged on joint (x, z) pairs.

Donahue et al. 2016, "Adversarial Feature Learning" (BiGAN, arXiv 1605.09782) and Dumoulin et
al. 2016, "Adversarially Learned Inference" (ALI, arXiv 1606.00704) at the same time:

    encoder    E(x) -> z          (ALI: a Gaussian q(z|x), sampled with reparameterisation)
    generator  G(z) -> x          z ~ N(0, I)
    joint D    D(x, z) -> logit   real pairs (x, E(x)) against fake pairs (G(z), z)

The D phase trains D alone on (x, E(x)) -> 1 and (G(z), z) -> 0 (E and G run without
gradients). The EG phase trains E and G together against D with the labels swapped, the
non-saturating form both papers train with (BiGAN sec. 3.4, ALI sec. 3). At the optimum the
joint distributions match, so E inverts G: x -> E(x) -> G(E(x)) reconstructs x without any
reconstruction loss. `encode(x)` gives E's code (the mean for ALI's Gaussian encoder); the
metric `linear-probe` reads it, `reconstruct(x)` is G(E(x)).

Networks: the DCGAN generator and conv body of gan_nets for G and for E and D's image path;
D's code path is an MLP; the two paths meet in a joint MLP (BiGAN/ALI's design).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.gan_nets import DCGANBody, DCGANGenerator, dcgan_init


@dataclass
class BiGANConfig:
    nz: int = 50  # latent size (the BiGAN paper's MNIST model: 50)
    ngf: int = 64  # generator width
    ndf: int = 64  # width of the encoder and of D's image path
    hidden: int = 512  # width of D's code path and of its joint MLP
    stochastic: bool = False  # ALI's Gaussian encoder (mean, log-variance) instead of BiGAN's
    dropout: float = 0.2  # dropout in D's MLPs (ALI regularises D with dropout)

    def check(self) -> None:
        for k in ("nz", "ngf", "ndf", "hidden"):
            if getattr(self, k) < 1:
                raise GenzooError(f"model.{k}={getattr(self, k)} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise GenzooError(f"model.dropout={self.dropout} must be in [0, 1)")


class Encoder(nn.Module):
    """(B, C, S, S) -> (B, nz) code, or (B, 2 nz) mean and log-variance for ALI."""

    def __init__(self, channels: int, ndf: int, size: int, out: int):
        super().__init__()
        self.body = DCGANBody(channels, ndf, size, norm="batch")
        self.head = nn.Linear(self.body.features, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class JointDiscriminator(nn.Module):
    """D(x, z): image path (conv body) and code path (MLP) joined by an MLP -> logit (B,)."""

    def __init__(self, channels: int, ndf: int, size: int, nz: int, hidden: int, p: float):
        super().__init__()
        # no batch norm: D sees real and fake pairs in separate batches (BiGAN's D has none)
        self.x_path = DCGANBody(channels, ndf, size, norm="none")
        self.z_path = nn.Sequential(nn.Linear(nz, hidden), nn.LeakyReLU(0.2, True), nn.Dropout(p),
                                    nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, True),
                                    nn.Dropout(p))
        self.joint = nn.Sequential(nn.Linear(self.x_path.features + hidden, 2 * hidden),
                                   nn.LeakyReLU(0.2, True), nn.Dropout(p),
                                   nn.Linear(2 * hidden, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.x_path(x), self.z_path(z)], 1)  # (B, F + hidden)
        return self.joint(h).squeeze(1)


@register_model("bigan")
class BiGAN(GenerativeModel):
    """Encoder, generator and a discriminator on (x, z) pairs (arXiv 1605.09782, 1606.00704)."""

    description = "BiGAN/ALI: encoder + generator, discriminator on joint (x, z) pairs"
    Config = BiGANConfig
    data_kinds = ("image",)
    ema_modules = ("generator",)

    def __init__(self, cfg: BiGANConfig, spec: DataSpec):
        super().__init__(cfg, spec)
        c, h, w = spec.shape
        if h != w:
            raise GenzooError(f"bigan needs square images, got {h}x{w}; set image_size")
        self.generator = DCGANGenerator(cfg.nz, cfg.ngf, c, h)
        self.encoder = Encoder(c, cfg.ndf, h, 2 * cfg.nz if cfg.stochastic else cfg.nz)
        self.discriminator = JointDiscriminator(c, cfg.ndf, h, cfg.nz, cfg.hidden, cfg.dropout)
        self.apply(dcgan_init)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("D", ("discriminator",)), Phase("EG", ("encoder", "generator")))

    # --- the three maps -------------------------------------------------------------------
    def _infer(self, x: torch.Tensor, sample: bool) -> torch.Tensor:
        out = self.encoder(x)  # (B, nz) or (B, 2 nz)
        if not self.cfg.stochastic:
            return out
        mu, logvar = out.chunk(2, 1)
        if not sample:
            return mu
        # ALI's reparameterised q(z|x): gradients reach the encoder through mu and sigma
        return mu + (0.5 * logvar).exp() * torch.randn_like(mu)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> code (B, nz): E(x), the mean of q(z|x) for ALI."""
        return self._infer(x, sample=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)): how well the learned inverse maps data back onto itself."""
        return self.generator(self.encode(x))

    # --- training ---------------------------------------------------------------------------
    def pairs(self, x: torch.Tensor, *, grad: bool) -> tuple[tuple, tuple]:
        """The real pair (x, E(x)) and the fake pair (G(z), z), z ~ N(0, I)."""
        z = self.randn(len(x), self.cfg.nz)
        with torch.set_grad_enabled(grad):
            ex, gz = self._infer(x, sample=True), self.generator(z)
        return (x, ex), (gz, z)

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]  # (B, C, H, W)
        real, fake = self.pairs(x, grad=phase == "EG")  # D phase: E and G run without graphs
        d_real, d_fake = self.discriminator(*real), self.discriminator(*fake)  # (B,) logits
        ones, zeros = torch.ones_like(d_real), torch.zeros_like(d_real)
        if phase == "D":
            loss = (F.binary_cross_entropy_with_logits(d_real, ones)
                    + F.binary_cross_entropy_with_logits(d_fake, zeros))
        else:  # swapped labels: E makes its pairs look fake, G makes its pairs look real
            loss = (F.binary_cross_entropy_with_logits(d_real, zeros)
                    + F.binary_cross_entropy_with_logits(d_fake, ones))
        return {"loss": loss, "d_real": torch.sigmoid(d_real).mean().detach(),
                "d_fake": torch.sigmoid(d_fake).mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        return self.generator(self.randn(n, self.cfg.nz, generator=generator))  # (n, C, H, W)
