"""Test-set negative log-likelihood in nats per example and bits per dimension.

bits/dim = nats / (D ln 2), D the number of data dimensions. For models whose `log_prob` is an
estimate (the VAE's importance sampling), the number of importance samples k is reported; the
estimate is a stochastic lower bound on log p(x), so the NLL reported is an upper bound that
tightens as k grows.
"""

from __future__ import annotations

import math

import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric


@register_metric("nll", "test-set negative log-likelihood (nats per example, bits/dim)")
def nll(ctx: EvalContext) -> dict:
    model = ctx.model
    if model is None:
        raise GenzooError("nll scores a model's likelihood of test data; it needs a run, "
                          "not --samples")
    if not hasattr(model, "log_prob"):
        raise GenzooError(f"model {model.name!r} has no likelihood; nll needs a model with "
                          "log_prob (vae, ...)")
    data = load_dataset(ctx.data_cfg, "test")
    n = len(data) if ctx.n is None else min(ctx.n, len(data))
    k = int(ctx.options.get("k", 500))
    if k < 1:
        raise GenzooError(f"--k {k} must be at least 1 importance sample")
    if ctx.batch_size < 1:
        raise GenzooError(f"--batch-size {ctx.batch_size} must be at least 1")
    g = torch.Generator().manual_seed(ctx.seed)
    # smaller batches for large k keep the (k, B, ...) decoder batch in memory
    bs = max(1, min(ctx.batch_size, 20000 // max(k, 1)))
    total, count = 0.0, 0
    for batch in data.ordered(bs):
        x = batch["x"][: n - count].to(ctx.device)
        if len(x) == 0:
            break
        with torch.no_grad():
            lp = (model.log_prob(x, k=k, generator=g) if "k" in _params(model)
                  else model.log_prob(x))
        total += float(lp.double().sum())
        count += len(x)
        if count >= n:
            break
    nats = -total / count
    D = data.spec.dim
    binarized = ctx.data_cfg.binarize != "none"
    protocol = ("test split binarised once with a fixed seed (Bernoulli of pixel intensity)"
                if binarized else "data as stored (no binarisation or dequantisation)")
    out = {"nll_nats": nats, "nll_bits_per_dim": nats / (D * math.log(2)), "n": count,
           "dims": D, "protocol": protocol, "split": "test"}
    if "k" in _params(model):
        out["importance_samples"] = k
    return out


def _params(model) -> tuple[str, ...]:
    import inspect

    return tuple(inspect.signature(model.log_prob).parameters)
