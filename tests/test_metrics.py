"""Feature metrics (FID, KID, IS, precision/recall/density/coverage, nn check), their feature
extractors and the `eval` / `train classifier` / `eval_every` plumbing.

Independent references: torchmetrics (FID, KID, IS; fed our feature rows through an identity
"network"), scipy's sqrtm, numpy double loops and sklearn's NearestNeighbors. Every test keeps its
feature cache in a temporary $GENZOO_CACHE, never in ~/.cache.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import cli, run_error, run_ok, tiny_config
from PIL import Image
from sklearn.neighbors import NearestNeighbors
from torch import nn

from genzoo.data import DataConfig, load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import METRICS, EvalContext, run_metrics
from genzoo.metrics.features import (
    INCEPTION_URL_FILE,
    ClassifierExtractor,
    InceptionExtractor,
    default_classifier,
    extract,
    real_features,
)
from genzoo.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from genzoo.metrics.inception_score import inception_score
from genzoo.metrics.kid import kid_from_features, polynomial_mmd2
from genzoo.metrics.prdc import prdc
from genzoo.train import train

CLF_STEPS = 60
N_EVAL = 200  # generated samples for `genzoo eval RUN` (default 5000 is too slow for a test)


class Identity(nn.Module):
    """A torchmetrics "feature network" that returns its input rows as the features."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                               dtype=torch.float64)


# ----------------------------------------------------------------------------- shared state

@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory):
    """One feature cache (and classifier index) for this module, away from ~/.cache."""
    path = tmp_path_factory.mktemp("genzoo-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENZOO_CACHE", str(path))
        mp.delenv("GENZOO_INCEPTION_WEIGHTS", raising=False)
        yield path


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, module_cache):
    """`genzoo train classifier --data digits` through the CLI: (directory, its stdout)."""
    out = tmp_path_factory.mktemp("clf") / "digits"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli("train", "classifier", "--data", "digits", "--out", out,
                   "--steps", CLF_STEPS) == 0
    return out, buf.getvalue()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, classifier) -> Path:
    """A tiny GAN trained a few steps on digits (8x8, the classifier's size)."""
    run = tmp_path_factory.mktemp("gan") / "run"
    train(tiny_config("gan", steps=4), run)
    return run


@pytest.fixture(scope="module")
def digits_test() -> torch.Tensor:
    d = load_dataset(DataConfig(name="digits"), "test")
    return d.to_float(d.x)  # (300, 1, 8, 8) in [-1, 1]


# ----------------------------------------------------------------------------- FID

def test_fid_matches_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = randn(300, 12, seed=1), randn(250, 12, seed=2, scale=1.3) + 0.4
    tm = FrechetInceptionDistance(feature=Identity(12))
    tm.update(real, real=True)
    tm.update(fake, real=False)
    ref = float(tm.compute())
    ours = fid_from_features(real, fake)
    assert ours == pytest.approx(ref, rel=1e-3)
    assert ours > 1.0  # a real difference, not two zeros agreeing
    assert fid_from_features(fake, real) == pytest.approx(ours, rel=1e-9)  # symmetric


def test_fid_matches_scipy_sqrtm_formula_on_well_conditioned_data():
    real, fake = randn(400, 8, seed=3), randn(400, 8, seed=4) * torch.linspace(0.5, 2, 8)
    mu1, s1 = real.mean(0).numpy(), np.cov(real.numpy(), rowvar=False)
    mu2, s2 = fake.mean(0).numpy(), np.cov(fake.numpy(), rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert fid_from_features(real, fake) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("rank", [10, 4])  # full rank and singular covariances
def test_fid_with_equal_covariances_is_the_squared_mean_distance(rank):
    a = randn(10, rank, seed=5)
    s = a @ a.T  # (10, 10) PSD of rank `rank`
    mu1, mu2 = randn(10, seed=6), randn(10, seed=7)
    expected = float(((mu1 - mu2) ** 2).sum())
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert frechet_distance(mu1, s, mu1, s) == pytest.approx(0.0, abs=1e-9)


def test_gaussian_stats_are_the_unbiased_mean_and_covariance():
    x = randn(30, 5, seed=8)
    mu, s = gaussian_stats(x)
    assert np.allclose(mu.numpy(), x.numpy().mean(0))
    assert np.allclose(s.numpy(), np.cov(x.numpy(), rowvar=False), atol=1e-12)
    with pytest.raises(ValueError):
        gaussian_stats(x[:1])


@pytest.mark.parametrize("n,d,dead", [(300, 16, 0), (10, 64, 3), (50, 512, 20), (3, 8, 0)],
                         ids=["well-conditioned", "n<d", "n<<d-dead", "n=3"])
def test_fid_of_a_set_with_itself_is_zero_even_near_singular(n, d, dead):
    x = randn(n, d, seed=9)
    x[:, :dead] = 0.7  # dead feature columns: zero variance
    scale = float(torch.trace(gaussian_stats(x)[1]))
    f = fid_from_features(x, x)
    assert math.isfinite(f)
    assert f >= -1e-9, f"FID of a set with itself is negative: {f}"
    assert abs(f) < 1e-6 * scale


def test_near_singular_fid_matches_an_exact_low_rank_formula():
    # with S = X^T X (X centred / sqrt(n-1)), tr sqrt(S1 S2) is the nuclear norm of X2 X1^T:
    # an accurate reference from small SVDs when there are fewer samples than features
    x, y = randn(12, 200, seed=10), randn(15, 200, seed=11, scale=1.5) + 0.2
    x[:, :5] = y[:, :5] = 0.3

    def centred(a):
        return (a - a.mean(0)) / math.sqrt(len(a) - 1)

    xc, yc = centred(x), centred(y)
    mu = x.mean(0) - y.mean(0)
    ref = float(mu @ mu + (xc ** 2).sum() + (yc ** 2).sum()
                - 2 * torch.linalg.svdvals(yc @ xc.T).sum())
    assert fid_from_features(x, y) == pytest.approx(ref, rel=1e-7)


# ----------------------------------------------------------------------------- KID

def test_kid_matches_torchmetrics_with_one_subset_of_all_samples():
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = randn(120, 10, seed=12), randn(120, 10, seed=13) + 0.3
    tm = KernelInceptionDistance(feature=Identity(10), subsets=1, subset_size=120)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    ref = float(tm.compute()[0])
    mean, std, m = kid_from_features(real, fake, n_subsets=1, subset_size=120)
    assert m == 120 and std == 0.0
    assert mean == pytest.approx(ref, rel=1e-3)
    assert mean > 0.05


def test_polynomial_mmd2_is_the_unbiased_estimate_of_a_double_loop():
    x, y = randn(6, 3, seed=14).numpy(), randn(7, 3, seed=15).numpy() + 0.5
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1) ** 3

    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    expected = sxx + syy - 2 * sxy
    assert polynomial_mmd2(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        expected, rel=1e-10)


def test_kid_is_zero_in_expectation_for_one_distribution_and_positive_when_shifted():
    # unbiased: over many small independent pairs from one distribution the mean is ~0 (the
    # biased V-statistic, diagonal included, would sit clearly above 0 at m = 10)
    vals = torch.tensor([polynomial_mmd2(randn(10, 4, seed=2 * i), randn(10, 4, seed=2 * i + 1))
                         for i in range(200)])
    se = float(vals.std()) / math.sqrt(len(vals))
    assert abs(float(vals.mean())) < 4 * se
    x, y = randn(600, 16, seed=16), randn(600, 16, seed=17)
    same, _, _ = kid_from_features(x, y, n_subsets=20, subset_size=200)
    shifted, _, _ = kid_from_features(x, y + 0.5, n_subsets=20, subset_size=200)
    assert shifted > 0.3
    assert abs(same) < 0.05 * shifted


def test_kid_is_deterministic_given_the_seed():
    x, y = randn(300, 8, seed=18), randn(300, 8, seed=19) + 0.2
    a = kid_from_features(x, y, n_subsets=10, subset_size=50, seed=3)
    assert a == kid_from_features(x, y, n_subsets=10, subset_size=50, seed=3)
    assert a != kid_from_features(x, y, n_subsets=10, subset_size=50, seed=4)
    assert a[1] > 0 and a[2] == 50


# ----------------------------------------------------------------------------- IS

def test_inception_score_matches_torchmetrics_with_one_split():
    from torchmetrics.image.inception import InceptionScore

    logits = randn(64, 10, seed=20, scale=3.0)
    tm = InceptionScore(feature=Identity(10), splits=1)
    tm.update(logits)
    ref = float(tm.compute()[0])
    ours, std = inception_score(logits, splits=1)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert std == 0.0 and 1.0 < ours < 10.0


@pytest.mark.parametrize("k,splits", [(10, 10), (4, 1), (5, 10)])
def test_inception_score_is_k_for_k_equally_used_confident_classes(k, splits):
    labels = torch.arange(100) % k  # with 10 splits of 10, each split uses the k classes equally
    logits = torch.full((100, 10), -50.0, dtype=torch.float64)
    logits[torch.arange(100), labels] = 50.0
    mean, std = inception_score(logits, splits=splits, seed=None)  # in order: balanced splits
    assert mean == pytest.approx(k, abs=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_shuffles_before_splitting():
    # sorted by class (a test split as stored): ordered splits each hold one class and score 1;
    # the shuffled splits see every class and score near K
    labels = torch.arange(1000) // 100  # 10 classes, sorted
    logits = torch.full((1000, 10), -50.0, dtype=torch.float64)
    logits[torch.arange(1000), labels] = 50.0
    assert inception_score(logits, seed=None)[0] == pytest.approx(1.0, abs=1e-9)
    mean, _ = inception_score(logits, seed=0)
    assert 9.0 < mean <= 10.0
    assert inception_score(logits, seed=0) == inception_score(logits, seed=0)


def test_inception_score_is_one_when_every_sample_has_the_same_distribution():
    logits = randn(1, 10, seed=21, scale=4.0).repeat(50, 1)
    mean, std = inception_score(logits)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- PR / DC

def brute_prdc(real: np.ndarray, fake: np.ndarray, k_pr=3, k_dc=5) -> dict:
    """Kynkäänniemi et al. and Naeem et al., written out with sklearn's k-NN and loops."""

    def radii(x, k):  # distance to the k-th nearest other point (the query itself is first)
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
        return dist[:, k]

    def inside(p, centres, r):
        return np.array([[np.linalg.norm(p[i] - centres[j]) <= r[j]
                          for j in range(len(centres))] for i in range(len(p))])

    r_pr, f_pr, r_dc = radii(real, k_pr), radii(fake, k_pr), radii(real, k_dc)
    in_real = inside(fake, real, r_dc)  # (M, N)
    return {"precision": inside(fake, real, r_pr).any(1).mean(),
            "recall": inside(real, fake, f_pr).any(1).mean(),
            "density": in_real.sum() / (k_dc * len(fake)),
            "coverage": in_real.any(0).mean()}


@pytest.mark.parametrize("seed", [0, 1])
def test_prdc_matches_a_brute_force_implementation(seed):
    real, fake = randn(50, 4, seed=30 + seed), randn(40, 4, seed=40 + seed, scale=1.3) + 0.4
    ours = prdc(real, fake)
    ref = brute_prdc(real.numpy(), fake.numpy())
    for key, v in ref.items():
        assert ours[key] == pytest.approx(float(v), abs=1e-12), key
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # a discriminating case


def test_prdc_identical_sets_score_one_and_far_apart_sets_zero():
    x = randn(60, 5, seed=50)
    same = prdc(x, x.clone())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    # each real ball holds its own point and its k nearest: density (k + 1) / k, k = 5, up to
    # points exactly on a ball's edge (torch.cdist's matmul path is not exactly symmetric)
    assert 1.15 < same["density"] <= 6 / 5 + 1e-12
    far = prdc(x, x + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_pr_metric_compares_sets_of_equal_size():
    ctx = SimpleNamespace(real_features=lambda: {"features": randn(90, 4, seed=51)},
                          fake_features=lambda: {"features": randn(30, 4, seed=52)},
                          extractor=lambda: SimpleNamespace(name="toy"), seed=0)
    out = METRICS["pr"].fn(ctx)
    assert out["n_real"] == out["n_fake"] == 30
    assert {"precision_toy", "recall_toy", "density_toy", "coverage_toy"} <= out.keys()


# ----------------------------------------------------------------------------- domain classifier

def test_train_classifier_writes_reports_and_registers_itself(classifier, module_cache):
    out, stdout = classifier
    meta = json.loads((out / "classifier.json").read_text())
    assert (out / "classifier.safetensors").is_file()
    assert meta["name"] == "digits-cnn" and meta["steps"] == CLF_STEPS
    assert meta["shape"] == [1, 8, 8] and meta["num_classes"] == 10
    # 60 steps reach ~97% on digits (seeds 0-2); chance is 10%
    assert meta["test_accuracy"] > 0.8
    assert f"{100 * meta['test_accuracy']:.2f}%" in stdout
    assert default_classifier("digits") == out.resolve()
    index = json.loads((module_cache / "classifiers.json").read_text())
    assert index == {"digits": str(out.resolve())}


def test_domain_features_separate_real_digits_from_an_untrained_gan(classifier, gan_run,
                                                                    digits_test):
    from genzoo.train.rundir import load_run

    ext = ClassifierExtractor(classifier[0], "cpu")
    cfg = DataConfig(name="digits")
    train_x = load_dataset(cfg, "train")
    train_f = extract(ext, train_x.to_float(train_x.x), cfg)
    test_f = extract(ext, digits_test, cfg)
    model, _, _ = load_run(gan_run, device="cpu")
    with torch.no_grad():
        fake = model.sample(300, generator=torch.Generator().manual_seed(0))
    fake_f = extract(ext, fake, cfg)
    fid_real = fid_from_features(train_f["features"], test_f["features"])
    fid_fake = fid_from_features(train_f["features"], fake_f["features"])
    assert fid_fake > 5 * fid_real
    is_real, _ = inception_score(test_f["logits"])
    is_fake, _ = inception_score(fake_f["logits"])
    # the 60-step classifier is ~75% confident on test digits: IS ~3.5 of at most 10
    assert is_real > 2.5 and is_fake < is_real, (is_real, is_fake)


def test_extract_does_not_depend_on_batch_size(classifier, digits_test):
    ext = ClassifierExtractor(classifier[0], "cpu")
    cfg = DataConfig(name="digits")
    a = extract(ext, digits_test, cfg, batch_size=7)
    b = extract(ext, digits_test, cfg, batch_size=250)
    assert a["features"].shape == (300, 128) and a["logits"].shape == (300, 10)
    assert a["features"].dtype == torch.float64
    assert torch.allclose(a["features"], b["features"], rtol=1e-5, atol=1e-6)
    assert torch.allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-5)
    ref = b["features"][:150]
    assert fid_from_features(ref, a["features"][150:]) == pytest.approx(
        fid_from_features(ref, b["features"][150:]), rel=1e-5)
    with pytest.raises(GenzooError, match="NaN"):
        extract(ext, torch.full((2, 1, 8, 8), float("nan")), cfg)


def test_real_features_are_cached_on_disk_and_reloaded(classifier, tmp_path, monkeypatch):
    import genzoo.metrics.features as features

    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))

    def ctx():
        return EvalContext(None, None, torch.device("cpu"), data_cfg=DataConfig(name="digits"),
                           options={"features": str(classifier[0])})

    first = real_features(ctx(), "test")
    files = list((tmp_path / "stats").glob("*.safetensors"))
    assert len(files) == 1 and files[0].name.startswith("digits-test-digits-cnn-")
    assert first["features"].shape == (300, 128)

    def no_extract(*a, **k):
        raise AssertionError("features recomputed despite the cache")

    original = features.extract
    monkeypatch.setattr(features, "extract", no_extract)
    second = real_features(ctx(), "test")
    assert torch.equal(first["features"], second["features"])
    assert torch.equal(first["logits"], second["logits"])
    monkeypatch.setattr(features, "extract", original)
    files[0].write_bytes(b"damaged")  # a damaged cache file is recomputed, not trusted
    third = real_features(ctx(), "test")
    assert torch.allclose(first["features"], third["features"])


def test_eval_run_writes_named_metrics_and_nn_panels(capsys, gan_run, classifier):
    out = run_ok(capsys, "eval", gan_run, "--metrics", "fid,kid,is,pr,nn", "--n", N_EVAL)
    assert "fid_digits-cnn" in out
    doc = json.loads((gan_run / "eval" / "metrics.json").read_text())
    m = doc["metrics"]
    assert set(m) == {"fid", "kid", "is", "pr", "nn"}
    n_train = len(load_dataset(DataConfig(name="digits"), "train").x)
    assert m["fid"]["fid_digits-cnn"] > 0
    assert m["fid"]["n_fake"] == N_EVAL and m["fid"]["n_real"] == n_train
    assert m["fid"]["features"] == "digits-cnn"
    assert {"kid_digits-cnn", "kid_digits-cnn_std"} <= m["kid"].keys()
    assert m["kid"]["subset_size"] == N_EVAL
    assert 1.0 <= m["is"]["is_digits-cnn"] <= 10.0 and m["is"]["n_fake"] == N_EVAL
    assert m["pr"]["n_real"] == m["pr"]["n_fake"] == N_EVAL
    for key in ("precision", "recall", "density", "coverage"):
        assert f"{key}_digits-cnn" in m["pr"]
    assert m["nn"]["n_fake"] == N_EVAL and m["nn"]["nn_pixel_fake"] > 0
    for space in ("pixel", "features"):
        path = gan_run / "eval" / f"nn-{space}.png"
        with Image.open(path) as im:
            im.load()
            w, h = im.size
        assert h > w > 8  # 8 rows of a sample and its 5 neighbours
    # a second evaluation merges into the record
    run_ok(capsys, "eval", gan_run, "--metrics", "fid", "--n", 100)
    m2 = json.loads((gan_run / "eval" / "metrics.json").read_text())["metrics"]
    assert m2["fid"]["n_fake"] == 100 and m2["kid"] == m["kid"]


def test_eval_bad_input_fails_with_one_line_and_leaves_no_eval_dir(capsys, gan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(gan_run, run, ignore=shutil.ignore_patterns("eval"))
    empty = tmp_path / "empty"
    empty.mkdir()
    line = run_error(capsys, "eval", run, "--metrics", "fid", "--n", 20, "--features", empty)
    assert "holds no domain classifier" in line
    line = run_error(capsys, "eval", run, "--metrics", "fid,nope")
    assert "unknown metric 'nope'" in line and "fid" in line
    assert not (run / "eval").exists()
    line = run_error(capsys, "train", "classifier", "--data", "8gaussians",
                     "--out", tmp_path / "clf", "--steps", 2)
    assert "labelled image dataset" in line
    assert not (tmp_path / "clf").exists()


def test_a_metric_failing_late_leaves_no_pictures_of_earlier_ones(capsys, gan_run, tmp_path):
    # nn writes its panels, then modes fails (digits has no mode centres): eval/ stays as it was
    run = tmp_path / "run"
    shutil.copytree(gan_run, run, ignore=shutil.ignore_patterns("eval"))
    line = run_error(capsys, "eval", run, "--metrics", "nn,modes", "--n", 20)
    assert "mode centres" in line
    assert not (run / "eval").exists()
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text("{}")
    run_error(capsys, "eval", run, "--metrics", "nn,modes", "--n", 20)
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["metrics.json"]


# ----------------------------------------------------------------------------- eval --samples

@pytest.fixture(scope="module")
def samples_u8(digits_test) -> np.ndarray:
    """Digits test images quantised to uint8, (300, 1, 8, 8): exact both as uint8 and floats."""
    return ((digits_test.numpy() + 1) * 127.5).round().astype(np.uint8)


def eval_samples_fid(capsys, path, out) -> float:
    text = run_ok(capsys, "eval", "--samples", path, "--data", "digits", "--metrics", "fid",
                  "--out", out)
    assert f"wrote {out / 'metrics.json'}" in text
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["data"] == "digits" and doc["samples"] == str(path)
    return doc["metrics"]["fid"]["fid_digits-cnn"]


def test_eval_samples_npy_float_uint8_and_png_folder_agree(capsys, tmp_path, classifier,
                                                           samples_u8):
    floats = samples_u8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    np.save(tmp_path / "f.npy", floats)
    np.save(tmp_path / "u.npy", samples_u8)
    np.save(tmp_path / "hwc.npy", samples_u8.transpose(0, 2, 3, 1))  # (N, H, W, C)
    folder = tmp_path / "png"
    folder.mkdir()
    for i, a in enumerate(samples_u8):
        Image.fromarray(a[0]).save(folder / f"{i:04d}.png")
    ref = eval_samples_fid(capsys, tmp_path / "f.npy", tmp_path / "out")
    assert ref > 0
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["metrics"]["fid"]["n_fake"] == len(samples_u8)
    for i, path in enumerate((tmp_path / "u.npy", tmp_path / "hwc.npy", folder)):
        assert eval_samples_fid(capsys, path, tmp_path / f"out{i}") == pytest.approx(
            ref, rel=1e-6), path
    # real test digits are far closer to the training set than noise is
    noise = np.random.default_rng(0).integers(0, 256, samples_u8.shape, dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)
    assert eval_samples_fid(capsys, tmp_path / "noise.npy", tmp_path / "out-noise") > 5 * ref


def test_eval_samples_bad_input_fails_with_one_line(capsys, tmp_path, classifier, gan_run,
                                                   samples_u8):
    big = np.zeros((10, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "big.npy", big)
    line = run_error(capsys, "eval", "--samples", tmp_path / "big.npy", "--data", "digits",
                     "--metrics", "fid")
    assert "16x16" in line and "8x8" in line
    (tmp_path / "x.txt").write_text("1 2 3")
    line = run_error(capsys, "eval", "--samples", tmp_path / "x.txt", "--data", "digits",
                     "--metrics", "fid")
    assert ".npy" in line
    nan = samples_u8[:10].astype(np.float32) / 255
    nan[3, 0, 2, 2] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    line = run_error(capsys, "eval", "--samples", tmp_path / "nan.npy", "--data", "digits",
                     "--metrics", "fid")
    assert "NaN" in line
    np.save(tmp_path / "ok.npy", samples_u8[:20])
    line = run_error(capsys, "eval", gan_run, "--samples", tmp_path / "ok.npy", "--data",
                     "digits", "--metrics", "fid", "--out", tmp_path / "out")
    assert "not both" in line
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- eval_every

def test_eval_every_logs_fid_during_training(tmp_path, classifier):
    run = tmp_path / "run"
    train(tiny_config("gan", steps=10, eval_every=5, eval_metrics="fid", eval_n=50), run)
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/fid_digits-cnn" in r]
    assert [r["step"] for r in evals] == [5, 10]
    assert all(r["eval/fid_digits-cnn"] > 0 for r in evals)
    assert all(k == "step" or k.startswith("eval/") for r in evals for k in r)
    assert not any(k.startswith("eval/n_") for r in evals for k in r)


def test_eval_every_refuses_bad_settings_before_the_run_dir_exists(capsys, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(GenzooError, match="unknown metric 'nope'"):
        tiny_config("gan", steps=10, eval_every=5, eval_metrics="nope")
    line = run_error(capsys, "train", "gan", "--out", run, "--data", "digits", "--steps", 10,
                     "--set", "eval_every=5", "--set", "eval_metrics=nope")
    assert "nope" in line
    assert not run.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GenzooError, match="holds no domain classifier"):
        train(tiny_config("gan", steps=10, eval_every=5, eval_features=str(empty)), run)
    assert not run.exists()


# ----------------------------------------------------------------------------- Inception

@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised state dict of torch-fidelity's FID Inception, made offline."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    net_cls = tfi.FeatureExtractorInceptionV3
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(net_cls, "load_state_dict", lambda self, *a, **k: None)
        net = net_cls("inception-v3-compat", ["2048", "logits_unbiased"])
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_extractor_from_a_local_weights_file(inception_weights):
    import hashlib

    ext = InceptionExtractor(device="cpu", weights=str(inception_weights))
    assert ext.name == "inception-v3"
    assert ext.key.endswith(hashlib.sha256(inception_weights.read_bytes()).hexdigest()[:12])
    grey = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    rgb = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for x in (grey, rgb):
        out = ext(x)
        assert out["features"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
        assert torch.isfinite(out["features"]).all() and torch.isfinite(out["logits"]).all()
    # grey is replicated to RGB: the same features as the three-channel copy
    as_rgb = ext(grey.repeat(1, 3, 1, 1))
    assert torch.equal(ext(grey)["features"], as_rgb["features"])
    with pytest.raises(GenzooError, match="grey or RGB"):
        ext(torch.zeros(1, 2, 8, 8))


def test_inception_to_uint8_is_round_of_x_plus_one_times_127_5():
    x = torch.tensor([-1.0, 1.0, 0.0, -1.5, 2.0, -0.3, 0.25, 0.5]).view(1, 1, 1, -1)
    u = InceptionExtractor.to_uint8(x)
    assert u.dtype == torch.uint8 and u.shape == (1, 3, 1, 8)
    assert torch.equal(u[:, 0], u[:, 2])
    assert u[0, 0, 0].tolist()[:5] == [0, 255, 128, 0, 255]  # 127.5 rounds half to even: 128
    expected = [min(255, max(0, round((float(v) + 1) * 127.5))) for v in x.flatten()]
    assert u[0, 0, 0].tolist() == expected
    rgb = torch.zeros(1, 3, 2, 2)
    assert InceptionExtractor.to_uint8(rgb).shape == (1, 3, 2, 2)


class _Evil:
    """Unpickling this would create a marker file: a stand-in for arbitrary code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """torch.hub's directory set to an empty temporary one; the old setting restored after."""
    monkeypatch.setattr(torch.hub, "_hub_dir", getattr(torch.hub, "_hub_dir", None))
    torch.hub.set_dir(str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.mark.parametrize("source", ["arg", "env", "hub"])
def test_inception_refuses_a_malicious_pickle(tmp_path, monkeypatch, hub_dir, source):
    marker = tmp_path / "pwned"
    bad = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1), "x": _Evil(str(marker))}, bad)
    weights = None
    if source == "arg":
        weights = str(bad)
    elif source == "env":
        monkeypatch.setenv("GENZOO_INCEPTION_WEIGHTS", str(bad))
    else:
        (hub_dir / "checkpoints").mkdir(parents=True)
        shutil.copy(bad, hub_dir / "checkpoints" / INCEPTION_URL_FILE)
    with pytest.raises(GenzooError, match="not a plain state dict"):
        InceptionExtractor(device="cpu", weights=weights)
    assert not marker.exists()


def test_inception_offline_without_weights_says_how_to_provide_them(tmp_path, monkeypatch,
                                                                      hub_dir):
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tfi, "load_state_dict_from_url", offline)
    assert not hub_dir.exists()
    with pytest.raises(GenzooError) as e:
        InceptionExtractor(device="cpu")
    msg = str(e.value)
    assert "--inception-weights" in msg and INCEPTION_URL_FILE in msg
    assert "GENZOO_INCEPTION_WEIGHTS" in msg
    with pytest.raises(GenzooError, match="do not exist"):
        InceptionExtractor(device="cpu", weights=str(tmp_path / "missing.pth"))


def test_eval_samples_with_inception_features_through_the_cli(capsys, tmp_path,
                                                              inception_weights, samples_u8):
    # IS needs only the samples' logits: the flags' plumbing without 2048-D covariances
    np.save(tmp_path / "s.npy", samples_u8[:3])
    run_ok(capsys, "eval", "--samples", tmp_path / "s.npy", "--data", "digits", "--metrics",
           "is", "--features", "inception", "--inception-weights", inception_weights,
           "--out", tmp_path / "out")
    score = json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]["is"]
    assert score["features"] == "inception-v3" and score["n_fake"] == 3
    assert 1.0 - 1e-9 <= score["is_inception-v3"] <= 3.0 + 1e-9  # at most the number of samples


def test_run_metrics_rejects_unknown_names_before_any_work():
    ctx = EvalContext(None, None, torch.device("cpu"))
    with pytest.raises(GenzooError, match="unknown metric"):
        run_metrics(ctx, ["fid", "nope"])
    assert ctx.cache == {}
