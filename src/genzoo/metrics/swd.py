"""Sliced Wasserstein distance between Laplacian-pyramid patches: the progressive-GAN protocol.

Karras et al. 2018 (arXiv:1710.10196, appendix D) compare the local structure of two image sets at
several scales:

- a Laplacian pyramid of every image (Burt & Adelson 1983): the next Gaussian level is this one
  blurred with the 5x5 binomial kernel [1, 4, 6, 4, 1]^2 / 256 and subsampled by 2; a Laplacian
  level is g_i - up(g_{i+1}); the coarsest level is the Gaussian level itself. Borders are
  mirrored without repeating the edge pixel, as OpenCV's pyrDown/pyrUp that their code matches;
- levels from the image resolution down to 16x16 (32x32 images: 32 and 16);
- from each level, 128 random 7x7 neighbourhoods per image: descriptors of 7 * 7 * C values;
- each level's descriptors normalised per channel, each set (real, fake) with its OWN mean and std:
  the paper's code normalises every set alone, before it meets the other. A global change of
  brightness or contrast of one set is therefore invisible; the metric compares patch structure;
- the sliced Wasserstein distance (Rabin et al. 2011): 4 repeats of 128 random unit directions;
  both sets projected, sorted, and the sorted projections' mean absolute difference taken (the 1-D
  W1 between equal-size empirical sets), averaged over directions and repeats;
- reported per level and averaged, all multiplied by 10^3 as in the paper's table 1.

Our choices where the paper is silent or our data are small:

- the levels stop at `min_resolution` (16, the paper's): 28x28 images get one level (28), as with
  the paper's code. Images smaller than `min_resolution` (8x8 digits) get one level, the image
  itself; a level needs at least 8x8 pixels so that a 7x7 neighbourhood has room to move.
- both sets are sampled at the same random neighbourhood positions (image i of each set at the same
  places) and projected on the same directions. Positions do not depend on pixels, so each set is
  still a uniform sample; sharing them removes noise from the comparison (common random numbers)
  and makes SWD(X, X) exactly 0. The paper's code draws positions for each set independently.
- sets of different sizes: the larger is subsampled (seeded) to the size of the smaller, so both
  give the same number of descriptors and sorted projections pair up one to one.
- a channel without any variation in one set (std 0) stays at zero rather than dividing by zero.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

NHOOD = 7  # neighbourhood side (arXiv:1710.10196, appendix D)
SMALLEST_LEVEL = 8  # a level must be at least 8x8 for 7x7 neighbourhoods (our choice)
PAPER_MIN_RESOLUTION = 16  # the paper's coarsest level
_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # / 16 each way: the 5x5 kernel of pyrDown


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Binomial 5x5 blur of (B, C, H, W), mirrored borders (edge pixel not repeated); same shape."""
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16
    c = x.shape[1]
    kernel = (torch.outer(k, k) * gain).repeat(c, 1, 1, 1)  # (C, 1, 5, 5), one filter per channel
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur and keep every second pixel: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""
    return _blur(x)[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Insert zeros between pixels and blur with 4x the kernel: (B, C, h, w) -> (B, C, *size).

    `size` is the finer level's (H, W), with ceil(H/2) = h and ceil(W/2) = w.
    """
    h, w = size
    if ((h + 1) // 2, (w + 1) // 2) != tuple(x.shape[-2:]):
        raise ValueError(f"pyr_up: a {tuple(x.shape[-2:])} level cannot come from {size}")
    canvas = x.new_zeros(*x.shape[:2], h, w)  # (B, C, H, W)
    canvas[..., ::2, ::2] = x
    return _blur(canvas, gain=4.0)  # 4 = 1 / (fraction of non-zero pixels)


def laplacian_pyramid(x: torch.Tensor, n_levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of (B, C, H, W), finest level first; the last is a Gaussian level.

    The image is the sum back up: g = pyramid[-1]; g = level + pyr_up(g, level size) for each
    finer level in turn.
    """
    gauss = [x]
    for _ in range(n_levels - 1):
        gauss.append(pyr_down(gauss[-1]))
    laplace = [g - pyr_up(g_next, g.shape[-2:]) for g, g_next in zip(gauss[:-1], gauss[1:])]
    return laplace + [gauss[-1]]


def pyramid_sizes(h: int, w: int, min_resolution: int = PAPER_MIN_RESOLUTION) -> list[tuple]:
    """(H, W) of each level: halving while the next level keeps min(H, W) >= min_resolution."""
    if min_resolution < SMALLEST_LEVEL:
        raise GenzooError(f"swd min_resolution {min_resolution} must be at least {SMALLEST_LEVEL} "
                          f"(a level must hold a {NHOOD}x{NHOOD} neighbourhood)")
    if min(h, w) < SMALLEST_LEVEL:
        raise GenzooError(f"swd needs images of at least {SMALLEST_LEVEL}x{SMALLEST_LEVEL} pixels "
                          f"for its {NHOOD}x{NHOOD} neighbourhoods; got {h}x{w}")
    sizes = [(h, w)]
    while min((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2) >= min_resolution:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    return sizes


def level_key(size: tuple[int, int]) -> str:
    return f"swd_{size[0]}" if size[0] == size[1] else f"swd_{size[0]}x{size[1]}"


def _gather(level: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Neighbourhoods of (B, C, h, w) at corners (B, D) -> (B * D, C, 7, 7)."""
    b, c, h, w = level.shape
    d = top.shape[1]
    r = torch.arange(NHOOD, device=level.device)
    rows = top[:, :, None, None] + r[:, None]  # (B, D, 7, 1)
    cols = left[:, :, None, None] + r  # (B, D, 1, 7)
    idx = (rows * w + cols).reshape(b, 1, d * NHOOD * NHOOD)  # (B, 1, D*49) flat pixel index
    patches = level.reshape(b, c, h * w).gather(2, idx.expand(b, c, -1))  # (B, C, D*49)
    return patches.reshape(b, c, d, NHOOD, NHOOD).transpose(1, 2).reshape(b * d, c, NHOOD, NHOOD)


def _descriptors(images, corners, n_levels, batch_size, device) -> list[torch.Tensor]:
    """Per level, the (N * D, C, 7, 7) neighbourhoods of (N, C, H, W) `images` at `corners`."""
    per_level = [[] for _ in range(n_levels)]
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device, torch.float32)  # (b, C, H, W)
        for lvl, level in enumerate(laplacian_pyramid(x, n_levels)):
            top, left = corners[lvl]
            per_level[lvl].append(_gather(level, top[i:i + batch_size].to(device),
                                          left[i:i + batch_size].to(device)))
    return [torch.cat(parts) for parts in per_level]


def _normalise(desc: torch.Tensor) -> torch.Tensor:
    """(M, C, 7, 7) -> (M, C*49), each channel centred and scaled by this set's own statistics."""
    out = torch.empty_like(desc)
    for c in range(desc.shape[1]):
        v = desc[:, c].double()  # float64 statistics over the M * 49 values of the channel
        mean, std = v.mean(), v.std(correction=0)  # population std, as numpy's default
        out[:, c] = ((v - mean) / (std if std > 0 else 1.0)).to(desc.dtype)
    return out.reshape(len(desc), -1)


def _sort_rows(p: torch.Tensor) -> torch.Tensor:
    """Sort each row of (K, M). On the CPU numpy's vectorised sort is about 3x faster than
    torch.sort (measured on (128, 640000) float32); both are exact, so the results are equal."""
    if p.device.type == "cpu":
        return torch.from_numpy(np.sort(p.numpy(), axis=1))
    return torch.sort(p, dim=1).values


def projected_w1(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein-1 between equal-size sets a, b (M, F) projected on directions (F, K).

    For equal-size empirical sets the optimal 1-D coupling pairs the sorted values, so W1 is the
    mean absolute difference of the sorted projections. Returns (K,) float64.
    """
    if a.shape != b.shape:
        raise ValueError(f"projected_w1 needs equal-size sets; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    pa = _sort_rows(directions.T @ a.T)  # (K, M): one row of projections per direction
    pb = _sort_rows(directions.T @ b.T)
    return (pa - pb).abs().sum(1, dtype=torch.float64) / len(a)


def _subsample(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    if len(x) == n:
        return x
    keep = torch.randperm(len(x), generator=g)[:n].sort().values
    return x[keep]


def sliced_wasserstein(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0,
                       descriptors_per_image: int = 128, n_directions: int = 128,
                       n_repeats: int = 4, min_resolution: int = PAPER_MIN_RESOLUTION,
                       batch_size: int = 256, device=None) -> dict:
    """SWD x 1e3 per Laplacian level between image sets real (N, C, H, W) and fake (M, C, H, W).

    Returns {"swd_<res>": ... per level, finest first, "swd_avg": mean over levels}. Deterministic
    given `seed`; `batch_size` (images per pyramid pass) and `device` do not change the draws.
    """
    if real.dim() != 4 or fake.dim() != 4 or real.shape[1:] != fake.shape[1:]:
        raise GenzooError(f"swd needs two image sets (N, C, H, W) of one image shape; got "
                          f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) < 1 or len(fake) < 1:
        raise GenzooError("swd needs at least one real and one fake image")
    for name, value in [("descriptors_per_image", descriptors_per_image),
                        ("n_directions", n_directions), ("n_repeats", n_repeats),
                        ("batch_size", batch_size)]:
        if int(value) != value or value < 1:
            raise GenzooError(f"swd {name}={value} must be a whole number, at least 1")
    device = real.device if device is None else torch.device(device)
    _, c, h, w = real.shape
    sizes = pyramid_sizes(h, w, min_resolution)
    n = min(len(real), len(fake))
    g = torch.Generator().manual_seed(int(seed))  # every draw, in a fixed order, on the CPU
    real, fake = _subsample(real, n, g), _subsample(fake, n, g)
    # top-left corners, shared by both sets: anywhere a 7x7 neighbourhood fits in the level
    corners = [(torch.randint(0, lh - NHOOD + 1, (n, descriptors_per_image), generator=g),
                torch.randint(0, lw - NHOOD + 1, (n, descriptors_per_image), generator=g))
               for lh, lw in sizes]
    desc_real = _descriptors(real, corners, len(sizes), batch_size, device)
    desc_fake = _descriptors(fake, corners, len(sizes), batch_size, device)
    out = {}
    for lvl, size in enumerate(sizes):
        a, b = _normalise(desc_real[lvl]), _normalise(desc_fake[lvl])  # (n * D, C * 49)
        desc_real[lvl] = desc_fake[lvl] = None  # free the raw descriptors as we go
        repeats = []
        for _ in range(n_repeats):
            dirs = torch.randn(c * NHOOD * NHOOD, n_directions, generator=g)  # (F, K)
            dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(device, a.dtype)  # unit columns
            repeats.append(projected_w1(a, b, dirs).mean())
        out[level_key(size)] = float(torch.stack(repeats).mean()) * 1e3  # x10^3 as table 1
    out["swd_avg"] = sum(out.values()) / len(sizes)
    return out


@register_metric("swd", "sliced Wasserstein distance on a Laplacian pyramid (x1e3, per level)")
def swd(ctx: EvalContext) -> dict:
    fake = ctx.fake()  # (n_fake, C, H, W) in [-1, 1]
    if fake.dim() != 4:
        raise GenzooError(f"swd needs image data; the samples have shape {tuple(fake.shape[1:])}, "
                          "not (C, H, W) (use the modes metric for 2-D mixtures)")
    real = ctx.real("train")  # (N, C, H, W) in [-1, 1]
    if real.shape[1:] != fake.shape[1:]:
        raise GenzooError(f"swd compares images of one shape; the samples are "
                          f"{tuple(fake.shape[1:])} but the data are {tuple(real.shape[1:])}")
    opts = ctx.options or {}
    try:
        min_res = int(opts.get("swd_min_resolution") or PAPER_MIN_RESOLUTION)
    except (TypeError, ValueError):
        raise GenzooError(f"swd_min_resolution {opts.get('swd_min_resolution')!r} is not a "
                          "whole number") from None
    if ctx.batch_size < 1:
        raise GenzooError(f"--batch-size {ctx.batch_size} must be at least 1")
    device = ctx.device if ctx.device is not None else "cpu"
    result = sliced_wasserstein(real, fake, seed=ctx.seed, min_resolution=min_res,
                                batch_size=ctx.batch_size, device=device)
    n = min(len(real), len(fake))
    levels = ",".join(k[4:] for k in result if k != "swd_avg")
    protocol = (f"arXiv:1710.10196 app. D: Laplacian levels {levels}, 128 7x7 patches per image "
                f"from {n} images per set (larger set subsampled), per-set channel "
                f"normalisation, 4x128 directions, x1e3")
    return {**result, "n_real": n, "n_fake": n, "protocol": protocol}
