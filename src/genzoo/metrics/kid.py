"""Kernel Inception Distance (Bińkowski et al. 2018, arXiv:1801.01401): the unbiased estimate of
the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets (the paper and the reference code: 100 subsets of 1,000). Unlike FID it is unbiased, so
small N does not inflate it; the std over subsets is reported beside the mean.
"""

from __future__ import annotations

import torch

from genzoo.metrics import EvalContext, register_metric

N_SUBSETS, SUBSET_SIZE = 100, 1000


_FULL_GRAM = 12000  # up to this many rows in both sets, kernels are computed once, not per subset


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    k = a @ b.T / a.shape[1] + 1
    return k * k * k  # (a.b / d + 1)^3; a product is faster than pow in float64


def _mmd2(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> float:
    m, n = len(kxx), len(kyy)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between feature sets x (m, d) and y (n, d) with the cubic kernel."""
    return _mmd2(_kernel(x, x), _kernel(y, y), _kernel(x, y))


def kid_from_features(real: torch.Tensor, fake: torch.Tensor, *, n_subsets: int = N_SUBSETS,
                      subset_size: int = SUBSET_SIZE, seed: int = 0) -> tuple[float, float, int]:
    """(mean, std over subsets, subset size) of the unbiased MMD^2, float64."""
    real, fake = real.double(), fake.double()
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    g = torch.Generator().manual_seed(seed)
    subsets = [(torch.randperm(len(real), generator=g)[:m],
                torch.randperm(len(fake), generator=g)[:m]) for _ in range(n_subsets)]
    if len(real) + len(fake) <= _FULL_GRAM:  # every kernel value once, then index the subsets
        krr, kff, krf = _kernel(real, real), _kernel(fake, fake), _kernel(real, fake)
        vals = [_mmd2(krr[i[:, None], i], kff[j[:, None], j], krf[i[:, None], j])
                for i, j in subsets]
    else:
        vals = [polynomial_mmd2(real[i], fake[j]) for i, j in subsets]
    vals = torch.tensor(vals, dtype=torch.float64)
    std = float(vals.std()) if n_subsets > 1 else 0.0
    return float(vals.mean()), std, m


@register_metric("kid", "kernel distance (unbiased cubic-kernel MMD^2 over subsets)",
                 features=True)
def kid(ctx: EvalContext) -> dict:
    real, fake = ctx.real_features()["features"], ctx.fake_features()["features"]
    name = ctx.extractor().name
    mean, std, m = kid_from_features(real, fake, seed=ctx.seed)
    return {f"kid_{name}": mean, f"kid_{name}_std": std, "n_real": len(real),
            "n_fake": len(fake), "subsets": N_SUBSETS, "subset_size": m, "features": name}
