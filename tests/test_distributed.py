"""Data-parallel training under torchrun, with 2 gloo processes on the CPU.

- 2 ranks with batch B/2 each reach the weights of 1 process with batch B (a model without
  batch norm, whose loss has no noise: the tiny PixelCNN);
- every rank holds the same parameters at the end (a GAN with batch norm and two phases, and
  WGAN-GP, whose penalty needs a double backward through D);
- a torchrun job killed with SIGKILL after a checkpoint, resumed under torchrun, ends on the
  weights of the uninterrupted torchrun job, bit for bit, with each logged step once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genzoo.cli import main
from genzoo.models.base import read_safetensors
from genzoo.train.checkpoint import latest_checkpoint, load_trainer_state

PIXELCNN = ["pixelcnn", "--data", "digits", "--steps", "8", "--batch-size", "16",
            "--set", "model.channels=4", "--set", "layers=1", "--set", "kernel=3",
            "--set", "head=8", "--set", "progress=none", "--set", "log_every=2",
            "--set", "checkpoint_every=4", "--set", "sample_every=1000"]
GAN = ["dcgan", "--data", "digits", "--steps", "6", "--batch-size", "16",
       "--set", "image_size=8", "--set", "nz=4", "--set", "ngf=4", "--set", "ndf=4",
       "--set", "progress=none", "--set", "checkpoint_every=3", "--set", "ema_decay=0.9"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def _torchrun(args: list[str], out: Path, *, env: dict | None = None,
              wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node=2", "-m", "genzoo", "train", *args, "--out", str(out)]
    if not wait:
        return subprocess.Popen(cmd, env=env or _env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
    r = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(latest_checkpoint(run) / "model.safetensors")[0]


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in line]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """The uninterrupted 2-process PixelCNN run (through `genzoo train --nproc 2`), every
    rank's final parameters in its dumps/ folder."""
    root = tmp_path_factory.mktemp("ddp")
    dumps = root / "dumps"
    dumps.mkdir()
    cmd = [sys.executable, "-m", "genzoo", "train", *PIXELCNN, "--out", str(root / "run"),
           "--nproc", "2"]
    r = subprocess.run(cmd, env=_env(GENZOO_TEST_RANK_WEIGHTS=str(dumps)), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finished at step 8") == 1, "only rank 0 reports"
    return root


def test_two_ranks_with_half_batches_equal_one_process(two_ranks, tmp_path):
    one = tmp_path / "one"
    assert main(["train", *PIXELCNN, "--out", str(one)]) == 0
    a, b = _weights(one), _weights(two_ranks / "run")
    assert a.keys() == b.keys()
    for k in a:  # the same examples per step, gradients averaged: equal up to rounding
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    moved = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved < 1e-5
    # the logged losses are means over the ranks' shards, i.e. the global batch's
    rows_a = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (two_ranks / "run" / "metrics.jsonl").read_text()
              .splitlines()]
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == [2, 4, 6, 8]
    for ra, rb in zip(rows_a, rows_b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)


def test_each_rank_trains_on_its_own_half_of_the_global_batch(two_ranks):
    from genzoo.config import build_config
    from genzoo.data import load_dataset

    cfg = build_config("pixelcnn", overrides=[("data.name", "digits")])
    glob = load_dataset(cfg.data, "train").batch(7, 16, cfg.train.seed)["x"]  # the last step
    x0 = read_safetensors(two_ranks / "dumps" / "rank-0.safetensors")[0]["last_batch.x"]
    x1 = read_safetensors(two_ranks / "dumps" / "rank-1.safetensors")[0]["last_batch.x"]
    assert x0.shape[0] == x1.shape[0] == 8
    assert torch.equal(torch.cat([x0, x1]), glob)


def test_every_rank_holds_the_same_parameters(two_ranks):
    r0 = read_safetensors(two_ranks / "dumps" / "rank-0.safetensors")[0]
    r1 = read_safetensors(two_ranks / "dumps" / "rank-1.safetensors")[0]
    r0.pop("last_batch.x"), r1.pop("last_batch.x")
    assert r0.keys() == r1.keys() and r0
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    saved = _weights(two_ranks / "run")  # and rank 0 saved exactly those
    for k in r0:
        assert torch.equal(saved[k], r0[k]), k


def test_vqvae_codebook_under_two_ranks_equals_one_process(tmp_path):
    """The EMA codebook and dead-code restarts see the global batch on every rank (gathered),
    so 2 ranks with half batches end on one process's codebook, not on rank 0's shard's."""
    args = ["vqvae", "--data", "digits", "--steps", "6", "--batch-size", "16",
            "--set", "model.stages=8", "--set", "model.res_blocks=1",
            "--set", "model.res_channels=4", "--set", "model.codebook_size=8",
            "--set", "model.code_dim=3", "--set", "model.restart_after=2",
            "--set", "progress=none", "--set", "sample_every=1000", "--set", "checkpoint_every=3"]
    assert main(["train", *args, "--out", str(tmp_path / "one")]) == 0
    cmd = [sys.executable, "-m", "genzoo", "train", *args, "--out", str(tmp_path / "two"),
           "--nproc", "2"]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert int(a["quantizer.restarts"]) > 0  # the restarts' gathered rows are used too
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize("preset", ["dcgan", "wgan-gp"])
def test_gan_phases_train_under_ddp_in_lockstep(preset, tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    # wgan-gp: 5 critic steps per G step (G skips steps) and a double backward through D
    _torchrun([preset, *GAN[1:]], tmp_path / "run", env=_env(GENZOO_TEST_RANK_WEIGHTS=str(dumps)))
    r0 = read_safetensors(dumps / "rank-0.safetensors")[0]
    r1 = read_safetensors(dumps / "rank-1.safetensors")[0]
    assert not torch.equal(r0.pop("last_batch.x"), r1.pop("last_batch.x"))
    start = read_safetensors(tmp_path / "run" / "checkpoints" / "step-000003" /
                             "model.safetensors")[0]
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # both networks trained (D in phase D, G in phase G)
    assert any(not torch.equal(r0[k], start[k]) for k in r0 if k.startswith("discriminator"))
    assert any(not torch.equal(r0[k], start[k]) for k in r0 if k.startswith("generator"))
    state = load_trainer_state(latest_checkpoint(tmp_path / "run"))
    assert len(state["rng_ranks"]) == 2  # each rank's random stream, for exact resume
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])


def test_sigkill_under_torchrun_then_resume_gives_the_uninterrupted_weights(two_ranks,
                                                                            tmp_path):
    run = tmp_path / "run"
    p = _torchrun(PIXELCNN, run, wait=False,
                  env=_env(GENZOO_TEST_CHECKPOINT_DELAY="0.5"))  # slow checkpoints
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if (run / "checkpoints" / "step-000004" / "COMPLETE").is_file():
            break
        time.sleep(0.05)
    assert p.poll() is None, "the job ended before it could be killed"
    os.killpg(p.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
    p.wait()
    ckpt = latest_checkpoint(run)
    assert ckpt is not None and int(ckpt.name.split("-")[1]) < 8

    _torchrun(["pixelcnn", "--resume"], run)
    a, b = _weights(two_ranks / "run"), _weights(run)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after the resume under torchrun"
    assert _steps(run) == [2, 4, 6, 8]


def test_nproc_bad_values_are_one_line_errors(tmp_path, capsys):
    assert main(["train", *PIXELCNN, "--out", str(tmp_path / "a"), "--nproc", "3"]) == 1
    assert "divisible by --nproc 3" in capsys.readouterr().err
    assert main(["train", *PIXELCNN, "--out", str(tmp_path / "b"), "--nproc", "0"]) == 1
    assert "1 or more" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sigterm_to_nproc_writes_a_final_checkpoint(tmp_path):
    """SIGTERM to `genzoo train --nproc 2`: the ranks agree on a step, rank 0 checkpoints it
    (with both ranks' random states), the command exits 130 and says once how to continue."""
    run = tmp_path / "run"
    args = [*PIXELCNN[:4], "100000", *PIXELCNN[5:]]  # --steps 100000: only a signal stops it
    p = subprocess.Popen([sys.executable, "-m", "genzoo", "train", *args, "--out", str(run),
                          "--nproc", "2"], env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "metrics.jsonl").is_file():
        time.sleep(0.1)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.count("--resume --nproc 2") == 1, err
    ckpt = latest_checkpoint(run)
    step = load_trainer_state(ckpt)["step"]
    assert 0 < step < 100000 and len(load_trainer_state(ckpt)["rng_ranks"]) == 2
