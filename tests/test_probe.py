"""The linear-probe metric: logistic regression on encode(x), train split -> test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genzoo.data import DataConfig, load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, run_metrics
from genzoo.metrics.probe import probe_accuracy


class PixelCodes(nn.Module):
    """A stand-in model whose code is a fixed linear map of the pixels (rank `k`)."""

    name = "stub"

    def __init__(self, k: int):
        super().__init__()
        self.proj = nn.Linear(64, k, bias=False)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    @property
    def device(self):
        return torch.device("cpu")

    def encode(self, x):
        z = self.proj(x.flatten(1))
        return z, torch.zeros_like(z)  # like the VAE: (mean, log-variance); the mean is read


def _ctx(model):
    from types import SimpleNamespace

    cfg = SimpleNamespace(data=DataConfig(name="digits"))
    return EvalContext(model, cfg, torch.device("cpu"))


def test_separable_codes_score_one_and_random_codes_chance():
    g = np.random.default_rng(0)
    y_tr, y_te = g.integers(0, 4, 400), g.integers(0, 4, 200)
    onehot = np.eye(4)
    perfect = probe_accuracy(onehot[y_tr] + 0.01 * g.normal(size=(400, 4)), y_tr,
                             onehot[y_te] + 0.01 * g.normal(size=(200, 4)), y_te)
    assert perfect["probe_accuracy"] == 1.0
    rnd = probe_accuracy(g.normal(size=(400, 4)), y_tr, g.normal(size=(200, 4)), y_te)
    assert abs(rnd["probe_accuracy"] - 0.25) < 0.1
    assert rnd["chance"] == pytest.approx(np.bincount(y_te).max() / 200)


def test_probe_reads_the_codes_of_the_model_on_the_dataset():
    """Digits pixels through a rank-64 map are ~95% linearly separable; a rank-1 code is not."""
    rich = run_metrics(_ctx(PixelCodes(64)), ["linear-probe"])["linear-probe"]
    poor = run_metrics(_ctx(PixelCodes(1)), ["linear-probe"])["linear-probe"]
    n_test = len(load_dataset(DataConfig(name="digits"), "test"))
    assert rich["n_test"] == n_test and rich["code_dim"] == 64
    assert rich["probe_accuracy"] > 0.9
    assert poor["probe_accuracy"] < 0.5


def test_probe_needs_an_encoder():
    class NoEncoder(nn.Module):
        name = "gan"

    with pytest.raises(GenzooError, match="encode"):
        run_metrics(_ctx(NoEncoder()), ["linear-probe"])
