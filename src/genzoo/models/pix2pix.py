"""pix2pix: paired image-to-image translation with a conditional GAN (Isola et al. 2017,
arXiv:1611.07004).

    G: A -> B                      a U-Net with skips and dropout (translation_nets.UNetGenerator)
    D(a, b)                        a PatchGAN that sees the input beside the output (conditional)
    D phase:  L_gan(D(a, b), D(a, G(a)))
    G phase:  L_gan(D(a, G(a))) + lambda |b - G(a)|_1                 (eq. 4, lambda = 100)

The GAN objective is chosen by name from genzoo.losses; `nsgan` is the paper's (sec. 3.3: G
maximises log D(x, G(x)) rather than minimising log(1 - D(x, G(x)))). A batch holds aligned
pairs: `x` (the input, domain A) and `x_b` (its ground truth in domain B).

Dropout is the paper's noise; it is on while training and, like every dropout here, off in eval
mode, so that `sample` and `translate` are deterministic (the paper keeps it on at test time).
`sample(n)` shows pairs (a, G(a)) of stored preview inputs (the first training batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from genzoo.errors import GenzooError
from genzoo.losses import get_gan_loss
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.cyclegan import PREVIEW, _init, check_direction, check_two_domains, domains
from genzoo.models.translation_nets import PatchDiscriminator, UNetGenerator


@dataclass
class Pix2PixConfig:
    ngf: int = 64  # U-Net width of the first layer (doubles per level, at most 8x)
    ndf: int = 64  # discriminator width of the first layer
    depth: int = 5  # U-Net levels: stride-2 convs down and transposed convs up (paper: 8)
    dropout: float = 0.5  # dropout in the innermost decoder levels (the generator's noise)
    dropout_levels: int = 3  # how many innermost decoder levels get dropout (paper: 3)
    d_layers: int = 3  # PatchGAN stride-2 layers (3: the 70x70 PatchGAN)
    norm: Literal["instance", "batch", "none"] = "instance"  # of both networks
    loss: str = "nsgan"  # conditional GAN objective by name; the paper's non-saturating one
    lambda_l1: float = 100.0  # weight of the L1 distance to the ground truth (paper: 100)

    def check(self) -> None:
        for k in ("ngf", "ndf", "depth", "d_layers"):
            if getattr(self, k) < 1:
                raise GenzooError(f"{k}={getattr(self, k)} must be at least 1")
        if not 0 <= self.dropout < 1 or self.dropout_levels < 0:
            raise GenzooError(f"dropout={self.dropout} must be in [0, 1) and dropout_levels "
                              ">= 0")
        if self.lambda_l1 < 0:
            raise GenzooError(f"lambda_l1={self.lambda_l1} must be >= 0")
        if get_gan_loss(self.loss).kind == "energy":
            raise GenzooError(f"loss={self.loss} needs an autoencoder discriminator; pix2pix's "
                              "is a PatchGAN: use nsgan, lsgan, hinge, ...")


@register_model("pix2pix")
class Pix2Pix(GenerativeModel):
    description = "pix2pix: paired translation A -> B, U-Net + conditional PatchGAN + L1"
    Config = Pix2PixConfig
    ema_modules = ("generator",)
    directions = ("AtoB",)  # translate() goes one way
    two_domains = True

    def __init__(self, cfg: Pix2PixConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        check_two_domains(spec, "pix2pix", paired=True)
        c, h, w = spec.shape  # both domains (a grey one beside an RGB one is made RGB)
        if h % 2 ** cfg.depth or w % 2 ** cfg.depth:
            raise GenzooError(f"pix2pix with depth={cfg.depth} needs image sides that are "
                              f"multiples of {2 ** cfg.depth}, got {h}x{w}; set image_size "
                              "(e.g. image_size=32 resize=pad) or depth")
        self.objective = get_gan_loss(cfg.loss)
        self.generator = UNetGenerator(c, c, cfg.ngf, cfg.depth, cfg.norm, cfg.dropout,
                                       cfg.dropout_levels)
        self.discriminator = PatchDiscriminator(2 * c, cfg.ndf, cfg.d_layers, cfg.norm)
        self.generator.apply(_init)
        self.discriminator.apply(_init)
        self.register_buffer("preview_a", torch.zeros(PREVIEW, c, h, w))
        self.register_buffer("preview_n", torch.zeros((), dtype=torch.long))
        self._fake = None  # (batch, G(a)) of the G phase, reused by the D phase

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("G", ("generator",)), Phase("D", ("discriminator",)))

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Inputs (B, C, H, W) in [-1, 1] -> outputs (B, C, H, W); pix2pix goes A -> B only."""
        check_direction(direction)
        if direction != "AtoB":
            raise GenzooError("pix2pix learns one direction, A -> B; use --direction AtoB")
        if x.shape[1] != self.spec.shape[0]:
            raise GenzooError(f"this pix2pix model takes {self.spec.shape[0]}-channel inputs, got "
                              f"{x.shape[1]} channels")
        return self.generator(x)

    def _d(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([a, b], 1)).flatten()  # input and output side by side

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        a, b = domains(batch)
        assert a.shape[0] == b.shape[0], "pix2pix needs aligned pairs (same batch size)"
        obj = self.objective
        if phase == "G":
            if self.training and int(self.preview_n) == 0:
                with torch.no_grad():
                    idx = torch.arange(PREVIEW, device=a.device) % a.shape[0]
                    self.preview_a.copy_(a[idx])
                    self.preview_n.fill_(min(PREVIEW, a.shape[0]))
            fake = self.generator(a)  # (B, C, H, W)
            adv = obj.g(self._d(a, fake))
            l1 = (fake - b).abs().mean()
            self._fake = (batch["x"], fake.detach())
            return {"loss": adv + self.cfg.lambda_l1 * l1, "adv": adv.detach(),
                    "l1": l1.detach()}
        if self._fake is not None and self._fake[0] is batch["x"]:
            fake = self._fake[1]  # made by this step's G phase
        else:
            with torch.no_grad():
                fake = self.generator(a)
        self._fake = None
        out_r, out_f = self._d(a, b), self._d(a, fake)
        # the paper halves D's objective (sec. 3.3); under Adam a constant factor changes nothing
        return {"loss": obj.d(out_r, out_f), "d_real": out_r.mean().detach(),
                "d_fake": out_f.mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               x: torch.Tensor | None = None, direction: str = "AtoB", **cond) -> torch.Tensor:
        """With `x`: its translations. Without: n images in pairs (a, G(a)) of the stored
        preview inputs (the first training batch)."""
        if x is not None:
            return self.translate(x.to(self.device), direction)
        q = -(-n // 2)
        a = self.preview_a[torch.arange(q, device=self.device) % PREVIEW]  # (q, C, H, W)
        return torch.stack([a, self.generator(a)], 1).flatten(0, 1)[:n]  # (n, C, H, W)


__all__ = ["Pix2Pix", "Pix2PixConfig"]
