"""Exact resume: stop after a checkpoint, continue, and land on the same weights bit for bit."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import tiny_config

from genzoo.models.base import read_safetensors
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint, load_trainer_state


def _weights(run, name="model.safetensors"):
    return read_safetensors(latest_checkpoint(run) / name)[0]


@pytest.mark.parametrize("name,ema", [("vae", 0.0), ("gan", 0.9)])
def test_resume_is_bit_exact(name, ema, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    train(tiny_config(name, steps=8, checkpoint_every=3, ema_decay=ema), full)

    # the interrupted run: it got to step 7 but only its step-6 checkpoint survived
    train(tiny_config(name, steps=7, checkpoint_every=3, ema_decay=ema), part)
    shutil.rmtree(part / "checkpoints" / "step-000007")
    assert latest_checkpoint(part).name == "step-000006"
    cfg = tiny_config(name, steps=8, checkpoint_every=3, ema_decay=ema)
    train(cfg, part, resume=True)

    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    if ema:
        ea, eb = _weights(full, "ema.safetensors"), _weights(part, "ema.safetensors")
        for k in ea:
            assert torch.equal(ea[k], eb[k]), f"EMA {k} differs after resume"
        assert any(not torch.equal(ea[k], a[k]) for k in ea), "EMA equals the live weights"
    # the metrics of the lost steps were dropped and logged again: each step exactly once
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    assert load_trainer_state(latest_checkpoint(part))["step"] == 8


def test_resume_without_checkpoint_starts_over(tmp_path):
    run = tmp_path / "r"
    train(tiny_config("vae", steps=2, checkpoint_every=2), run)
    shutil.rmtree(run / "checkpoints" / "step-000002")
    fresh = tmp_path / "fresh"
    train(tiny_config("vae", steps=2), fresh)
    train(tiny_config("vae", steps=2), run, resume=True)
    a, b = _weights(fresh), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_incomplete_checkpoint_is_ignored(tmp_path):
    run = tmp_path / "r"
    train(tiny_config("vae", steps=4, checkpoint_every=2), run)
    # a checkpoint dir without its COMPLETE marker, and a leftover temporary dir
    (run / "checkpoints" / "step-000004" / "COMPLETE").unlink()
    (run / "checkpoints" / ".tmp-step-000006").mkdir()
    assert latest_checkpoint(run).name == "step-000002"


def test_linear_lr_decay_schedule_and_exact_resume(tmp_path):
    from genzoo.config import TrainConfig
    from genzoo.train.loop import lr_factor

    tc = TrainConfig(steps=10, lr_decay="linear", lr_decay_start=0.4)
    assert [lr_factor(s, tc) for s in (0, 3, 4, 7, 9, 10)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.5, 1 / 6, 0.0])
    assert lr_factor(9, TrainConfig(steps=10)) == 1.0  # no decay by default

    kw = dict(checkpoint_every=3, lr_decay="linear", lr_decay_start=0.25)
    train(tiny_config("vae", steps=8, **kw), tmp_path / "full")
    # the schedule depends on the run's total steps: simulate a crash of the same 8-step run
    # after its step-3 checkpoint, then resume it
    train(tiny_config("vae", steps=8, **kw), tmp_path / "part")
    for s in ("step-000006", "step-000008"):
        shutil.rmtree(tmp_path / "part" / "checkpoints" / s)
    train(tiny_config("vae", steps=8, **kw), tmp_path / "part", resume=True)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows]  # logged after steps 2, 4, 6, 8: lr used at steps 1, 3, 5, 7
    # decay starts at step int(0.25 * 8) = 2 and reaches 0 at step 8
    assert lrs == pytest.approx([2e-4 * f for f in (1.0, 5 / 6, 3 / 6, 1 / 6)])
