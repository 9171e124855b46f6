"""Metric registry: name -> function(context) -> dict of numbers.

A metric receives an `EvalContext` (the model, its run config, options) and returns plain numbers
plus the facts needed to read them (N, protocol). `genzoo eval DIR --metrics a,b` runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genzoo.errors import GenzooError, choices

DEFAULT_N_FAKE = 5000  # generated images for the feature metrics (FID, KID, IS, PR, SWD)
DEFAULT_N_REAL = 50000  # real images at most (the whole training split of the embedded sets)


@dataclass
class EvalContext:
    """What a metric may use: a model (or given samples), the data, options, a shared cache.

    Image metrics call `fake()` and `real()`; the feature metrics call `fake_features()` and
    `real_features()`, so one `genzoo eval` computes each set of images and features once.
    """

    model: Any  # a GenerativeModel in eval mode on `device`; None for `eval --samples`
    cfg: Any  # the run's RunConfig; None for `eval --samples`
    device: Any
    n: int | None = None  # number of examples/samples to use (None: metric's default)
    seed: int = 0
    batch_size: int = 250
    options: dict = field(default_factory=dict)  # metric-specific, e.g. {"k": 500}
    data_cfg: Any = None  # DataConfig of the reference data (default: cfg.data)
    samples: Any = None  # given samples (N, *shape) in [-1, 1], instead of sampling the model
    out_dir: Any = None  # a Path where metrics may write pictures (RUN/eval), or None
    cache: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data_cfg is None and self.cfg is not None:
            self.data_cfg = self.cfg.data

    @property
    def n_fake(self) -> int:
        if self.samples is not None:
            return len(self.samples) if self.n is None else min(self.n, len(self.samples))
        return DEFAULT_N_FAKE if self.n is None else self.n

    def fake(self):
        """The generated examples, (n_fake, *shape) float32 on the CPU, seeded by `seed`."""
        import torch

        if "fake" not in self.cache:
            if self.samples is not None:
                x = self.samples[: self.n_fake].float()
            else:
                if self.model is None:
                    raise GenzooError("no model and no samples to evaluate")
                g = torch.Generator().manual_seed(self.seed)  # CPU noise: same on every device
                parts = []
                with torch.no_grad():
                    for i in range(0, self.n_fake, self.batch_size):
                        b = min(self.batch_size, self.n_fake - i)
                        parts.append(self.model.sample(b, generator=g).float().cpu())
                x = torch.cat(parts)
            self.cache["fake"] = x
        return self.cache["fake"]

    def real(self, split: str = "train"):
        """The reference data split, (N, *shape) float32 on the CPU (at most DEFAULT_N_REAL)."""
        from genzoo.data import load_dataset

        key = f"real-{split}"
        if key not in self.cache:
            data = load_dataset(self.data_cfg, split)
            n = int(self.options.get("n_real") or DEFAULT_N_REAL)
            self.cache[key] = data.to_float(data.x[:n]).cpu()
        return self.cache[key]

    def extractor(self):
        """The feature extractor named by options["features"] (a classifier dir or inception)."""
        from genzoo.metrics.features import get_extractor

        if "extractor" not in self.cache:
            self.cache["extractor"] = get_extractor(self.options.get("features"), self.data_cfg,
                                                    self.device, self.options)
        return self.cache["extractor"]

    def fake_features(self) -> dict:
        """{"features": (N, F) float64, "logits": (N, K) float64 or None} of `fake()`."""
        from genzoo.metrics.features import extract

        if "fake-features" not in self.cache:
            self.cache["fake-features"] = extract(self.extractor(), self.fake(), self.data_cfg,
                                                  self.batch_size)
        return self.cache["fake-features"]

    def real_features(self, split: str = "train") -> dict:
        """Features of the reference split; cached on disk per dataset and extractor."""
        from genzoo.metrics.features import real_features

        key = f"real-features-{split}"
        if key not in self.cache:
            self.cache[key] = real_features(self, split)
        return self.cache[key]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[EvalContext], dict]
    description: str
    features: bool = False  # uses the feature extractor (ctx.extractor())


METRICS: dict[str, Metric] = {}


def register_metric(name: str, description: str, *, features: bool = False):
    def deco(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = Metric(name, fn, description, features)
        return fn

    return deco


# one module per metric; importing a module registers its metrics
_MODULES = ("modes", "nll", "fid", "kid", "inception_score", "prdc", "nn", "swd", "msssim",
            "translation", "adaptation",
            "probe", "disentangle", "recon", "video")


def _ensure_loaded() -> None:
    import importlib

    for name in _MODULES:
        importlib.import_module(f"genzoo.metrics.{name}")


def get_metric(name: str) -> Metric:
    _ensure_loaded()

    if name not in METRICS:
        raise GenzooError(f"unknown metric {name!r}; choose from: {choices(METRICS)}")
    return METRICS[name]


def all_metrics() -> dict[str, Metric]:
    _ensure_loaded()
    return METRICS


def _check_args(names: list[str], n: int | None) -> list[Metric]:
    if not names:
        raise GenzooError("--metrics is empty; name at least one metric")
    metrics = [get_metric(m) for m in names]  # fail on a bad name before any work
    if n is not None and n < 1:
        raise GenzooError(f"--n {n} must be at least 1")
    return metrics


def run_metrics(ctx: EvalContext, names: list[str]) -> dict:
    """{metric: {key: value}} for each name, sharing images and features through `ctx`."""
    return {m.name: m.fn(ctx) for m in _check_args(names, ctx.n)}


def _write_json(path, doc: dict) -> None:
    import json

    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)


def evaluate(run_dir, names: list[str], *, n: int | None = None, seed: int = 0,
             batch_size: int = 250, ema: bool = True, options: dict | None = None,
             step: int | None = None) -> dict:
    """Run metrics on a run's latest checkpoint; writes RUN/eval/metrics.json (merged). With
    `step`, on that kept checkpoint instead, written to RUN/eval/step-NNNNNN/metrics.json so
    that RUN/eval/metrics.json stays the latest checkpoint's."""
    import json
    import os
    import shutil
    from pathlib import Path

    import torch

    import genzoo
    from genzoo.train.rundir import load_run

    _check_args(names, n)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, cfg, info = load_run(run_dir, ema=ema, device=device, step=step)
    eval_root = Path(run_dir) / "eval"
    out_dir = eval_root / f"step-{step:06d}" if step is not None else eval_root
    # pictures go to a scratch folder first: a metric failing later leaves eval/ as it was
    scratch = out_dir / f".tmp-{os.getpid()}"
    ctx = EvalContext(model, cfg, torch.device(device), n=n, seed=seed, batch_size=batch_size,
                      options=options or {}, out_dir=scratch)
    try:
        results = {k: {**v, "checkpoint": info} for k, v in run_metrics(ctx, names).items()}
        out_dir.mkdir(parents=True, exist_ok=True)  # evaluation leaves no empty eval/ behind
        for f in sorted(scratch.glob("*")) if scratch.is_dir() else []:
            f.replace(out_dir / f.name)
        for vals in results.values():  # the pictures' final paths
            for k, v in vals.items():
                if k.startswith("panel_") and isinstance(v, str):
                    vals[k] = str(out_dir / Path(v).name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for d in dict.fromkeys((out_dir, eval_root)):  # no empty folder left behind
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    record = {**previous.get("metrics", {}), **results}
    _write_json(path, {"run": str(run_dir), "checkpoint": info, "seed": seed,
                       "genzoo_version": genzoo.__version__, "metrics": record})
    return {"path": str(path), "metrics": results}


def evaluate_samples(samples_path, data_cfg, names: list[str], *, out=None,
                     n: int | None = None, seed: int = 0, batch_size: int = 250,
                     options: dict | None = None) -> dict:
    """Metrics of images that did not come from a genzoo run, against a dataset's train split;
    with `out`, writes OUT/metrics.json (and the metrics' pictures) there."""
    from pathlib import Path

    import torch

    import genzoo
    from genzoo.data import load_dataset
    from genzoo.metrics.samples import load_samples

    _check_args(names, n)
    spec = load_dataset(data_cfg, "test").spec
    samples = load_samples(samples_path, spec)
    out_dir = None
    if out is not None:
        out_dir = Path(out)
        if out_dir.exists() and not out_dir.is_dir():
            raise GenzooError(f"--out {str(out)!r} is a file; give a directory")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ctx = EvalContext(None, None, torch.device(device), n=n, seed=seed, batch_size=batch_size,
                      options=options or {}, data_cfg=data_cfg, samples=samples,
                      out_dir=out_dir)
    results = run_metrics(ctx, names)
    path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "metrics.json"
        _write_json(path, {"samples": str(samples_path), "data": data_cfg.name, "seed": seed,
                           "genzoo_version": genzoo.__version__, "metrics": results})
    return {"path": None if path is None else str(path), "metrics": results}
