"""DCGAN (Radford et al. 2015, arXiv:1511.06434) for 8/16/32/64-pixel images, any channel count.

The paper's rules: strided convolutions instead of pooling, batch norm in both networks (not on
G's output or D's input), ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights from
N(0, 0.02), Adam(2e-4, beta1=0.5). At 32x32 with nz=100, ngf=ndf=64 the networks are exactly the
common reference ones: four 4x4 transposed convolutions 100 -> 256 -> 128 -> 64 -> C.

The objective is chosen by name from genzoo.losses (non-saturating by default); the networks do
not know which one trains them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import GAN_LOSSES, get_gan_loss
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase


@dataclass
class DCGANConfig:
    nz: int = 100  # latent size
    ngf: int = 64  # generator width (channels of its last hidden layer)
    ndf: int = 64  # discriminator width (channels of its first layer)
    loss: str = "nsgan"  # GAN objective, by name (genzoo.losses)

    def check(self) -> None:
        if min(self.nz, self.ngf, self.ndf) < 1:
            raise GenzooError("nz, ngf and ndf must be positive")
        if self.loss not in GAN_LOSSES:
            get_gan_loss(self.loss)  # raises with the valid choices


def _stages(size: int) -> int:
    """Number of stride-2 stages between 4x4 and size x size."""
    n = int(math.log2(size)) - 2 if size >= 8 else -1
    if size not in (8, 16, 32, 64, 128) or n < 1:
        raise GenzooError(f"dcgan needs square images of 8, 16, 32, 64 or 128 pixels, got {size}; "
                          "set image_size")
    return n


class Generator(nn.Module):
    """(B, nz) -> (B, C, S, S) in [-1, 1]."""

    def __init__(self, nz: int, ngf: int, channels: int, size: int):
        super().__init__()
        n = _stages(size)
        ch = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]  # (B, ch, 4, 4)
        for _ in range(n - 1):  # each doubles the size and halves the channels
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.nz, 1, 1))  # (B, nz, 1, 1) -> (B, C, S, S)


class Discriminator(nn.Module):
    """(B, C, S, S) -> (B,) logits."""

    def __init__(self, ndf: int, channels: int, size: int):
        super().__init__()
        n = _stages(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]  # no batch norm on D's input layer
        ch = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def dcgan_init(m: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register_model("dcgan")
class DCGAN(GenerativeModel):
    description = "deep convolutional GAN with the DCGAN architecture rules, any GAN loss"
    Config = DCGANConfig
    ema_modules = ("generator",)

    def __init__(self, cfg: DCGANConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        c, h, w = spec.shape
        if h != w:
            raise GenzooError(f"dcgan needs square images, got {h}x{w}; set image_size")
        self.generator = Generator(cfg.nz, cfg.ngf, c, h)
        self.discriminator = Discriminator(cfg.ndf, c, h)
        self.apply(dcgan_init)
        self.objective = get_gan_loss(cfg.loss)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("D", ("discriminator",)), Phase("G", ("generator",)))

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        real = batch["x"]
        z = torch.randn(real.shape[0], self.cfg.nz, device=real.device)
        if phase == "D":
            with torch.no_grad():
                fake = self.generator(z)
            # real and fake go through D's batch norm separately (the DCGAN reference does this)
            d_real, d_fake = self.discriminator(real), self.discriminator(fake)
            loss = self.objective.d(d_real, d_fake)
            return {"loss": loss, "d_real": torch.sigmoid(d_real).mean().detach(),
                    "d_fake": torch.sigmoid(d_fake).mean().detach()}
        if phase == "G":
            d_fake = self.discriminator(self.generator(z))
            return {"loss": self.objective.g(d_fake)}
        raise ValueError(f"unknown phase {phase!r}")

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        return self.generator(self.randn(n, self.cfg.nz, generator=generator))
