"""Run directories: creating them safely and reading them back."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import yaml

from genzoo.config import RunConfig, config_from_dict
from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError


def check_new_run_dir(out: Path) -> None:
    """Refuse an --out that would overwrite or cannot hold a run, before any work starts."""
    if out.exists() and not out.is_dir():
        raise GenzooError(f"--out {str(out)!r} is a file; give a directory")
    if out.is_dir() and any(out.iterdir()):
        raise GenzooError(f"--out {str(out)!r} is not empty; pass --resume to continue the run "
                          "in it, or choose a new directory")


def create_run_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise GenzooError(f"cannot write to --out {str(out)!r}: {e.strerror}") from None


def write_config(out: Path, cfg: RunConfig, spec: DataSpec) -> None:
    import torch

    import genzoo

    d = cfg.to_dict()
    d["spec"] = spec.to_dict()
    d["versions"] = {"genzoo": genzoo.__version__, "torch": str(torch.__version__),
                     "python": platform.python_version()}
    d = json.loads(json.dumps(d))  # tuples -> lists: plain YAML any tool can read
    tmp = out / "config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(d, sort_keys=False))
    tmp.replace(out / "config.yaml")


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "config.yaml"
    if Path(run_dir).is_file():
        raise GenzooError(f"{str(run_dir)!r} is a file, not a run directory")
    if not Path(run_dir).is_dir():
        raise GenzooError(f"run directory {str(run_dir)!r} does not exist")
    if not path.is_file():
        raise GenzooError(f"{str(run_dir)!r} has no config.yaml; is it a genzoo run directory?")
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise GenzooError(f"{str(path)!r} is not valid YAML") from None
    if not isinstance(d, dict):
        raise GenzooError(f"{str(path)!r} is not a genzoo run config")
    return config_from_dict(d, str(path))


def load_run(run_dir: str | Path, *, ema: bool = True, device: str = "cpu",
             step: int | None = None):
    """The model of a run at its latest complete checkpoint (or at `step`), in eval mode.

    Returns (model, run config, a short description such as 'runs/x step 3000 (EMA)').
    """
    from genzoo.models import build_model
    from genzoo.train.checkpoint import latest_checkpoint, list_checkpoints, load_weights

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if step is None:
        ckpt = latest_checkpoint(run_dir)
    else:
        kept = dict(list_checkpoints(run_dir / "checkpoints"))
        if step not in kept:
            have = ", ".join(str(k) for k in sorted(kept)) or "none"
            raise GenzooError(f"{str(run_dir)!r} has no complete checkpoint at step {step}; "
                              f"it has: {have}")
        ckpt = kept[step]
    if ckpt is None:
        raise GenzooError(f"{str(run_dir)!r} has no complete checkpoint yet")
    spec_d = yaml.safe_load((run_dir / "config.yaml").read_text()).get("spec")
    if not spec_d:
        raise GenzooError(f"{str(run_dir / 'config.yaml')!r} has no data spec")
    import torch

    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten anyway
        torch.manual_seed(0)
        model = build_model(cfg.model, cfg.model_cfg, DataSpec.from_dict(spec_d))
    used_ema = load_weights(model, ckpt, ema=ema)
    model.to(device).eval()
    info = f"{run_dir} {ckpt.name}" + (" (EMA)" if used_ema else "")
    return model, cfg, info
