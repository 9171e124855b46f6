"""Figures that need whole runs (training them when asked); called by `genzoo plot`."""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError


def latent_dims(runs: list[str], out: str, *, dims: str = "2,5,10,20",
                train_dir: str = "runs/latent-dims", data: str = "mnist5k", steps: int = 2000,
                sets: list[str] = (), n: int = 64) -> str:
    """VAE samples for several latent sizes side by side (Kingma & Welling 2013, fig. 5).

    With run directories, uses them; otherwise trains one VAE per size in `train_dir/latent-D`
    (reusing a finished run there) with everything else equal.
    """
    from genzoo.config import build_config, parse_set
    from genzoo.train import train
    from genzoo.train.checkpoint import latest_checkpoint
    from genzoo.train.rundir import load_run, read_run_config
    from genzoo.viz.manifold import latent_dims_figure

    if not runs:
        try:
            sizes = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise GenzooError(f"--dims {dims!r} must be comma-separated integers") from None
        runs = []
        for d in sizes:
            run = Path(train_dir) / f"latent-{d}"
            cfg = build_config("vae", overrides=[("data.name", data), ("train.steps", steps)]
                               + parse_set(sets) + [("model.latent_dim", d)])
            ckpt = latest_checkpoint(run)
            if (run / "config.yaml").is_file():  # reuse only a run of exactly this config
                if read_run_config(run).to_dict() != cfg.to_dict():
                    raise GenzooError(f"{str(run)!r} holds a run with another config; remove "
                                      "it or choose another --train-dir")
                if ckpt is None or ckpt.name != f"step-{steps:06d}":
                    train(cfg, run, resume=True)
            else:
                train(cfg, run)
            runs.append(str(run))
    rows = []
    for r in runs:
        model, cfg, _ = load_run(r)
        if cfg.model != "vae":
            raise GenzooError(f"{r!r} is a {cfg.model} run; latent-dims compares VAE runs")
        g = torch.Generator().manual_seed(0)
        rows.append((f"latent {cfg.model_cfg.latent_dim}", model.sample(n, generator=g)))
    latent_dims_figure(rows, out)
    return out
