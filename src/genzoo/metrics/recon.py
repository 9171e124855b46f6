"""Reconstruction error of an autoencoding model on the test split: x -> code -> decode(code).

The code is `encode(x)` (its first element for the VAE's (mean, log-variance): the posterior
mean, so the number is deterministic); decode(code) is the decoder's mean image in [-1, 1]. Two
numbers, both averaged over the test split:

- recon_bce: sum over pixels of the binary cross-entropy between the data, read as pixel-on
  probabilities (x + 1) / 2, and the reconstruction (x^ + 1) / 2 clamped to [1e-6, 1 - 1e-6]; in
  nats per image: the reconstruction term of a Bernoulli VAE, as in the FactorVAE paper's plots
  of reconstruction error (Kim & Mnih 2018, arXiv:1802.05983, figure 4);
- recon_mse: mean squared error per pixel in data units ([-1, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric


@register_metric("recon", "test-split reconstruction error of encode -> decode (BCE nats per "
                 "image, MSE per pixel)")
def recon(ctx: EvalContext) -> dict:
    from genzoo.data import load_dataset

    model = ctx.model
    if model is None or not callable(getattr(model, "encode", None)) \
            or not callable(getattr(model, "decode", None)):
        raise GenzooError("recon needs a run of a model with encode and decode (vae, aae, "
                          "factorvae, ...)")
    data = load_dataset(ctx.data_cfg, "test")
    n = len(data) if ctx.n is None else min(ctx.n, len(data))
    bce, mse, count = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in data.ordered(ctx.batch_size):
            x = batch["x"][: n - count].to(model.device)
            if len(x) == 0:
                break
            out = model.encode(x)
            z = out[0] if isinstance(out, (tuple, list)) else out
            xr = model.decode(z)  # (B, *shape) in [-1, 1]
            p = ((xr + 1) / 2).clamp(1e-6, 1 - 1e-6)
            t = ((x + 1) / 2).clamp(0, 1)
            bce += float(F.binary_cross_entropy(p, t, reduction="none").flatten(1).sum(1)
                         .double().sum())
            mse += float((xr - x).pow(2).flatten(1).mean(1).double().sum())
            count += len(x)
            if count >= n:
                break
    return {"recon_bce": bce / count, "recon_mse": mse / count, "n": count, "split": "test"}
