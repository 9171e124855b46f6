"""Linear-probe accuracy of a model's codes: how linearly readable the labels are from encode(x).

The standard read-out of representation learning (BiGAN, Donahue et al. 2016, arXiv:1605.09782,
section 4.2; adversarial autoencoders, Makhzani et al. 2015, arXiv:1511.05644, section 5):

- codes: `model.encode(x)` of every example of the train split and of the test split; a model
  whose `encode` returns a tuple (the VAE's (mean, log-variance)) is read by its first element,
  the posterior mean; codes of any shape are flattened to (N, F);
- probe: multinomial logistic regression (scikit-learn, L2 penalty C=1, lbfgs) on the train
  codes, each feature standardised with the train split's mean and std;
- score: accuracy on the test split's codes (and, for context, on the train split's).

The chance level (the most frequent test label's share) is reported beside it. Any model with an
`encode` method and any labelled dataset qualify; `probe_accuracy(codes_train, y_train,
codes_test, y_test)` is the function other code (e.g. a BiGAN page) can call on its own codes.
"""

from __future__ import annotations

import numpy as np
import torch

from genzoo.errors import GenzooError
from genzoo.metrics import DEFAULT_N_REAL, EvalContext, register_metric


@torch.no_grad()
def encode_codes(model, data, batch_size: int = 250, limit: int | None = None) -> tuple:
    """(codes (N, F) float64 numpy, labels (N,) int numpy) of a split, in order."""
    if not callable(getattr(model, "encode", None)):
        raise GenzooError(f"model {getattr(model, 'name', '?')!r} has no encode(x); the linear "
                          "probe needs a model that maps data to codes (vae, aae, bigan, ...)")
    if data.y is None:
        raise GenzooError(f"dataset {data.name!r} has no labels; the linear probe needs a "
                          "labelled dataset (e.g. mnist5k)")
    codes, labels, count = [], [], 0
    for batch in data.ordered(batch_size):
        x = batch["x"].to(model.device)
        out = model.encode(x)
        z = out[0] if isinstance(out, (tuple, list)) else out  # the VAE: the posterior mean
        codes.append(z.flatten(1).double().cpu())  # (B, F)
        labels.append(batch["y"].cpu())
        count += len(x)
        if limit is not None and count >= limit:
            break
    z, y = torch.cat(codes)[:limit], torch.cat(labels)[:limit]
    return z.numpy(), y.numpy()


def probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                   y_test: np.ndarray, c: float = 1.0) -> dict:
    """Fit logistic regression on standardised train codes; accuracies on train and test."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y_train)) < 2:
        raise GenzooError("the linear probe needs at least two classes in the train split")
    mean, std = z_train.mean(0), z_train.std(0)
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature stays 0, not NaN

    def scale(z):
        return (z - mean) / std

    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(scale(z_train), y_train)
    counts = np.bincount(y_test)
    return {"probe_accuracy": float((clf.predict(scale(z_test)) == y_test).mean()),
            "probe_train_accuracy": float((clf.predict(scale(z_train)) == y_train).mean()),
            "chance": float(counts.max() / counts.sum())}


@register_metric("linear-probe", "test accuracy of logistic regression on encode(x) codes "
                 "fitted on the train split (representation quality)")
def linear_probe(ctx: EvalContext) -> dict:
    from genzoo.data import load_dataset

    if ctx.model is None:
        raise GenzooError("linear-probe reads a model's codes; it needs a run, not --samples")
    limit = int(ctx.options.get("n_real") or DEFAULT_N_REAL)
    train = load_dataset(ctx.data_cfg, "train")
    test = load_dataset(ctx.data_cfg, "test")
    z_tr, y_tr = encode_codes(ctx.model, train, ctx.batch_size, limit)
    z_te, y_te = encode_codes(ctx.model, test, ctx.batch_size, limit)
    out = probe_accuracy(z_tr, y_tr, z_te, y_te)
    return {**out, "code_dim": int(z_tr.shape[1]), "n_train": len(y_tr), "n_test": len(y_te),
            "protocol": "logistic regression (C=1) on standardised encode(x), train -> test"}
