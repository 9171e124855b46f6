"""Mode coverage and sample quality on 2-D Gaussian mixtures: the mode-collapse protocol.

The protocol of VEEGAN (Srivastava et al. 2017, arXiv:1705.07761, section 5.1), reused by PacGAN
(Lin et al. 2018, arXiv:1712.04086) and most later mode-collapse papers:

- draw N = 2,500 samples from the generator;
- a sample is *high quality* when it lies within 3 standard deviations of its nearest mode
  centre (VEEGAN: "within three standard deviations of the nearest mode, for the 2D dataset");
- a mode is *covered* ("captured") when it is the nearest centre of at least one high-quality
  sample (VEEGAN: "the number of mixture components whose mean is nearest to at least one high
  quality sample"). PacGAN's reference code (fjxmlzn/PacGAN, `MetricLogger`) counts the same
  thing: a mode is covered when its count of high-quality samples is non-zero. Stricter variants
  ask for several samples per mode; `min_count` sets that number (1 = VEEGAN / PacGAN).

Both papers report the mean over runs (VEEGAN: five; PacGAN: ten per setting); this metric
scores one run. Distances are in the dataset's own units (ring radius 2, grid spacing 2), with
the mixture's std (0.02 for 8gaussians, 0.05 for 25gaussians), so numbers compare with the
papers' tables. For an isotropic 2-D Gaussian, P(|x - mu| < 3 std) = 1 - exp(-9/2) = 0.98889
(a chi distribution with 2 degrees of freedom), not the 1-D 99.73%: a perfect sampler scores
`high_quality_fraction` of about 0.989, not 1.
"""

from __future__ import annotations

import math

import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

DEFAULT_N = 2500  # VEEGAN and PacGAN both draw 2,500 samples
UNITS = "dataset units (ring radius 2 / grid spacing 2)"
_CHUNK = 65536  # rows of samples per distance computation, to bound memory for large N


def mode_stats(samples: torch.Tensor, centers: torch.Tensor, std: float, n_sigma: float = 3.0,
               min_count: int = 1) -> dict:
    """Mode coverage of `samples` (N, D) against mode `centers` (M, D) of an isotropic mixture.

    A sample is high quality when its Euclidean distance to the nearest centre is below
    `n_sigma * std`; a mode is covered when it is the nearest centre of at least `min_count`
    high-quality samples. Non-finite samples are never high quality. Returns plain numbers:
    modes_covered, modes_total, high_quality_fraction, n, n_sigma, min_count, and
    high_quality_per_mode (a list of M counts).
    """
    if samples.dim() != 2 or centers.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples (N, D) and centers (M, D) must agree in D; got shapes "
                         f"{tuple(samples.shape)} and {tuple(centers.shape)}")
    if len(samples) == 0 or len(centers) == 0:
        raise ValueError("mode_stats needs at least one sample and one centre")
    if not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std={std} must be a positive number")
    if not (n_sigma > 0 and math.isfinite(n_sigma)):
        raise ValueError(f"n_sigma={n_sigma} must be a positive number")
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count={min_count} must be a whole number, at least 1")
    # float64 on the CPU: exact enough at a fraction of a std from the threshold, and the
    # (chunk, M) distance matrix is small
    c = centers.detach().to("cpu", torch.float64)
    radius = n_sigma * std
    counts = torch.zeros(len(c), dtype=torch.int64)
    for i in range(0, len(samples), _CHUNK):
        x = samples[i:i + _CHUNK].detach().to("cpu", torch.float64)
        d = torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist")  # (chunk, M)
        d = torch.where(torch.isnan(d), torch.inf, d)  # NaN samples: infinitely far
        nearest, k = d.min(1)
        hq = nearest < radius  # strict, as PacGAN's code; ties have probability 0
        counts += torch.bincount(k[hq], minlength=len(c))
    n = len(samples)
    return {"modes_covered": int((counts >= min_count).sum()), "modes_total": len(c),
            "high_quality_fraction": float(counts.sum()) / n, "n": n,
            "n_sigma": float(n_sigma), "min_count": int(min_count),
            "high_quality_per_mode": counts.tolist()}


def _option(options: dict, names: tuple[str, ...], default, cast, flag: str):
    for name in names:
        if options.get(name) is not None:
            value = options[name]
            break
    else:
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise GenzooError(f"{flag} {value!r} is not a number") from None


@register_metric("modes",
                 "mode coverage and sample quality on 2-D mixtures (VEEGAN/PacGAN protocol)")
def modes(ctx: EvalContext) -> dict:
    if ctx.model is None:
        raise GenzooError("the modes metric samples a 2-D model; it needs a run, not --samples")
    data = load_dataset(ctx.data_cfg, "test")
    name = ctx.data_cfg.name
    # the centres come from the dataset: a model rebuilt from a checkpoint has a spec without extras
    centers = data.spec.extras.get("centers") if data.spec.kind == "points" else None
    if centers is None:
        raise GenzooError(f"the modes metric needs a mixture with known mode centres "
                          f"(8gaussians, 25gaussians); dataset {name!r} has none")
    std = float(data.spec.extras["std"])
    n = DEFAULT_N if ctx.n is None else int(ctx.n)
    if n < 1:
        raise GenzooError(f"--n {n} must be at least 1 sample")
    if ctx.batch_size < 1:
        raise GenzooError(f"--batch-size {ctx.batch_size} must be at least 1")
    opts = ctx.options or {}
    n_sigma = _option(opts, ("modes_sigma",), 3.0, float, "--modes-sigma")
    min_count = _option(opts, ("modes_min_count", "min_count"), 1, int, "--modes-min-count")
    if not (n_sigma > 0 and math.isfinite(n_sigma)):
        raise GenzooError(f"--modes-sigma {n_sigma} must be a positive number of std's")
    if min_count < 1:
        raise GenzooError(f"--modes-min-count {min_count} must be at least 1 sample")

    g = torch.Generator().manual_seed(ctx.seed)
    parts = []
    with torch.no_grad():
        for i in range(0, n, ctx.batch_size):
            x = ctx.model.sample(min(ctx.batch_size, n - i), generator=g)
            parts.append(x.detach().float().cpu().reshape(len(x), -1))
    samples = torch.cat(parts)
    if samples.shape[1] != centers.shape[1]:
        raise GenzooError(f"the model draws {samples.shape[1]}-D samples but dataset {name!r} "
                          f"is {centers.shape[1]}-D; evaluate the run on the data it trained on")
    s = mode_stats(samples, centers, std, n_sigma=n_sigma, min_count=min_count)
    return {"modes_covered": s["modes_covered"], "modes_total": s["modes_total"],
            "high_quality_fraction": s["high_quality_fraction"], "n": s["n"],
            "n_sigma": s["n_sigma"], "min_count": s["min_count"], "units": UNITS}
