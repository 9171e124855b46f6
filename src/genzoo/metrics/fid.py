"""Fréchet distance between Gaussians fitted to features (FID; Heusel et al. 2017,
arXiv:1706.08500): ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)).

Means and covariances are accumulated in float64. The trace of the matrix square root is computed
as the sum of square roots of the eigenvalues of the symmetric PSD matrix S_r^(1/2) S_f S_r^(1/2),
which has the same eigenvalues as S_r S_f: no general (non-symmetric) sqrtm, no complex parts to
discard, stable when the covariances are near-singular (fewer samples than dimensions, dead
features). Tiny negative eigenvalues from rounding are clipped to 0.
"""

from __future__ import annotations

import torch

from genzoo.metrics import EvalContext, register_metric


def gaussian_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64."""
    f = feats.double()
    if len(f) < 2:
        raise ValueError("FID needs at least 2 samples per set")
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (len(f) - 1)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """The Fréchet distance between N(mu1, s1) and N(mu2, s2), all float64."""
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    eig = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0)
    tr_sqrt = eig.sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


@register_metric("fid", "Fréchet distance of feature statistics (domain classifier or Inception)")
def fid(ctx: EvalContext) -> dict:
    real, fake = ctx.real_features()["features"], ctx.fake_features()["features"]
    name = ctx.extractor().name
    return {f"fid_{name}": fid_from_features(real, fake), "n_real": len(real),
            "n_fake": len(fake), "features": name}
