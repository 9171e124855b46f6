"""Inception Score (Salimans et al. 2016, arXiv:1606.03498): exp(E_x KL(p(y|x) || p(y))), with
p(y) the mean of p(y|x) over the split; the samples are shuffled (seeded) and cut into 10
splits, and the mean and std over splits reported. The reference code splits in order, which
assumes i.i.d. samples; images given with `--samples` may be sorted by class (a test split),
and an ordered split of sorted images scores ~1. With a domain classifier of K
classes the score lies in [1, K]: K when every sample is confidently one class and the classes
are used equally.
"""

from __future__ import annotations

import torch

from genzoo.metrics import EvalContext, register_metric

SPLITS = 10


def inception_score(logits: torch.Tensor, splits: int = SPLITS,
                    seed: int | None = 0) -> tuple[float, float]:
    """(mean, std over splits) of the score of class logits (N, K), float64; rows shuffled with
    `seed` before splitting (None: in the given order)."""
    logits = logits.detach().double()
    if seed is not None:
        logits = logits[torch.randperm(len(logits), generator=torch.Generator().manual_seed(seed))]
    logp = torch.log_softmax(logits, dim=1)  # (N, K)
    scores = []
    for part in logp.tensor_split(splits):
        if len(part) == 0:
            continue
        p = part.exp()
        log_py = torch.logsumexp(part, 0) - torch.log(torch.tensor(float(len(part)),
                                                                     dtype=torch.float64))
        kl = (p * (part - log_py)).sum(1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False)) if len(s) > 1 else 0.0


@register_metric("is", "Inception Score from classifier logits (splits, mean and std)",
                 features=True)
def inception_score_metric(ctx: EvalContext) -> dict:
    logits = ctx.fake_features()["logits"]
    name = ctx.extractor().name
    mean, std = inception_score(logits, seed=ctx.seed)
    return {f"is_{name}": mean, f"is_{name}_std": std, "n_fake": len(logits),
            "splits": SPLITS, "features": name}
