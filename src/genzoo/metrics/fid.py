"""Fréchet distance between Gaussians fitted to features (FID; Heusel et al. 2017,
arXiv:1706.08500): ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)).

Means and covariances are accumulated in float64. The trace of the matrix square root is computed
as the sum of the singular values of S_f^(1/2) S_r^(1/2): their squares are the eigenvalues of
S_r^(1/2) S_f S_r^(1/2), which are those of S_r S_f. No general (non-symmetric) sqrtm, no complex
parts to discard, and stable when the covariances are near-singular (fewer samples than
dimensions, dead features): taking square roots of the eigenvalues of S_r^(1/2) S_f S_r^(1/2)
instead turns rounding noise e in its null space into sqrt(e), which made the FID of a set with
itself negative (about -1e-3 for 50 samples of 2048 features). Tiny negative eigenvalues of each
covariance from rounding are clipped to 0.
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
    # singular values of S2^(1/2) S1^(1/2) = square roots of the eigenvalues of S1 S2
    tr_sqrt = torch.linalg.svdvals(_psd_sqrt(s2) @ _psd_sqrt(s1)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt)


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


@register_metric("fid", "Fréchet distance of feature statistics (domain classifier or Inception)",
                 features=True)
def fid(ctx: EvalContext) -> dict:
    real, fake = ctx.real_features()["features"], ctx.fake_features()["features"]
    name = ctx.extractor().name
    return {f"fid_{name}": fid_from_features(real, fake), "n_real": len(real),
            "n_fake": len(fake), "features": name}
