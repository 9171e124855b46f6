"""Training that survives faults: SIGKILL at random moments, keep_last, the NaN policies,
malicious and truncated checkpoint files, a full disk."""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from genzoo.cli import main
from genzoo.errors import GenzooError, TrainingDiverged
from genzoo.models.base import read_safetensors
from genzoo.models.vae import VAE
from genzoo.train import train
from genzoo.train.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
)
from genzoo.train.rundir import load_run


def _steps(run: Path) -> list[int]:
    return [int(d.name.split("-")[1]) for _, d in list_checkpoints(run / "checkpoints")]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- SIGKILL chaos

CHAOS_ARGS = ["train", "vae", "--data", "digits", "--steps", "40", "--batch-size", "32",
              "--set", "arch=mlp", "--set", "hidden=32", "--set", "latent_dim=4",
              "--set", "log_every=2", "--set", "checkpoint_every=4", "--set", "sample_every=20",
              "--set", "progress=none", "--set", "threads=1"]


def _spawn(out: Path, resume: bool, delay: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "GENZOO_TEST_CHECKPOINT_DELAY": str(delay)}  # widen the checkpoint write window
    args = [sys.executable, "-m", "genzoo.cli"]
    args += ["train", "vae", "--out", str(out), "--resume"] if resume else \
        [*CHAOS_ARGS, "--out", str(out)]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(tmp_path):
    ref = tmp_path / "ref"  # the uninterrupted run, in this process (the same code path)
    assert main([*CHAOS_ARGS, "--out", str(ref)]) == 0

    run = tmp_path / "chaos"
    rng = random.Random(1234)
    kills, resumed = 0, False
    for _ in range(8):
        p = _spawn(run, resume=resumed, delay=0.03)
        # wait until this process is training (a new log line or checkpoint), then kill it at a
        # random moment: during steps, or while a checkpoint is being written
        seen = len(_rows(run)) if (run / "metrics.jsonl").is_file() else 0
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            rows = len(_rows(run)) if (run / "metrics.jsonl").is_file() else 0
            if rows > seen:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.25))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            resumed = (run / "config.yaml").is_file()
            # every checkpoint that survived loads
            for _, ckpt in list_checkpoints(run / "checkpoints"):
                assert load_trainer_state(ckpt)["step"] == int(ckpt.name.split("-")[1])
            continue
        assert p.returncode == 0, p.stderr.read().decode()
        break
    else:
        p = _spawn(run, resume=True, delay=0)
        assert p.wait(timeout=120) == 0
    assert kills >= 3, "the chaos test killed too few runs to mean anything"
    assert load_trainer_state(latest_checkpoint(run))["step"] == 40
    a = read_safetensors(latest_checkpoint(ref) / "model.safetensors")[0]
    b = read_safetensors(latest_checkpoint(run) / "model.safetensors")[0]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs from the uninterrupted run"
    steps = [r["step"] for r in _rows(run) if "loss" in r]
    assert steps == list(range(2, 41, 2)), steps  # none missing, none duplicated
    assert not list((run / "checkpoints").glob(".tmp-*")), "a temporary checkpoint was left"


# ----------------------------------------------------------------------------- keep_last

def test_keep_last_and_keep_every(tmp_path):
    run = tmp_path / "r"
    train(tiny_config("vae", steps=10, checkpoint_every=2, keep_last=2, keep_every=4), run)
    assert _steps(run) == [4, 8, 10]
    train(tiny_config("vae", steps=6, checkpoint_every=1, keep_last=1), tmp_path / "one")
    assert _steps(tmp_path / "one") == [6]


# ----------------------------------------------------------------------------- NaN policies

def _nan_at(monkeypatch, steps: set[int], where: str = "loss"):
    """Make the VAE's loss (or its gradient) NaN at the given 0-based step numbers, once each."""
    orig = VAE.loss
    calls = {"n": 0}

    def loss(self, batch, phase):
        out = orig(self, batch, phase)
        step = calls["n"]
        calls["n"] += 1
        if step in steps:
            steps.discard(step)
            if where == "loss":
                out["loss"] = out["loss"] * float("nan")
            else:  # a finite loss whose gradient is NaN
                p = next(self.decoder.parameters())
                out["loss"] = out["loss"] + (p * 0).sum()
                p.register_hook(lambda g: g * float("nan"))
        return out

    monkeypatch.setattr(VAE, "loss", loss)


def test_nan_stop_policy_keeps_the_last_checkpoint(monkeypatch, tmp_path):
    run = tmp_path / "r"
    _nan_at(monkeypatch, {6})
    with pytest.raises(TrainingDiverged, match="step 7: loss term 'loss'"):
        train(tiny_config("vae", steps=10, checkpoint_every=4), run)
    assert _steps(run) == [4]
    load_run(run)  # intact and loadable


def test_nan_gradient_is_caught_too(monkeypatch, tmp_path):
    _nan_at(monkeypatch, {2}, where="grad")
    with pytest.raises(TrainingDiverged, match="step 3: the gradient"):
        train(tiny_config("vae", steps=5), tmp_path / "r")


def test_rollback_reloads_lowers_lr_and_finishes(monkeypatch, tmp_path, capsys):
    run = tmp_path / "r"
    _nan_at(monkeypatch, {6})
    cfg = tiny_config("vae", steps=10, checkpoint_every=4, on_nan="rollback",
                      rollback_lr_factor=0.25)
    result = train(cfg, run)
    assert result["step"] == 10
    state = load_trainer_state(latest_checkpoint(run))
    assert state["rollbacks"] == 1 and state["lr_scale"] == 0.25
    rows = _rows(run)
    assert [r["step"] for r in rows if "rollback" in r] == [4]
    assert rows[-1]["lr"] == pytest.approx(cfg.train.lr * 0.25)
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 10  # no duplicated step
    assert "rolled back to step-000004" in capsys.readouterr().err


def test_rollback_gives_up_after_max_rollbacks(monkeypatch, tmp_path):
    _nan_at(monkeypatch, set(range(0, 1000, 1)))  # NaN at every step: no way forward
    cfg = tiny_config("vae", steps=10, checkpoint_every=4, on_nan="rollback", max_rollbacks=2)
    with pytest.raises(TrainingDiverged, match="after 2 rollbacks"):
        train(cfg, tmp_path / "r")
    assert _steps(tmp_path / "r") == [0]  # the step-0 checkpoint written for rollbacks


# ----------------------------------------------------------------------------- unsafe files

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_trainer_state_is_refused_without_running_it(tmp_path, capsys):
    run = tmp_path / "r"
    train(tiny_config("vae", steps=2), run)
    marker = tmp_path / "pwned"
    ckpt = latest_checkpoint(run)
    with open(ckpt / "trainer.pt", "wb") as f:
        pickle.dump({"step": _Payload(marker)}, f)
    with pytest.raises(GenzooError, match="damaged or unsafe"):
        load_trainer_state(ckpt)
    assert main(["train", "vae", "--out", str(run), "--resume"]) == 1
    assert "damaged or unsafe" in capsys.readouterr().err
    assert not marker.exists()


def test_truncated_weights_give_a_clear_error(tmp_path, capsys):
    run = tmp_path / "r"
    train(tiny_config("vae", steps=2), run)
    w = latest_checkpoint(run) / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(GenzooError):
        load_run(run)
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


# ----------------------------------------------------------------------------- full disk

def test_full_disk_during_a_checkpoint_keeps_the_earlier_ones(monkeypatch, tmp_path, capsys):
    import genzoo.train.checkpoint as ck

    real_save = torch.save
    calls = {"n": 0}

    def save(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint's trainer.pt
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ck.torch, "save", save)
    run = tmp_path / "r"
    args = ["train", "vae", "--out", str(run), "--data", "digits", "--steps", "4",
            "--set", "arch=mlp", "--set", "hidden=8", "--set", "checkpoint_every=2",
            "--set", "progress=none"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "earlier checkpoints are intact" in err
    assert err.count("\n") == 1
    assert _steps(run) == [2]
    assert not list((run / "checkpoints").glob(".tmp-*"))
    load_run(run)


def test_unwritable_out_is_a_clear_error(monkeypatch, tmp_path, capsys):
    # root ignores permission bits, so the refusal of the file system is simulated
    real = Path.write_text

    def write_text(self, *a, **k):
        if self.name == ".write-test":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", write_text)
    assert main(["train", "vae", "--out", str(tmp_path / "ro"), "--steps", "1",
                 "--data", "digits"]) == 1
    assert "cannot write to --out" in capsys.readouterr().err
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.undo()
    assert main(["train", "vae", "--out", str(tmp_path / "file"), "--steps", "1"]) == 1
    assert "is a file" in capsys.readouterr().err
