"""Disentanglement scores from ground-truth factors (a factor dataset such as shapes2d).

Both score a representation `represent(factors) -> codes`: for a model, the factors are rendered
to images and encoded (the posterior mean for a VAE, the code for an AAE). Factors with a single
value on the dataset's grid never vary and are left out.

FactorVAE score (Kim & Mnih 2018, arXiv:1802.05983, section 4):
  1. the empirical std s_d of every code dimension over a large sample of the data; dimensions
     with (numerically) zero variance carry nothing and are pruned;
  2. one vote: pick a factor k uniformly, draw L examples that share a random value of factor k
     (all others random), take the variance of their codes divided by s_d^2 per dimension, and
     vote (d* = argmin_d of it, k);
  3. a majority-vote classifier maps each d to the factor it voted for most often, fitted on
     `votes` training votes; the score is its accuracy on as many fresh votes.
  A perfectly disentangled code scores 1; a code that ignores the factors scores about
  1 / (number of factors).

Mutual information gap, MIG (Chen et al. 2018, arXiv:1802.04942, eq. 4):
  MIG = 1/K sum_k (I(z_j(k); v_k) - I(z_j'(k); v_k)) / H(v_k)
  with j(k), j'(k) the code dimensions of the largest and second largest mutual information with
  factor v_k. I is estimated as in disentanglement_lib (Locatello et al. 2019, arXiv:1811.12359):
  each code dimension discretised into `bins` equal-width bins over its range, then the plug-in
  (histogram) mutual information of the discrete pairs. When the grid has at most `n`
  combinations all of them are enumerated (factors exactly independent: no sampling bias);
  otherwise n combinations are drawn uniformly. A perfectly disentangled code scores 1, a random
  code about 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

Represent = Callable[[torch.Tensor], torch.Tensor]  # (N, K) factor indices -> (N, L) codes

VOTE_BATCH = 64  # L, examples per vote (disentanglement_lib's batch_size)
VOTES = 800  # votes to fit the classifier, and as many to score it
N_VARIANCE = 10_000  # examples for the global std of each code dimension
N_MIG = 10_000  # examples for MIG (or the whole grid when smaller)
BINS = 20  # MIG's discretisation (disentanglement_lib's num_bins)


def _codes(represent: Represent, factors: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    parts = [represent(factors[i:i + chunk]).detach().double().cpu()
             for i in range(0, len(factors), chunk)]
    z = torch.cat(parts)  # (N, L)
    assert z.dim() == 2 and len(z) == len(factors), f"codes of shape {tuple(z.shape)}"
    return z


def _sample(sizes: tuple[int, ...], n: int, g: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randint(k, (n,), generator=g) for k in sizes], 1)  # (n, K)


def factorvae_score(represent: Represent, sizes: tuple[int, ...], *, votes: int = VOTES,
                    batch: int = VOTE_BATCH, n_variance: int = N_VARIANCE,
                    seed: int = 0) -> dict:
    """The FactorVAE disentanglement score of `represent` on a factor grid `sizes`."""
    g = torch.Generator().manual_seed(seed)
    varying = [k for k, n in enumerate(sizes) if n > 1]
    if not varying:
        raise GenzooError("no factor takes more than one value; nothing to score")
    var = _codes(represent, _sample(sizes, n_variance, g)).var(0)  # (L,)
    active = var > 1e-12 * max(float(var.max()), 1e-300)
    if not active.any():
        raise GenzooError("every code dimension is constant; the score is undefined")
    std = var.sqrt()
    L = len(var)

    def vote_table(n_votes: int) -> torch.Tensor:
        table = torch.zeros(L, len(sizes), dtype=torch.long)  # (code dim, factor) counts
        for _ in range(n_votes):
            k = varying[int(torch.randint(len(varying), (1,), generator=g))]
            f = _sample(sizes, batch, g)
            f[:, k] = int(torch.randint(sizes[k], (1,), generator=g))  # factor k held fixed
            v = (_codes(represent, f) / std).var(0)  # (L,) normalised variances
            v[~active] = float("inf")
            table[int(v.argmin()), k] += 1
        return table

    train, test = vote_table(votes), vote_table(votes)
    predict = train.argmax(1)  # majority vote: code dimension -> factor
    correct = test.gather(1, predict[:, None]).sum()
    train_correct = train.gather(1, predict[:, None]).sum()
    return {"factorvae_score": float(correct) / votes,
            "factorvae_train_accuracy": float(train_correct) / votes,
            "chance": 1.0 / len(varying), "active_dims": int(active.sum()), "code_dim": L,
            "votes": votes, "vote_batch": batch}


def _entropy(counts: torch.Tensor) -> torch.Tensor:
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return -(p * p.log()).sum()


def mutual_information(a: torch.Tensor, b: torch.Tensor) -> float:
    """Plug-in mutual information (nats) of two integer label vectors of equal length."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    joint = torch.bincount(a * nb + b, minlength=na * nb).view(na, nb)  # (na, nb) counts
    return float(_entropy(joint.sum(1)) + _entropy(joint.sum(0)) - _entropy(joint.flatten()))


def discretise(z: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """(N, L) codes -> (N, L) bin indices 0..bins-1, equal-width bins over each column's range."""
    lo, hi = z.min(0).values, z.max(0).values
    width = torch.where(hi > lo, (hi - lo) / bins, torch.ones_like(hi))
    return ((z - lo) / width).floor().clamp(0, bins - 1).long()


def mig(represent: Represent, sizes: tuple[int, ...], *, n: int = N_MIG, bins: int = BINS,
        seed: int = 0) -> dict:
    """The mutual information gap of `represent` on a factor grid `sizes`."""
    total = 1
    for s in sizes:
        total *= s
    if total <= n:  # the whole grid: every combination once
        grids = torch.meshgrid(*[torch.arange(s) for s in sizes], indexing="ij")
        f = torch.stack([t.reshape(-1) for t in grids], 1)  # (total, K)
    else:
        f = _sample(sizes, n, torch.Generator().manual_seed(seed))
    zb = discretise(_codes(represent, f), bins)  # (N, L)
    varying = [k for k, s in enumerate(sizes) if s > 1]
    if zb.shape[1] < 2:
        raise GenzooError("MIG needs a code of at least 2 dimensions")
    gaps, per_factor = [], {}
    for k in varying:
        mi = torch.tensor([mutual_information(zb[:, j], f[:, k]) for j in range(zb.shape[1])],
                          dtype=torch.float64)
        top = mi.topk(2).values
        h = float(_entropy(torch.bincount(f[:, k])))
        gaps.append(float(top[0] - top[1]) / h)
        per_factor[k] = gaps[-1]
    return {"mig": sum(gaps) / len(gaps), "mig_per_factor": per_factor, "n": len(f),
            "bins": bins, "enumerated": total <= n}


# ----------------------------------------------------------------------------- the registry

def _factor_setup(ctx: EvalContext):
    from genzoo.data import load_dataset

    if ctx.model is None:
        raise GenzooError("disentanglement metrics read a model's codes; they need a run")
    if not callable(getattr(ctx.model, "encode", None)):
        raise GenzooError(f"model {ctx.model.name!r} has no encode(x); disentanglement metrics "
                          "need an encoder (vae, factorvae, aae)")
    data = load_dataset(ctx.data_cfg, "train")
    if not hasattr(data, "render") or not hasattr(data, "factor_sizes"):
        raise GenzooError(f"dataset {ctx.data_cfg.name!r} has no ground-truth factors; "
                          "disentanglement metrics need a factor dataset (shapes2d)")
    model = ctx.model

    @torch.no_grad()
    def represent(factors: torch.Tensor) -> torch.Tensor:
        out = model.encode(data.render(factors).to(model.device))
        return out[0] if isinstance(out, (tuple, list)) else out  # the VAE: posterior mean

    return represent, tuple(data.factor_sizes), data


@register_metric("factorvae-score", "FactorVAE disentanglement score (majority vote on the "
                 "code dim of least normalised variance; needs ground-truth factors)")
def factorvae_metric(ctx: EvalContext) -> dict:
    represent, sizes, data = _factor_setup(ctx)
    votes = VOTES if ctx.n is None else ctx.n
    return {**factorvae_score(represent, sizes, votes=votes, seed=ctx.seed),
            "factors": ",".join(data.factor_names)}


@register_metric("mig", "mutual information gap (Chen et al. 2018), 20-bin histogram "
                 "estimate; needs ground-truth factors")
def mig_metric(ctx: EvalContext) -> dict:
    represent, sizes, data = _factor_setup(ctx)
    out = mig(represent, sizes, n=N_MIG if ctx.n is None else ctx.n, seed=ctx.seed)
    per = out.pop("mig_per_factor")
    return {**out, **{f"mig_{data.factor_names[k]}": v for k, v in per.items()}}
