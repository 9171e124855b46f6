"""Gradient penalties on the discriminator, usable with any objective.

Each takes the discriminator as a callable `D(x) -> (B,)` (labels and packing already bound) and
returns the unweighted penalty; the caller multiplies by its weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Disc = Callable[[torch.Tensor], torch.Tensor]


def _grad_norm(D: Disc, x: torch.Tensor) -> torch.Tensor:
    """||dD(x)/dx|| per example, with a graph so the penalty itself can be differentiated."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)  # (B,)


def wgan_gp(D: Disc, real: torch.Tensor, fake: torch.Tensor,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """E (||grad D(x_hat)|| - 1)^2 at x_hat = eps x + (1 - eps) x~, eps ~ U[0, 1] per example
    (Gulrajani et al. 2017, arXiv:1704.00028, Algorithm 1)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator).to(real.device) if generator is not None \
        else torch.rand(shape, device=real.device)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return ((_grad_norm(D, x_hat) - 1) ** 2).mean()


def dragan(D: Disc, real: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """E (||grad D(x_hat)|| - 1)^2 in a neighbourhood of the real data (Kodali et al. 2017,
    arXiv:1705.07215), as the authors' code does it: perturb x_p = x + c std(x) U[0, 1], then
    take the point x_hat = x + alpha (x_p - x) with alpha ~ U[0, 1] per example."""
    x = real.detach()
    x_p = x + c * x.std() * torch.rand_like(x)
    alpha = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device)
    return ((_grad_norm(D, x + alpha * (x_p - x)) - 1) ** 2).mean()


def r1(D: Disc, real: torch.Tensor) -> torch.Tensor:
    """E ||grad D(x)||^2 on real data (Mescheder et al. 2018, arXiv:1801.04406); the paper's
    regulariser is (gamma / 2) times this."""
    return (_grad_norm(D, real) ** 2).mean()


PENALTIES = {"wgan-gp": "interpolates", "dragan": "perturbed reals", "r1": "reals"}
