"""Primitives shared by several model families (only what is truly identical between them)."""

from __future__ import annotations

import torch
from torch import nn

from genzoo.errors import GenzooError

NORMS = ("batch", "instance", "layer", "none")


def norm2d(kind: str, ch: int) -> nn.Module:
    """A normalisation layer for (B, C, H, W) maps by name."""
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "layer":  # normalises each example over (C, H, W): safe with gradient penalties
        return nn.GroupNorm(1, ch)
    if kind == "none":
        return nn.Identity()
    raise GenzooError(f"norm {kind!r} is not valid; choose one of {', '.join(NORMS)}")


def norm1d(kind: str, features: int) -> nn.Module:
    """A normalisation layer for (B, F) vectors; 'instance' has no meaning there."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    if kind == "none":
        return nn.Identity()
    raise GenzooError(f"norm {kind!r} is not valid for MLP networks; choose batch, layer or none")


class MinibatchStdDev(nn.Module):
    """Appends the average standard deviation of features over groups of the batch as one extra
    channel (Karras et al. 2018, arXiv:1710.10196, sec. 3): the discriminator sees how varied a
    batch is, which penalises a generator that produces the same output for every z.

    (B, C, H, W) -> (B, C + 1, H, W) and (B, F) -> (B, F + 1).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = min(self.group_size, b)
        if b % g:
            g = 1 if b % 2 else 2
        y = x.reshape(g, b // g, *x.shape[1:])  # (G, B/G, ...): groups of strided examples
        std = (y.var(0, unbiased=False) + 1e-8).sqrt()  # (B/G, ...)
        stat = std.flatten(1).mean(1)  # (B/G,)
        stat = stat.repeat(g)  # (B,) group statistic for each member: example i in group i % (B/G)
        extra = stat.view(b, 1, *([1] * (x.dim() - 2))).expand(b, 1, *x.shape[2:])
        return torch.cat([x, extra], 1)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016 (arXiv:1606.03498, sec. 3.2): each example gets B features
    o_b(x_i) = sum_j exp(-||M_i,b - M_j,b||_1) measuring its closeness to the rest of the batch.

    (B, A) -> (B, A + n_kernels)
    """

    def __init__(self, in_features: int, n_kernels: int = 32, kernel_dim: int = 8):
        super().__init__()
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.n_kernels, self.kernel_dim)  # (B, K, Dk)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (B, B, K) L1 distances
        o = torch.exp(-dist).sum(1) - 1.0  # (B, K); minus exp(0) of each example with itself
        return torch.cat([x, o], 1)
