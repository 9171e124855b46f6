"""MS-SSIM between random pairs of generated images: a diversity score (lower = more diverse).

Multi-scale SSIM (Wang, Simoncelli & Bovik 2003, "Multiscale structural similarity for image
quality assessment", Asilomar; their MATLAB code `msssim.m`). For images x, y at M scales (scale 1
the image, each next one a 2x2 average subsampled by 2), with local means mu, variances s^2 and
covariance s_xy under a Gaussian window (11x11, sigma 1.5) at every position where the window fits
("valid" filtering, no padding):

    cs_j  = mean over positions of (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)     (C3 = C2 / 2)
    ssim_M = mean over positions of l * cs at the coarsest scale, l = (2 mu_x mu_y + C1) /
             (mu_x^2 + mu_y^2 + C1)
    MS-SSIM = prod_{j < M} cs_j^beta_j * ssim_M^beta_M,  C1 = (k1 L)^2, C2 = (k2 L)^2

with L the data range (2 for our [-1, 1] images) and betas (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).
Odena et al. (arXiv:1610.09585, section 4.2) score a generator's diversity by the mean MS-SSIM of
random pairs of its samples; progressive GAN (arXiv:1710.10196, table 1) reports the same.

Details, and where torchmetrics 1.9 (`multiscale_structural_similarity_index_measure`) differs:
- colour images: the maps are averaged over channels too (as torchmetrics and the TensorFlow code
  progressive GAN used); Wang et al. define MS-SSIM on grey levels.
- a negative cs_j or ssim_M (anti-correlated images) is set to 0 before the power: the published
  product of fractional powers is undefined there. torchmetrics' default normalize="relu" does the
  same; elsewhere this is the published value.
- torchmetrics pads with reflection and, at the coarsest scale, averages the SSIM map over the
  padded border too (its cs terms are cropped to the valid positions, like ours). We average
  valid positions only, as Wang et al.'s code. The two agree where the coarsest scales of x and y
  are equal (both give 1 there).
- odd sizes: torchmetrics' 2x2 average drops the last row/column; we keep it (averaged with
  itself, as MATLAB's imfilter(..., 'symmetric') in Wang et al.'s code), giving ceil(H/2).

Small images: 5 scales of an 11x11 window need 176x176 pixels. `msssim_setting` picks, for images
too small, the most scales whose coarsest side still holds a window of at least 7 pixels; the
window is the largest odd size <= min(11, that side), with sigma scaled in proportion (1.5 * k / 11,
the window's shape kept, as the TensorFlow reference code does when it shrinks its window); the
betas are the first `scales` weights renormalised to sum 1, so MS-SSIM(x, x) stays 1. Our data:
32x32 -> 3 scales, 7x7 window; 28x28 -> 3 scales, 7x7; 8x8 -> 1 scale (plain SSIM), 7x7.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, cross-scale calibration
MIN_KERNEL = 7  # the smallest window msssim_setting accepts (our choice; sigma 0.95)


def gaussian_window(kernel_size: int, sigma: float, dtype=torch.float64, device=None):
    """(k,) Gaussian weights at -(k-1)/2 .. (k-1)/2, summing to 1 (fspecial('gaussian'))."""
    r = torch.arange(kernel_size, dtype=dtype, device=device) - (kernel_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Valid Gaussian filtering of (B, C, H, W), separable: -> (B, C, H-k+1, W-k+1)."""
    c, k = x.shape[1], len(g)
    x = F.conv2d(x, g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)  # along H
    return F.conv2d(x, g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)  # along W


def _ssim_cs(x, y, g, c1: float, c2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair (B,): mean of the SSIM map and mean of the contrast-structure map."""
    b = len(x)
    stats = _filter(torch.cat([x, y, x * x, y * y, x * y]), g)  # (5B, C, h, w)
    mx, my, xx, yy, xy = stats.split(b)
    vx = (xx - mx * mx).clamp(min=0)  # clamp: rounding can make a flat patch's variance < 0
    vy = (yy - my * my).clamp(min=0)
    cs = (2 * (xy - mx * my) + c2) / (vx + vy + c2)  # (B, C, h, w)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def _halve(x: torch.Tensor) -> torch.Tensor:
    """2x2 average, subsampled: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2)); an odd last row or
    column is repeated, so it is kept as it is (Wang et al.'s 'symmetric' border)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 2.0,
            kernel_size: int = 11, sigma: float = 1.5, betas: tuple = BETAS,
            k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """MS-SSIM of each pair of images x[i], y[i] (B, C, H, W) -> (B,) float64, in [0, 1].

    Uses exactly len(betas) scales and a kernel_size window; raises when the coarsest scale is
    smaller than the window (`msssim_setting` picks a setting that fits small images).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ms_ssim needs two (B, C, H, W) batches of one shape; got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if kernel_size < 1 or kernel_size % 2 == 0 or not sigma > 0:
        raise ValueError(f"ms_ssim needs an odd kernel_size and sigma > 0; got {kernel_size}, "
                         f"{sigma}")
    if not betas or any(not b >= 0 for b in betas):
        raise ValueError(f"ms_ssim needs one or more non-negative betas; got {betas}")
    h, w = x.shape[-2:]
    for _ in range(len(betas) - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
    if min(h, w) < kernel_size:
        raise GenzooError(f"ms_ssim: {len(betas)} scales of {tuple(x.shape[-2:])} images leave "
                          f"{h}x{w} pixels, less than the {kernel_size}x{kernel_size} window; "
                          "use fewer scales or a smaller window (msssim_setting chooses both)")
    x, y = x.double(), y.double()  # float64: SSIM of near-identical images is 1 - tiny
    g = gaussian_window(kernel_size, sigma, device=x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    terms = []
    for j in range(len(betas)):
        ssim, cs = _ssim_cs(x, y, g, c1, c2)
        terms.append(cs if j < len(betas) - 1 else ssim)  # luminance only at the coarsest scale
        if j < len(betas) - 1:
            x, y = _halve(x), _halve(y)
    stack = torch.stack(terms).clamp(min=0)  # (M, B); negative -> 0, see the module notes
    weights = torch.tensor(betas, dtype=torch.float64, device=stack.device)[:, None]  # (M, 1)
    return (stack**weights).prod(0)


def msssim_setting(h: int, w: int, *, kernel_size: int = 11, sigma: float = 1.5,
                   betas: tuple = BETAS, min_kernel_size: int = MIN_KERNEL) -> dict:
    """The scales, window and betas for h x w images: the published ones when they fit.

    Returns {"scales", "kernel_size", "sigma", "betas"} (see the module notes for the rule).
    """
    smallest = min(min_kernel_size, kernel_size)
    for scales in range(len(betas), 0, -1):
        side = min(h, w)
        for _ in range(scales - 1):
            side = (side + 1) // 2
        k = min(kernel_size, side)
        k -= 1 - k % 2  # the largest odd size that fits
        if k >= smallest:
            kept = tuple(betas[:scales])
            if scales < len(betas):  # truncated: renormalise (the published five sum to 1.0001)
                kept = tuple(b / sum(kept) for b in kept)
            return {"scales": scales, "kernel_size": k, "sigma": sigma * k / kernel_size,
                    "betas": kept}
    raise GenzooError(f"msssim needs images of at least {smallest}x{smallest} pixels; "
                      f"got {h}x{w}")


def ms_ssim_pairs(images: torch.Tensor, *, n_pairs: int = 10000, seed: int = 0,
                  batch_size: int = 500, data_range: float = 2.0) -> dict:
    """Mean and std of MS-SSIM over random pairs of distinct images of (N, C, H, W) `images`.

    When n_pairs covers all N(N-1)/2 pairs, every pair is scored once; otherwise n_pairs pairs
    (i, j), i != j, are drawn uniformly with replacement (seeded). The scales and window come from
    `msssim_setting`. std is the population std over the pairs.
    """
    if images.dim() != 4:
        raise GenzooError(f"msssim needs images (N, C, H, W); got shape {tuple(images.shape)}")
    n = len(images)
    if n < 2:
        raise GenzooError(f"msssim needs at least 2 images to form a pair; got {n}")
    if int(n_pairs) != n_pairs or n_pairs < 1 or batch_size < 1:
        raise GenzooError(f"msssim n_pairs ({n_pairs}) and batch_size ({batch_size}) must be "
                          "whole numbers, at least 1")
    setting = msssim_setting(*images.shape[-2:])
    total = n * (n - 1) // 2
    if n_pairs >= total:
        i, j = torch.triu_indices(n, n, offset=1)  # every unordered pair once
    else:
        g = torch.Generator().manual_seed(int(seed))
        i = torch.randint(0, n, (int(n_pairs),), generator=g)
        j = (i + torch.randint(1, n, (int(n_pairs),), generator=g)) % n  # j != i
    i, j = i.to(images.device), j.to(images.device)
    scores = torch.cat([
        ms_ssim(images[i[s:s + batch_size]], images[j[s:s + batch_size]], data_range=data_range,
                kernel_size=setting["kernel_size"], sigma=setting["sigma"],
                betas=setting["betas"])
        for s in range(0, len(i), batch_size)])  # (P,) float64
    return {"msssim": float(scores.mean()), "msssim_std": float(scores.std(correction=0)),
            "n_pairs": len(scores), "n_images": n, "scales": setting["scales"],
            "kernel_size": setting["kernel_size"], "sigma": setting["sigma"]}


@register_metric("msssim", "MS-SSIM between random pairs of samples (diversity; lower = more "
                           "diverse)")
def msssim(ctx: EvalContext) -> dict:
    fake = ctx.fake()  # (n_fake, C, H, W) in [-1, 1]
    if fake.dim() != 4:
        raise GenzooError(f"msssim needs image data; the samples have shape "
                          f"{tuple(fake.shape[1:])}, not (C, H, W)")
    raw = (ctx.options or {}).get("msssim_pairs")
    try:
        n_pairs = 10000 if raw is None else int(raw)
    except (TypeError, ValueError):
        raise GenzooError(f"msssim_pairs {raw!r} is not a whole number") from None
    device = ctx.device if ctx.device is not None else "cpu"
    out = ms_ssim_pairs(fake.to(device), n_pairs=n_pairs, seed=ctx.seed)
    out["protocol"] = (f"Wang et al. 2003 MS-SSIM, {out['scales']} scales, "
                       f"{out['kernel_size']}x{out['kernel_size']} Gaussian window "
                       f"(sigma {out['sigma']:.3g}), between random pairs of samples "
                       "(arXiv:1610.09585)")
    if not math.isfinite(out["msssim"]):
        raise GenzooError("msssim is not finite: the samples hold NaN or Inf values")
    return out
