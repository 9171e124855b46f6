"""Primitives shared by several model families (only what is truly identical between them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


class MaskedConv2d(nn.Conv2d):
    """A 'same'-size convolution that only sees what precedes the centre pixel in raster order
    (PixelCNN, van den Oord et al. 2016, arXiv:1601.06759, sec. 3.4 and fig. 2).

    Spatially the kernel keeps the rows above the centre and the centre row left of the centre.
    At the centre itself the channels are split into `colors` contiguous groups (R, G, B; channel
    i of n belongs to group i * colors // n): mask "A" (the first layer) lets output group g see
    input groups < g only, so no output sees its own sub-pixel; mask "B" (later layers) lets it
    see groups <= g. With colors=1 this is the single-channel mask: "A" excludes the centre,
    "B" includes it. Rectangular kernels (1 x k for a horizontal stack) are allowed.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int | tuple[int, int],
                 mask_type: str, colors: int = 1, bias: bool = True):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if kh % 2 == 0 or kw % 2 == 0:
            raise GenzooError(f"masked convolution kernels must be odd, got {kh}x{kw}")
        if mask_type not in ("A", "B"):
            raise GenzooError(f"mask_type={mask_type!r} is not valid; choose A or B")
        if in_ch % colors or out_ch % colors:
            raise GenzooError(f"masked convolution {in_ch}->{out_ch} channels: both must be "
                              f"multiples of the {colors} colour channels")
        super().__init__(in_ch, out_ch, (kh, kw), padding=(kh // 2, kw // 2), bias=bias)
        cy, cx = kh // 2, kw // 2
        mask = torch.zeros(out_ch, in_ch, kh, kw)
        mask[:, :, :cy] = 1  # every row above the centre
        mask[:, :, cy, :cx] = 1  # the centre row, left of the centre
        g_out = torch.arange(out_ch) * colors // out_ch  # (out,) colour group of each channel
        g_in = torch.arange(in_ch) * colors // in_ch  # (in,)
        centre = g_in[None, :] < g_out[:, None] if mask_type == "A" else \
            g_in[None, :] <= g_out[:, None]
        mask[:, :, cy, cx] = centre.float()  # (out, in) at the centre tap
        self.mask_type = mask_type
        # not persistent: it follows from the constructor's arguments, so checkpoints hold no copy
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # weight * mask (not a masked copy kept in place): masked taps stay exactly zero and get
        # exactly zero gradient, whatever the optimizer does
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


# --- progressive and style-based GANs (Karras et al. 2018, arXiv:1710.10196; 2019, 1812.04948) ---

class EqualizedLinear(nn.Module):
    """A linear layer with the equalized learning rate of arXiv:1710.10196, sec. 4.1.

    equalized=True: the stored weight is N(0, 1/lr_mul^2) and is multiplied at every call by
    c = gain / sqrt(fan_in) * lr_mul (He's constant). Adam's step is invariant to the gradient's
    scale, so every stored weight moves by about lr, and the effective weight by c * lr: layers of
    any fan-in learn at the same speed. lr_mul < 1 slows a layer further (StyleGAN's mapping
    network, 0.01, arXiv:1812.04948 appendix C).
    equalized=False: the conventional He initialisation, N(0, c^2) stored, no runtime scale.
    (B, in) -> (B, out)
    """

    def __init__(self, fan_in: int, fan_out: int, *, gain: float = 2 ** 0.5,
                 equalized: bool = True, lr_mul: float = 1.0, bias: bool = True,
                 bias_init: float = 0.0):
        super().__init__()
        he = gain / fan_in ** 0.5
        init_std = 1.0 / lr_mul if equalized else he
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) * init_std)
        self.w_scale = he * lr_mul if equalized else 1.0
        self.b_scale = lr_mul if equalized else 1.0
        # the stored bias times b_scale is the effective bias, bias_init at the start
        self.bias = nn.Parameter(torch.full((fan_out,), bias_init / self.b_scale)) \
            if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias * self.b_scale
        return F.linear(x, self.weight * self.w_scale, b)


class EqualizedConv2d(nn.Module):
    """A 'same' convolution with the equalized learning rate (see EqualizedLinear);
    fan_in = in_ch * k * k. (B, in, H, W) -> (B, out, H, W)"""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, gain: float = 2 ** 0.5,
                 equalized: bool = True, bias: bool = True):
        super().__init__()
        he = gain / (in_ch * kernel * kernel) ** 0.5
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel)
                                   * (1.0 if equalized else he))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.w_scale = he if equalized else 1.0
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.w_scale, self.bias, padding=self.pad)


class PixelNorm(nn.Module):
    """Pixelwise feature-vector normalisation (arXiv:1710.10196, sec. 4.2): every pixel's feature
    vector scaled to unit average square, b = a / sqrt(mean_c a^2 + 1e-8). Works on (B, C, H, W)
    maps and (B, C) vectors (StyleGAN normalises z with it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)
