"""Disentanglement metrics (FactorVAE score, MIG) on hand-built codes of known quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from genzoo.metrics.disentangle import discretise, factorvae_score, mig, mutual_information

GRID = (3, 3, 8, 8, 8)  # 4,608 combinations: MIG enumerates them all


def perfect(f: torch.Tensor) -> torch.Tensor:
    """One code dimension per factor, holding its value (scaled, shifted, in shuffled order)."""
    z = f.double() * torch.tensor([2.0, -1.0, 0.5, 3.0, 1.0]) + 7
    return z[:, [3, 0, 4, 1, 2]]


def noise(f: torch.Tensor) -> torch.Tensor:
    """A code that ignores the factors."""
    return torch.randn(len(f), 6, dtype=torch.float64)


def test_factorvae_score_is_one_for_a_perfect_code_and_chance_for_noise():
    torch.manual_seed(0)
    good = factorvae_score(perfect, GRID, votes=200, n_variance=2000)
    assert good["factorvae_score"] == 1.0 and good["factorvae_train_accuracy"] == 1.0
    bad = factorvae_score(noise, GRID, votes=400, n_variance=2000)
    assert bad["chance"] == 0.2
    assert abs(bad["factorvae_score"] - 0.2) < 0.07


def test_factorvae_score_ignores_factors_that_never_vary_and_dead_dims():
    """A one-value factor is never voted on; a constant code dimension is never the argmin."""
    def with_dead_dim(f):
        return torch.cat([perfect(f), torch.zeros(len(f), 1, dtype=torch.float64)], 1)

    out = factorvae_score(with_dead_dim, (3, 1, 8, 8, 8), votes=100, n_variance=1000)
    # the dead dim and the dim of the one-value factor are both constant: 4 of 6 are active
    assert out["chance"] == 0.25 and out["active_dims"] == 4 and out["code_dim"] == 6
    assert out["factorvae_score"] == 1.0


def test_mig_is_one_for_a_perfect_code_and_about_zero_for_noise():
    torch.manual_seed(0)
    good = mig(perfect, GRID)
    assert good["enumerated"] and good["n"] == 3 * 3 * 8 * 8 * 8
    assert good["mig"] == pytest.approx(1.0, abs=1e-9)
    bad = mig(noise, GRID)
    assert 0 <= bad["mig"] < 0.03


def test_mig_of_a_code_mixing_two_factors_is_lower():
    """z0 = x + y, z1 = x - y: both dims share information about x and y, so their gap drops."""
    def mixed(f):
        z = perfect(f)
        x, y = f[:, 3].double(), f[:, 4].double()
        return torch.cat([z[:, [1, 2, 3]], (x + y)[:, None], (x - y)[:, None]], 1)

    assert mig(mixed, GRID)["mig"] < 0.8


def test_mutual_information_matches_sklearn():
    g = np.random.default_rng(1)
    a = g.integers(0, 5, 3000)
    b = (a + g.integers(0, 3, 3000)) % 7
    ours = mutual_information(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(mutual_info_score(a, b), rel=1e-9)


def test_discretise_uses_equal_width_bins_over_each_range():
    z = torch.tensor([[0.0, 5.0], [1.0, 5.0], [0.5, 5.0], [0.99, 5.0]], dtype=torch.float64)
    b = discretise(z, bins=4)
    assert b[:, 0].tolist() == [0, 3, 2, 3]  # the maximum falls into the last bin
    assert b[:, 1].tolist() == [0, 0, 0, 0]  # a constant column: one bin


def test_eval_of_a_factorvae_run_and_a_clear_error_without_factors(tmp_path, capsys):
    from conftest import TINY, run_error, run_ok

    sets = [f"--set={k}={v}" for k, v in TINY["factorvae"].items() if k != "data.name"]
    run = tmp_path / "fv"
    run_ok(capsys, "train", "factorvae", "--data", "shapes2d", "--out", run, "--steps", 2,
           "--set", "progress=none", "--set", "device=cpu", *sets)
    out = run_ok(capsys, "eval", run, "--metrics", "factorvae-score,mig,recon", "--n", 40)
    assert "factorvae_score" in out and "mig_orientation" in out and "recon_bce" in out
    import json

    m = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]
    assert m["factorvae-score"]["votes"] == 40 and m["factorvae-score"]["chance"] == 0.2
    assert 0 <= m["mig"]["mig"] <= 1 and m["recon"]["n"] == 40

    vae = tmp_path / "vae"
    vsets = [f"--set={k}={v}" for k, v in TINY["vae"].items() if k != "data.name"]
    run_ok(capsys, "train", "vae", "--data", "digits", "--out", vae, "--steps", 1,
           "--set", "progress=none", "--set", "device=cpu", "--set", "binarize=none", *vsets)
    assert "ground-truth factors" in run_error(capsys, "eval", vae, "--metrics", "mig")
