"""Checkpoints that can never be half-written, and loading that never runs pickled code.

    checkpoints/step-NNNNNN/
        model.safetensors   weights + buffers, with the model config and data spec as metadata
        ema.safetensors     averaged weights of the model's ema_modules (when EMA is on)
        trainer.pt          optimizer states, step, RNG states; torch.load(weights_only=True)
        COMPLETE            written last

Everything is written into `.tmp-step-NNNNNN/`, fsynced, then the directory is renamed. A directory
without COMPLETE, or with a temporary name, is never taken as a checkpoint. A failed write (a full
disk, a read-only directory) removes its temporary directory and leaves earlier checkpoints as
they were.

$GENZOO_TEST_CHECKPOINT_DELAY (seconds) sleeps between the files of a checkpoint: a fault-injection
hook for the tests that kill training while a checkpoint is being written.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import time
from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.models.base import read_safetensors

_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:06d}"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(root: Path, step: int, model, ema: dict | None, trainer_state: dict) -> Path:
    """Write checkpoint `step` atomically; returns its final directory."""
    tmp = root / f".tmp-step-{step:06d}"
    try:
        return _save(root, tmp, step, model, ema, trainer_state)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise GenzooError(f"cannot write checkpoint step {step} to {str(root)!r}: "
                          f"{e.strerror or e}; the earlier checkpoints are intact") from None


def _pause() -> None:
    delay = float(os.environ.get("GENZOO_TEST_CHECKPOINT_DELAY") or 0)
    if delay > 0:
        time.sleep(delay)


def _save(root: Path, tmp: Path, step: int, model, ema: dict | None, trainer_state) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save(tmp / "model.safetensors")
    _pause()
    if ema:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in ema.items()},
                  str(tmp / "ema.safetensors"), metadata=model.metadata())
    torch.save(trainer_state, tmp / "trainer.pt")
    _pause()
    (tmp / "COMPLETE").write_text(f"{step}\n")
    for f in tmp.iterdir():
        _fsync(f)
    _fsync(tmp)
    old = None
    if final.exists():  # a checkpoint of the same step (re-written after a resume): move it
        old = root / f".old-step-{step:06d}"  # aside, so some copy exists at every moment
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync(root)
    if old is not None:
        shutil.rmtree(old)
    return final


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / "COMPLETE").is_file():
            out.append((int(m.group(1)), d))
    return sorted(out)


def prune_checkpoints(root: Path, keep_last: int, keep_every: int = 0) -> list[Path]:
    """Delete complete checkpoints beyond the newest `keep_last` (0: keep all), except those
    whose step is a multiple of `keep_every`; also left-over temporary directories. The newest
    checkpoint is never deleted. Returns what was removed."""
    removed = []
    for d in Path(root).glob(".tmp-step-*") if Path(root).is_dir() else []:
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    if keep_last <= 0:
        return removed
    ckpts = list_checkpoints(root)
    for step, d in ckpts[:-keep_last]:
        if keep_every and step % keep_every == 0:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = list_checkpoints(Path(run_dir) / "checkpoints")
    return ckpts[-1][1] if ckpts else None


def load_trainer_state(ckpt: Path) -> dict:
    """trainer.pt with weights_only=True: tensors and plain containers only, never code."""
    path = ckpt / "trainer.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GenzooError(f"checkpoint {str(ckpt)!r} has no trainer.pt") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GenzooError(f"{str(path)!r} is damaged or unsafe to load ({first[:200]})") from None


def load_weights(model, ckpt: Path, *, ema: bool = False) -> bool:
    """Load model weights from a checkpoint, with the EMA weights over them when asked.

    Returns whether EMA weights were applied.
    """
    state, _ = read_safetensors(ckpt / "model.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise GenzooError(f"{str(ckpt)!r} does not fit this model: "
                          f"{str(e).splitlines()[0]}") from None
    if ema and (ckpt / "ema.safetensors").is_file():
        ema_state, _ = read_safetensors(ckpt / "ema.safetensors")
        model.load_state_dict(ema_state, strict=False)
        return True
    return False
