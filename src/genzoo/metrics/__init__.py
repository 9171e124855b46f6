"""Metric registry: name -> function(context) -> dict of numbers.

A metric receives an `EvalContext` (the model, its run config, options) and returns plain numbers
plus the facts needed to read them (N, protocol). `genzoo eval DIR --metrics a,b` runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genzoo.errors import GenzooError, choices


@dataclass
class EvalContext:
    model: Any  # a GenerativeModel in eval mode, on `device`
    cfg: Any  # the run's RunConfig
    device: Any
    n: int | None = None  # number of examples/samples to use (None: metric's default)
    seed: int = 0
    batch_size: int = 250
    options: dict = field(default_factory=dict)  # metric-specific, e.g. {"k": 500}


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[EvalContext], dict]
    description: str


METRICS: dict[str, Metric] = {}


def register_metric(name: str, description: str):
    def deco(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = Metric(name, fn, description)
        return fn

    return deco


def _ensure_loaded() -> None:
    from genzoo.metrics import modes, nll  # noqa: F401  (importing a metric registers it)


def get_metric(name: str) -> Metric:
    _ensure_loaded()

    if name not in METRICS:
        raise GenzooError(f"unknown metric {name!r}; choose from: {choices(METRICS)}")
    return METRICS[name]


def all_metrics() -> dict[str, Metric]:
    _ensure_loaded()
    return METRICS


def evaluate(run_dir, names: list[str], *, n: int | None = None, seed: int = 0,
             batch_size: int = 250, ema: bool = True, options: dict | None = None) -> dict:
    """Run metrics on a run's latest checkpoint; writes RUN/eval/metrics.json (merged)."""
    import json
    from pathlib import Path

    import torch

    import genzoo
    from genzoo.train.rundir import load_run

    if not names:
        raise GenzooError("--metrics is empty; name at least one metric")
    metrics = [get_metric(m) for m in names]  # fail on a bad name before any work
    if n is not None and n < 1:
        raise GenzooError(f"--n {n} must be at least 1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, cfg, info = load_run(run_dir, ema=ema, device=device)
    ctx = EvalContext(model, cfg, torch.device(device), n=n, seed=seed, batch_size=batch_size,
                      options=options or {})
    results = {m.name: {**m.fn(ctx), "checkpoint": info} for m in metrics}
    out_dir = Path(run_dir) / "eval"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / "metrics.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    record = {**previous.get("metrics", {}), **results}
    doc = {"run": str(run_dir), "checkpoint": info, "seed": seed,
           "genzoo_version": genzoo.__version__, "metrics": record}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)
    return {"path": str(path), "metrics": results}
