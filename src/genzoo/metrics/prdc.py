"""Precision and recall of k-NN manifolds (Kynkäänniemi et al. 2019, arXiv:1904.06991) and
density and coverage (Naeem et al. 2020, arXiv:2002.09797), in feature space.

The manifold of a set is the union of balls around each of its points with radius the distance
to its k-th nearest neighbour in the same set (k = 3 for precision/recall, as Kynkäänniemi et al.;
k = 5 for density/coverage, as Naeem et al. recommend):
- precision: fraction of generated samples inside the real manifold;
- recall: fraction of real samples inside the generated manifold;
- density: (1 / kM) sum over generated samples of the number of real balls that contain it;
- coverage: fraction of real balls that contain at least one generated sample.
The radii grow as a set shrinks, so the two sets are compared at equal size: the larger one is
subsampled (seeded) to the size of the smaller.
"""

from __future__ import annotations

import torch

from genzoo.metrics import EvalContext, register_metric

K_PR, K_DC = 3, 5
_CHUNK = 1024


def _dist(a: torch.Tensor, b: torch.Tensor):
    """Yield (row offset, distances (chunk, len(b))) in float64."""
    for i in range(0, len(a), _CHUNK):
        yield i, torch.cdist(a[i:i + _CHUNK].double(), b.double())


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every row of x to its k-th nearest other row (N,)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples, got {len(x)}")
    out = torch.empty(len(x), dtype=torch.float64)
    for i, d in _dist(x, x):
        out[i:i + len(d)] = d.kthvalue(k + 1, dim=1).values  # +1: the point itself at 0
    return out


def _inside_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor):
    """For each point, how many balls (centre, radius) contain it; and which balls are hit."""
    counts = torch.zeros(len(points), dtype=torch.int64)
    hit = torch.zeros(len(centres), dtype=torch.bool)
    for i, d in _dist(points, centres):
        inside = d <= radii.view(1, -1)  # (chunk, centres)
        counts[i:i + len(d)] = inside.sum(1)
        hit |= inside.any(0)
    return counts, hit


def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = K_PR, k_dc: int = K_DC) -> dict:
    r_pr, f_pr = knn_radii(real, k_pr), knn_radii(fake, k_pr)
    precision = float((_inside_counts(fake, real, r_pr)[0] > 0).double().mean())
    recall = float((_inside_counts(real, fake, f_pr)[0] > 0).double().mean())
    r_dc = r_pr if k_dc == k_pr else knn_radii(real, k_dc)
    counts, hit = _inside_counts(fake, real, r_dc)
    density = float(counts.double().sum() / (k_dc * len(fake)))
    coverage = float(hit.double().mean())
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@register_metric("pr", "precision/recall (k=3) and density/coverage (k=5) in feature space",
                 features=True)
def pr(ctx: EvalContext) -> dict:
    real, fake = ctx.real_features()["features"], ctx.fake_features()["features"]
    name = ctx.extractor().name
    # the radii depend on the set's size: compare sets of equal size, the larger one subsampled
    g = torch.Generator().manual_seed(ctx.seed)
    m = min(len(real), len(fake))
    real = real[torch.randperm(len(real), generator=g)[:m]] if len(real) > m else real
    fake = fake[torch.randperm(len(fake), generator=g)[:m]] if len(fake) > m else fake
    vals = prdc(real, fake)
    return {**{f"{k}_{name}": v for k, v in vals.items()}, "k_pr": K_PR, "k_dc": K_DC,
            "n_real": len(real), "n_fake": len(fake), "features": name}
