"""The command line, end to end on tiny runs: train, sample, plot, eval, resume and bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import cli, run_error, run_ok  # noqa: F401
from PIL import Image

# a VAE small enough to train a few steps in well under a second on one CPU core
TINY_VAE = ["--data", "digits", "--batch-size", "32", "--set", "arch=mlp", "--set", "hidden=16",
            "--set", "latent_dim=2", "--set", "log_every=2", "--set", "sample_every=2",
            "--set", "checkpoint_every=2", "--set", "n_samples=16"]
TINY_DCGAN = ["--data", "digits", "--batch-size", "32", "--set", "image_size=8", "--set", "ngf=8",
              "--set", "ndf=8", "--set", "nz=8", "--set", "ema_decay=0.9", "--set", "n_samples=16"]
TINY_POINTS = ["--data", "8gaussians", "--batch-size", "64", "--set", "arch=mlp",
               "--set", "decoder=gaussian", "--set", "hidden=16", "--set", "n_samples=64"]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for directories)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def metric_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def trainer_state(ckpt: Path) -> dict:
    return torch.load(ckpt / "trainer.pt", map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- shared runs

@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vae") / "run"
    assert cli("train", "vae", "--out", run, "--steps", 4, *TINY_VAE) == 0
    return run


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("dcgan") / "run"
    assert cli("train", "dcgan", "--out", run, "--steps", 2, *TINY_DCGAN) == 0
    return run


@pytest.fixture(scope="module")
def points_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("points") / "run"
    assert cli("train", "vae", "--out", run, "--steps", 2, *TINY_POINTS) == 0
    return run


@pytest.fixture(scope="module")
def vae3_run(tmp_path_factory) -> Path:
    """An image VAE with a 3-D latent space (no manifold plot)."""
    run = tmp_path_factory.mktemp("vae3") / "run"
    assert cli("train", "vae", "--out", run, "--steps", 1, *TINY_VAE,
               "--set", "latent_dim=3") == 0
    return run


# ----------------------------------------------------------------------------- list


def test_list(capsys):
    out = run_ok(capsys, "list")
    sections: dict[str, list[str]] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            current = line.split()[0].rstrip(":")
            sections[current] = []
        else:
            sections[current].append(line.split()[0])
    assert {"vae", "gan"} <= set(sections["models"])
    assert {"vae", "dcgan"} <= set(sections["presets"])
    assert {"digits", "mnist5k", "8gaussians"} <= set(sections["datasets"])
    assert "nll" in sections["metrics"]
    assert sections["models"] == sorted(sections["models"])


# ----------------------------------------------------------------------------- VAE smoke


def test_train_vae_run_directory(vae_run, capsys):
    run = vae_run
    assert (run / "config.yaml").is_file()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["name"] == "vae" and cfg["model"]["arch"] == "mlp"
    assert cfg["model"]["hidden"] == [16] and cfg["model"]["latent_dim"] == 2
    assert cfg["data"]["name"] == "digits" and cfg["data"]["binarize"] == "dynamic"  # preset's
    assert cfg["train"]["steps"] == 4 and cfg["train"]["batch_size"] == 32
    assert cfg["spec"] == {"kind": "image", "shape": [1, 8, 8], "num_classes": 10}

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        assert {"loss", "recon", "kl", "nelbo", "lr"} <= set(r)
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        assert r["lr"] == 1e-3  # the preset's lr

    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step-000002.png", "step-000004.png"]
    with Image.open(run / "samples" / "step-000004.png") as im:
        im.load()

    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000002", "step-000004"]
    for step in (2, 4):
        d = ckpts / f"step-{step:06d}"
        assert sorted(p.name for p in d.iterdir()) == ["COMPLETE", "model.safetensors",
                                                       "trainer.pt"]
        state = trainer_state(d)
        assert state["step"] == step
        assert len(state["optimizers"]) == 1 and state["phases"] == ["main"]

    from genzoo.models import load_model

    model = load_model(ckpts / "step-000004" / "model.safetensors")
    assert model.name == "vae" and model.cfg.latent_dim == 2 and model.cfg.hidden == (16,)


def test_sample_npy(vae_run, tmp_path, capsys):
    out = tmp_path / "x.npy"
    text = run_ok(capsys, "sample", vae_run, "--n", 8, "--out", out)
    assert str(out) in text and "step-000004" in text
    x = np.load(out)
    assert x.shape == (8, 1, 8, 8) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1 and np.isfinite(x).all()
    # the same seed gives the same samples, another seed different ones
    run_ok(capsys, "sample", vae_run, "--n", 8, "--out", tmp_path / "y.npy")
    run_ok(capsys, "sample", vae_run, "--n", 8, "--seed", 1, "--out", tmp_path / "z.npy")
    assert np.array_equal(x, np.load(tmp_path / "y.npy"))
    assert not np.array_equal(x, np.load(tmp_path / "z.npy"))


def test_sample_png(vae_run, tmp_path, capsys):
    out = tmp_path / "x.png"
    run_ok(capsys, "sample", vae_run, "--n", 8, "--out", out)
    with Image.open(out) as im:
        im.load()
        assert im.format == "PNG"
        # 8 images of 8x8 in a 3x3 grid with torchvision's 2-pixel padding
        assert im.size == (3 * 10 + 2, 3 * 10 + 2)


def test_plot_manifold(vae_run, tmp_path, capsys):
    out = tmp_path / "m.png"
    run_ok(capsys, "plot", "manifold", vae_run, "--out", out, "--grid", 5)
    with Image.open(out) as im:
        im.load()
        assert im.size == (5 * 8, 5 * 8)  # no padding between cells


def test_plot_manifold_default_out(vae_run, capsys):
    run_ok(capsys, "plot", "manifold", vae_run, "--grid", 2)
    with Image.open(vae_run / "manifold.png") as im:
        assert im.size == (16, 16)


def test_eval_an_earlier_checkpoint(tmp_path, capsys):
    """--checkpoint STEP evaluates that kept checkpoint into RUN/eval/step-NNNNNN/ and leaves
    RUN/eval/metrics.json (the latest checkpoint's) alone; a step that was not kept, or with
    --samples, is one line."""
    run = tmp_path / "run"
    assert cli("train", "vae", "--out", run, "--steps", 4, "--set", "checkpoint_every=2",
               *TINY_VAE) == 0
    run_ok(capsys, "eval", run, "--metrics", "nll", "--k", 2)
    latest = (run / "eval" / "metrics.json").read_text()
    out = run_ok(capsys, "eval", run, "--metrics", "nll", "--k", 2, "--checkpoint", 2)
    path = run / "eval" / "step-000002" / "metrics.json"
    assert str(path) in out
    doc = json.loads(path.read_text())
    assert "step-000002" in doc["checkpoint"]
    assert "step-000002" in doc["metrics"]["nll"]["checkpoint"]
    assert (run / "eval" / "metrics.json").read_text() == latest
    assert "step-000004" in json.loads(latest)["checkpoint"]
    # the two checkpoints differ, so do their likelihoods
    assert doc["metrics"]["nll"]["nll_nats"] != json.loads(latest)["metrics"]["nll"]["nll_nats"]
    err = run_error(capsys, "eval", run, "--metrics", "nll", "--checkpoint", 3)
    assert "no complete checkpoint at step 3; it has: 2, 4" in err
    assert not (run / "eval" / "step-000003").exists()
    err = run_error(capsys, "eval", "--samples", path, "--data", "digits", "--checkpoint", 2)
    assert "--checkpoint applies to a run directory" in err


def test_eval_nll(vae_run, capsys):
    out = run_ok(capsys, "eval", vae_run, "--metrics", "nll", "--k", 5)
    path = vae_run / "eval" / "metrics.json"
    assert str(path) in out
    doc = json.loads(path.read_text())
    m = doc["metrics"]["nll"]
    assert m["n"] == 300 and m["dims"] == 64 and m["importance_samples"] == 5
    assert m["split"] == "test"
    assert m["nll_nats"] > 0 and math.isfinite(m["nll_nats"])
    assert m["nll_bits_per_dim"] == pytest.approx(m["nll_nats"] / (64 * math.log(2)), rel=1e-9)
    assert "step-000004" in doc["checkpoint"]


# ----------------------------------------------------------------------------- resume


def test_resume_continues(vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    run_ok(capsys, "train", "vae", "--out", run, "--steps", 2, *TINY_VAE)
    assert metric_steps(run) == [2]
    run_ok(capsys, "train", "vae", "--out", run, "--resume", "--steps", 4)
    assert metric_steps(run) == [2, 4]
    assert trainer_state(run / "checkpoints" / "step-000004")["step"] == 4
    # config.yaml records the extended length
    assert "steps: 4" in (run / "config.yaml").read_text()
    # stopped and resumed gives the same weights as the uninterrupted 4-step run (CPU)
    name = "checkpoints/step-000004/model.safetensors"
    from safetensors.torch import load_file

    a, b = load_file(str(vae_run / name)), load_file(str(run / name))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_crash_drops_later_metrics(tmp_path, capsys):
    run = tmp_path / "run"
    run_ok(capsys, "train", "vae", "--out", run, "--steps", 4, *TINY_VAE, "--set", "log_every=1")
    assert metric_steps(run) == [1, 2, 3, 4]
    # as if the run had died between step 2's checkpoint and step 4's
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-000004")
    run_ok(capsys, "train", "vae", "--out", run, "--resume")
    assert metric_steps(run) == [1, 2, 3, 4]
    assert trainer_state(run / "checkpoints" / "step-000004")["step"] == 4


def test_resume_refuses_changes(vae_run, capsys):
    before = snapshot(vae_run)
    for extra in (["--set", "lr=1e-4"], ["--data", "mnist5k"], ["--batch-size", "8"],
                  ["--seed", "3"]):
        line = run_error(capsys, "train", "vae", "--out", vae_run, "--resume", "--steps", 6,
                         *extra)
        assert "--resume" in line
    line = run_error(capsys, "train", "dcgan", "--out", vae_run, "--resume")
    assert "'vae'" in line and "'dcgan'" in line
    assert snapshot(vae_run) == before


# ----------------------------------------------------------------------------- DCGAN


def test_dcgan_ema(dcgan_run, tmp_path, capsys):
    ck = dcgan_run / "checkpoints"
    assert [p.name for p in ck.iterdir()] == ["step-000002"]
    assert sorted(p.name for p in (ck / "step-000002").iterdir()) == [
        "COMPLETE", "ema.safetensors", "model.safetensors", "trainer.pt"]
    state = trainer_state(ck / "step-000002")
    assert state["step"] == 2 and state["phases"] == ["D", "G"] and len(state["optimizers"]) == 2
    rows = [json.loads(line) for line in (dcgan_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2]
    assert {"D/loss", "G/loss", "D/d_real", "D/d_fake", "lr/D", "lr/G"} <= set(rows[0])

    def sample(name, *flags):
        text = run_ok(capsys, "sample", dcgan_run, "--n", 6, "--seed", 5, "--out",
                      tmp_path / name, *flags)
        return text, np.load(tmp_path / name)

    t_ema, ema = sample("ema.npy", "--ema")
    t_ema2, ema2 = sample("ema2.npy")  # EMA is the default
    t_raw, raw = sample("raw.npy", "--no-ema")
    t_raw2, raw2 = sample("raw2.npy", "--no-ema")
    assert ema.shape == (6, 1, 8, 8) and ema.min() >= -1 and ema.max() <= 1
    assert "(EMA)" in t_ema and "(EMA)" in t_ema2 and "(EMA)" not in t_raw
    assert np.array_equal(ema, ema2) and np.array_equal(raw, raw2)
    assert not np.allclose(ema, raw)


# ----------------------------------------------------------------------------- 2-D data


def test_points_run(points_run, tmp_path, capsys):
    cfg = yaml.safe_load((points_run / "config.yaml").read_text())
    assert cfg["spec"]["kind"] == "points" and cfg["spec"]["shape"] == [2]
    assert (points_run / "samples" / "step-000002.png").is_file()
    run_ok(capsys, "sample", points_run, "--n", 50, "--out", tmp_path / "pts.png")
    with Image.open(tmp_path / "pts.png") as im:
        im.load()
        assert im.format == "PNG"
    run_ok(capsys, "sample", points_run, "--n", 50, "--out", tmp_path / "pts.npy")
    x = np.load(tmp_path / "pts.npy")
    assert x.shape == (50, 2) and np.isfinite(x).all()
    line = run_error(capsys, "plot", "manifold", points_run, "--out", tmp_path / "m.png")
    assert "needs an image model" in line


# ----------------------------------------------------------------------------- bad input: train


@pytest.mark.parametrize("args, fragments", [
    (["nosuchmodel"], ["unknown model 'nosuchmodel'", "vae", "dcgan"]),
    (["vae", "--data", "nosuch"], ["unknown dataset 'nosuch'", "mnist5k", "digits"]),
    (["vae", "--set", "lrr=1"], ["unknown setting 'lrr'", "did you mean lr"]),
    (["vae", "--set", "steps=abc"], ["steps='abc'", "integer"]),
    (["vae", "--set", "arch=rnn"], ["arch='rnn'", "mlp, conv"]),
    (["vae", "--set", "lr"], ["--set 'lr' is not key=value"]),
    (["vae", "--set", "channels=3"], ["model.channels", "data.channels"]),
    (["vae", "--steps", "0"], ["steps=0 must be at least 1"]),
    (["vae", "--set", "lr=nan"], ["finite"]),
    (["vae", "--config", "nope.yaml"], ["does not exist"]),
    (["vae", "--data", "8gaussians", "--set", "arch=conv"], ["arch=conv needs image data"]),
    (["vae", "--data", "8gaussians", "--set", "decoder=bernoulli"], ["decoder=gaussian"]),
    (["dcgan", "--data", "8gaussians"], ["image datasets (image_size)", "8gaussians"]),
    (["gan", "--data", "8gaussians", "--set", "arch=dcgan"], ["arch=dcgan needs image data"]),
    (["dcgan", "--data", "digits", "--set", "image_size=12"],
     ["8, 16, 32, 64", "got 12"]),
    (["vae", "--data", "digits", "--set", "image_size=10"], ["divisible by 4", "10x10"]),
    (["vae", "--data", "digits", "--set", "limit=0"], ["limit=0"]),
    (["vae", "--set", "device=tpu9"], ["device"]),
])
def test_train_bad_input_creates_nothing(tmp_path, capsys, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    steps = [] if "--steps" in args else ["--steps", 1]
    line = run_error(capsys, "train", *args, "--out", out, *steps)
    for f in fragments:
        assert f in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_train_batch_larger_than_dataset_creates_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    line = run_error(capsys, "train", "vae", "--data", "digits", "--out", out, "--steps", 1,
                     "--batch-size", 5000, "--set", "arch=mlp")
    assert "batch_size=5000" in line
    assert not out.exists()


def test_train_empty_conv_channels(tmp_path, capsys):
    out = tmp_path / "run"
    line = run_error(capsys, "train", "vae", "--data", "digits", "--out", out, "--steps", 1,
                     "--set", "model.channels=")
    assert "channels" in line
    assert not out.exists()


def test_train_into_non_empty_dir(vae_run, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    line = run_error(capsys, "train", "vae", "--out", out, *TINY_VAE, "--steps", 1)
    assert "not empty" in line and "--resume" in line
    assert snapshot(out) == {"notes.txt": b"keep me"}
    # a finished run is not overwritten either
    before = snapshot(vae_run)
    run_error(capsys, "train", "vae", "--out", vae_run, *TINY_VAE, "--steps", 1)
    assert snapshot(vae_run) == before


def test_train_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_bytes(b"data")
    line = run_error(capsys, "train", "vae", "--out", f, *TINY_VAE, "--steps", 1)
    assert "is a file" in line
    assert f.read_bytes() == b"data"


def test_resume_without_config(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("x")
    line = run_error(capsys, "train", "vae", "--out", d, "--resume")
    assert "no config.yaml" in line
    assert snapshot(d) == {"x": b"x"}
    line = run_error(capsys, "train", "vae", "--out", tmp_path / "missing", "--resume")
    assert "does not exist" in line
    assert not (tmp_path / "missing").exists()


def test_argparse_errors(tmp_path, capsys):
    # argparse's own mistakes: usage line + error line, exit 2
    for args in (["train", "vae"], ["sample", tmp_path, "--out", "x.npy", "--n", "abc"],
                 ["frobnicate"], ["plot", "scatter", tmp_path]):
        rc = cli(*args)
        out, err = capsys.readouterr()
        assert rc == 2
        lines = err.splitlines()
        assert lines[0].startswith("usage: genzoo") and lines[-1].startswith("genzoo")
        assert ": error: " in lines[-1] and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- bad input: others


def test_sample_bad_input(vae_run, tmp_path, capsys):
    before = snapshot(vae_run)
    line = run_error(capsys, "sample", tmp_path, "--out", tmp_path / "x.npy")
    assert "no config.yaml" in line
    line = run_error(capsys, "sample", tmp_path / "missing", "--out", tmp_path / "x.npy")
    assert "does not exist" in line
    line = run_error(capsys, "sample", vae_run, "--out", tmp_path / "x.jpg")
    assert ".png" in line and ".npy" in line
    line = run_error(capsys, "sample", vae_run, "--out", tmp_path / "no" / "x.npy")
    assert "does not exist" in line
    line = run_error(capsys, "sample", vae_run, "--n", 0, "--out", tmp_path / "x.npy")
    assert "--n 0" in line
    assert list(tmp_path.iterdir()) == []
    assert snapshot(vae_run) == before


def test_sample_run_without_checkpoint(tmp_path, capsys, vae_run):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes((vae_run / "config.yaml").read_bytes())
    line = run_error(capsys, "sample", run, "--out", tmp_path / "x.npy")
    assert "no complete checkpoint" in line
    # a half-written checkpoint (no COMPLETE) does not count
    half = run / "checkpoints" / "step-000002"
    half.mkdir(parents=True)
    for f in ("model.safetensors", "trainer.pt"):
        (half / f).write_bytes((vae_run / "checkpoints" / "step-000002" / f).read_bytes())
    line = run_error(capsys, "sample", run, "--out", tmp_path / "x.npy")
    assert "no complete checkpoint" in line


def test_eval_bad_input(vae_run, dcgan_run, capsys):
    line = run_error(capsys, "eval", vae_run, "--metrics", "bogus")
    assert "unknown metric 'bogus'" in line and "nll" in line
    line = run_error(capsys, "eval", vae_run, "--metrics", ",")
    assert "--metrics is empty" in line
    line = run_error(capsys, "eval", vae_run, "--metrics", "nll", "--n", 0)
    assert "--n 0" in line
    line = run_error(capsys, "eval", dcgan_run, "--metrics", "nll", "--k", 2)
    assert "no likelihood" in line
    assert not (dcgan_run / "eval").exists()


def test_eval_k_zero(vae_run, capsys):
    line = run_error(capsys, "eval", vae_run, "--metrics", "nll", "--k", 0)
    assert "--k" in line or "k=0" in line


def test_plot_manifold_bad_input(vae3_run, dcgan_run, tmp_path, capsys):
    line = run_error(capsys, "plot", "manifold", vae3_run, "--out", tmp_path / "m.png")
    assert "latent_dim=3" in line and "--set latent_dim=2" in line
    line = run_error(capsys, "plot", "manifold", dcgan_run, "--out", tmp_path / "m.png")
    assert "2-D latent space" in line
    line = run_error(capsys, "plot", "manifold", tmp_path / "nothing", "--out", tmp_path / "m.png")
    assert "does not exist" in line
    assert list(tmp_path.iterdir()) == []


def test_plot_manifold_grid_zero(vae_run, tmp_path, capsys):
    run_error(capsys, "plot", "manifold", vae_run, "--out", tmp_path / "m.png", "--grid", 0)


@pytest.mark.parametrize("name", ["no/m.png", "m.txt"])
def test_plot_manifold_bad_out(vae_run, tmp_path, capsys, name):
    run_error(capsys, "plot", "manifold", vae_run, "--out", tmp_path / name, "--grid", 2)


# ----------------------------------------------------------------------------- divergence


def _break_vae_at_call(monkeypatch, n: int) -> None:
    """Make VAE.loss report a NaN KL term from its n-th call on."""
    from genzoo.models.vae import VAE

    real = VAE.loss
    calls = {"n": 0}

    def loss(self, batch, phase):
        calls["n"] += 1
        terms = real(self, batch, phase)
        if calls["n"] >= n:
            terms["kl"] = torch.tensor(float("nan"))
        return terms

    monkeypatch.setattr(VAE, "loss", loss)


def test_nan_stops_training_and_keeps_checkpoint(tmp_path, capsys, monkeypatch):
    _break_vae_at_call(monkeypatch, 3)
    run = tmp_path / "run"
    rc = cli("train", "vae", "--out", run, "--steps", 6, *TINY_VAE)
    out, err = capsys.readouterr()
    assert rc != 0 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("genzoo: error: step 3: ")
    assert "'kl'" in last and "nan" in last
    ck = run / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-000002"]  # nothing after the NaN
    assert (ck / "step-000002" / "COMPLETE").read_text() == "2\n"
    assert trainer_state(ck / "step-000002")["step"] == 2
    assert metric_steps(run) == [2]
    # the intact checkpoint is usable
    monkeypatch.undo()
    run_ok(capsys, "sample", run, "--n", 2, "--out", tmp_path / "x.npy")
    assert np.isfinite(np.load(tmp_path / "x.npy")).all()


def test_huge_lr_diverges_with_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    rc = cli("train", "vae", "--out", run, "--steps", 6, *TINY_VAE, "--set", "lr=1e30",
             "--set", "checkpoint_every=1")
    out, err = capsys.readouterr()
    assert rc != 0 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("genzoo: error: step 2: loss term 'loss'")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000001"]
    assert trainer_state(run / "checkpoints" / "step-000001")["step"] == 1


# ----------------------------------------------------------------------------- console script


def test_console_script_error_is_one_line(tmp_path):
    exe = Path(sys.executable).parent / "genzoo"
    assert exe.is_file()
    out = tmp_path / "run"
    p = subprocess.run([str(exe), "train", "vae", "--out", str(out), "--set", "steps=abc"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.endswith("\n")
    assert p.stderr.startswith("genzoo: error: steps='abc' is not valid")
    assert "Traceback" not in p.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- latent-dims

def test_plot_latent_dims_from_runs(vae_run, vae3_run, tmp_path, capsys):
    out = tmp_path / "dims.png"
    run_ok(capsys, "plot", "latent-dims", vae_run, vae3_run, "--out", out, "--n", 4)
    w, h = Image.open(out).size
    assert w > 1.5 * h  # two panels side by side (3 x 3.3 inches each)


def test_plot_latent_dims_trains_missing_runs(tmp_path, capsys):
    out, runs = tmp_path / "dims.png", tmp_path / "runs"
    run_ok(capsys, "plot", "latent-dims", "--out", out, "--dims", "2,3", "--train-dir", runs,
           "--data", "digits", "--steps", 2, "--set", "arch=mlp", "--set", "hidden=8",
           "--set", "batch_size=32", "--n", 4)
    assert Image.open(out).size[0] > 0
    for d in (2, 3):
        cfg = yaml.safe_load((runs / f"latent-{d}" / "config.yaml").read_text())
        assert cfg["model"]["latent_dim"] == d and cfg["train"]["steps"] == 2
    # a second call reuses the finished runs instead of training again
    before = (runs / "latent-2" / "metrics.jsonl").read_bytes()
    run_ok(capsys, "plot", "latent-dims", "--out", out, "--dims", "2", "--train-dir", runs,
           "--data", "digits", "--steps", 2, "--set", "arch=mlp", "--set", "hidden=8",
           "--set", "batch_size=32", "--n", 4)
    assert (runs / "latent-2" / "metrics.jsonl").read_bytes() == before


def test_plot_latent_dims_rejects_gan_runs(dcgan_run, tmp_path, capsys):
    line = run_error(capsys, "plot", "latent-dims", dcgan_run, "--out", tmp_path / "x.png")
    assert "dcgan" in line


# ----------------------------------------------------------------------------- GAN figures

def test_plot_interpolation_gif_and_decision(vae_run, tmp_path, capsys):
    out = tmp_path / "interp.png"
    run_ok(capsys, "plot", "interpolation", vae_run, "--out", out, "--rows", 2, "--steps", 5)
    w, h = Image.open(out).size
    assert (w, h) == (5 * 8 + 6 * 2, 2 * 8 + 3 * 2)  # 8x8 digits in a padded 2x5 grid
    gif = tmp_path / "train.gif"
    run_ok(capsys, "plot", "training-gif", vae_run, "--out", gif)
    assert Image.open(gif).n_frames == 2  # samples at steps 2 and 4
    ring = tmp_path / "ring"
    run_ok(capsys, "train", "gan", "--data", "8gaussians", "--out", ring, "--steps", 3,
           "--set", "hidden=8", "--set", "batch_size=32", "--set", "n_samples=50")
    run_ok(capsys, "plot", "decision", ring, "--out", tmp_path / "d.png", "--n", 50)
    assert Image.open(tmp_path / "d.png").size[0] > 100
    run_ok(capsys, "eval", ring, "--metrics", "modes", "--n", 200)
    got = json.loads((ring / "eval" / "metrics.json").read_text())["metrics"]["modes"]
    assert got["modes_total"] == 8 and got["n"] == 200
    line = run_error(capsys, "plot", "decision", vae_run, "--out", tmp_path / "e.png")
    assert "2-D points" in line
