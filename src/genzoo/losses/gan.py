"""GAN objectives on raw discriminator outputs (logits), selectable by name.

Each objective is a pair of pure functions: the discriminator's loss on (real, fake) outputs and
the generator's loss on fake outputs, both averaged over the batch. Networks never know which one
they are trained with.
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
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_out, fake_out) -> scalar
    g: Callable[[torch.Tensor], torch.Tensor]  # fake_out -> scalar
    description: str


GAN_LOSSES: dict[str, GanLoss] = {}


def _register(name: str, description: str):
    def deco(fn_pair):
        d, g = fn_pair()
        GAN_LOSSES[name] = GanLoss(name, d, g, description)
        return fn_pair

    return deco


def _d_bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid(logit); softplus keeps it stable
    return F.softplus(-real).mean() + F.softplus(fake).mean()


@_register("nsgan", "non-saturating GAN: G minimises -log D(G(z)) (Goodfellow et al. 2014)")
def _nsgan():
    return _d_bce, lambda fake: F.softplus(-fake).mean()


@_register("gan", "minimax GAN: G minimises log(1 - D(G(z))), saturates early in training")
def _minimax():
    return _d_bce, lambda fake: -F.softplus(fake).mean()


def get_gan_loss(name: str) -> GanLoss:
    if name not in GAN_LOSSES:
        raise GenzooError(f"unknown GAN loss {name!r}; choose one of: {choices(GAN_LOSSES)}")
    return GAN_LOSSES[name]
