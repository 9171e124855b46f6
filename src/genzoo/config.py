"""Run configuration: model, data and training sections, YAML presets and `--set` overrides.

A run is fully described by three dataclasses: the model's own `Config` (beside the model), a
`DataConfig` (genzoo.data) and the `TrainConfig` below. `genzoo train MODEL` starts from the YAML
preset `presets/MODEL.yaml`, then applies `--config FILE` and `--set key=value` overrides. A plain
key (`lr=1e-4`) is looked up in all three sections; a dotted one (`train.lr=1e-4`) in one. Every
value is parsed and checked against the field's type, so `steps=abc` fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from genzoo.data import DataConfig
from genzoo.errors import GenzooError, choices

SECTIONS = ("model", "data", "train")


@dataclass
class TrainConfig:
    steps: int = 2000  # optimisation steps (one batch each; every phase due runs on it)
    batch_size: int = 64  # global batch size
    seed: int = 0  # seeds weights, noise and data order
    lr: float = 2e-4  # learning rate of every phase unless a phase sets its own
    beta1: float = 0.5  # Adam beta1 (momentum for sgd)
    beta2: float = 0.999  # Adam beta2 (alpha for rmsprop)
    weight_decay: float = 0.0  # decoupled for adamw, L2 otherwise
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"  # per-phase optimizer type
    grad_clip: float = 0.0  # clip each phase's gradient norm to this (0: off)
    lr_decay: Literal["none", "linear", "inv"] = "none"  # linear: lr falls to 0 at the last step
    #   starting at lr_decay_start; inv: lr / (1 + 10 p)^0.75, p = step / steps (DANN)
    lr_decay_start: float = 0.5  # linear decay starts at this fraction of the run (CycleGAN: 0.5)
    ema_decay: float = 0.0  # EMA of the model's ema_modules (e.g. the generator); 0: off
    log_every: int = 50  # steps between metrics.jsonl / TensorBoard lines
    sample_every: int = 500  # steps between sample grids from fixed noise
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_last: int = 0  # keep only the newest N complete checkpoints (0: keep all) ...
    keep_every: int = 0  # ... and also every checkpoint whose step is a multiple of this
    on_nan: Literal["stop", "rollback"] = "stop"  # a NaN/Inf loss or gradient: stop, or reload
    #   the last good checkpoint with the lr times rollback_lr_factor and go on
    rollback_lr_factor: float = 0.5  # lr multiplier applied at each rollback
    max_rollbacks: int = 3  # give up (stop) after this many rollbacks
    n_samples: int = 64  # images in each sample grid
    device: str = "auto"  # auto (cuda when available), cpu, cuda, cuda:N, mps
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    threads: int = 0  # CPU threads for PyTorch (0: its default); 1 suits small models and
    #                   several runs side by side
    progress: Literal["auto", "bar", "lines", "none"] = "auto"  # auto: bar on a terminal
    # speed switches; none changes the maths (see docs/scaling.md for measured effects)
    channels_last: bool = False  # 4-D weights and images in NHWC layout (faster convolutions)
    amp: Literal["none", "bf16"] = "none"  # autocast the losses to bfloat16 (GPUs, recent CPUs)
    compile: bool = False  # torch.compile each trained submodule (slow first steps)
    eval_every: int = 0  # steps between evaluations during training (0: off); logged as eval/*
    eval_metrics: str = "fid,kid"  # comma-separated metric names for eval_every
    eval_n: int = 1000  # generated samples per periodic evaluation (compare scores at equal N)
    eval_features: str = ""  # extractor of the feature metrics ("": the dataset's classifier)

    def check(self) -> None:
        positive = ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every",
                    "n_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise GenzooError(f"{name}={getattr(self, name)} must be at least 1")
        if not self.lr > 0:
            raise GenzooError(f"lr={self.lr} must be positive")
        if not 0.0 <= self.lr_decay_start < 1.0:
            raise GenzooError(f"lr_decay_start={self.lr_decay_start} must be in [0, 1)")
        for name in ("beta1", "beta2", "ema_decay"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise GenzooError(f"{name}={v} must be in [0, 1)")
        if self.threads < 0:
            raise GenzooError(f"threads={self.threads} must be >= 0 (0: PyTorch's default)")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise GenzooError("grad_clip and weight_decay must be >= 0")
        if self.keep_last < 0 or self.keep_every < 0 or self.max_rollbacks < 0:
            raise GenzooError("keep_last, keep_every and max_rollbacks must be >= 0")
        if not 0 < self.rollback_lr_factor <= 1:
            raise GenzooError(f"rollback_lr_factor={self.rollback_lr_factor} must be in (0, 1]")
        if self.eval_every < 0 or self.eval_n < 1:
            raise GenzooError(f"eval_every={self.eval_every} must be >= 0 (0: off) and "
                              f"eval_n={self.eval_n} at least 1")
        if self.eval_every:
            from genzoo.metrics import get_metric

            names = [m.strip() for m in self.eval_metrics.split(",") if m.strip()]
            if not names:
                raise GenzooError("eval_metrics is empty; name metrics, e.g. fid,kid")
            for name in names:
                get_metric(name)


@dataclass
class RunConfig:
    model: str  # registered model name
    model_cfg: Any  # the model's Config dataclass instance
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def sections(self) -> dict[str, Any]:
        return {"model": self.model_cfg, "data": self.data, "train": self.train}

    def to_dict(self) -> dict:
        return {
            "model": {"name": self.model, **dataclasses.asdict(self.model_cfg)},
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    def check(self) -> None:
        from genzoo.models import MODELS, get_model_class

        self.train.check()
        check = getattr(self.model_cfg, "check", None)
        if check is not None:
            check()
        if self.data.target and not get_model_class(self.model).two_domains:
            two = sorted(n for n, c in MODELS.items() if c.two_domains)
            raise GenzooError(f"{self.model} trains on one dataset, but target={self.data.target} "
                              f"names a second; a target domain is for {', '.join(two)}")


# ----------------------------------------------------------------------------- value parsing

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + " or none"
    if origin in (tuple, list):
        return "a comma-separated list (each " + _describe(typing.get_args(tp)[0]) + ")"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp, key: str) -> Any:
    """Parse/check `value` (a string from the command line, or a YAML value) as type `tp`."""
    bad = GenzooError(f"{key}={value!r} is not valid: expected {_describe(tp)}")
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise bad
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, key)
            except GenzooError:
                pass
        raise bad
    if origin is Literal:
        opts = typing.get_args(tp)
        for o in opts:
            if value == o or (isinstance(value, str) and str(o) == value):
                return o
        valid = ", ".join(map(str, opts))
        raise GenzooError(f"{key}={value!r} is not valid: choose one of {valid}")
    if origin in (tuple, list):
        (inner, *_rest) = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip().strip("[]()")
            items = [s.strip() for s in text.split(",") if s.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise bad
        return origin(coerce(v, inner, key) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:  # 1e4 is a common way to write an integer count
                    f = float(value)
                except ValueError:
                    raise bad from None
                if math.isfinite(f) and f == int(f):
                    return int(f)
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(f):
            raise GenzooError(f"{key}={value!r} is not valid: expected a finite number")
        return f
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    raise bad


def _types(obj) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def set_field(obj, name: str, value: Any, key: str) -> None:
    hints = _types(obj)
    setattr(obj, name, coerce(value, hints[name], key))


def apply_overrides(cfg: RunConfig, overrides: list[tuple[str, Any]]) -> None:
    """Apply (key, value) pairs; key is `name` or `section.name`."""
    secs = cfg.sections()
    for key, value in overrides:
        if "." in key:
            sec, name = key.split(".", 1)
            if sec not in secs:
                raise GenzooError(f"unknown section {sec!r} in {key!r}; "
                                  "use model., data. or train.")
            if name not in {f.name for f in fields(secs[sec])}:
                raise GenzooError(_unknown_key(name, {sec: secs[sec]}))
            set_field(secs[sec], name, value, key)
            continue
        where = [s for s, obj in secs.items() if key in {f.name for f in fields(obj)}]
        if not where:
            raise GenzooError(_unknown_key(key, secs))
        if len(where) > 1:
            raise GenzooError(f"{key!r} exists in {' and '.join(where)}; write "
                              + " or ".join(f"{s}.{key}" for s in where))
        set_field(secs[where[0]], key, value, key)


def _unknown_key(key: str, secs: dict[str, Any]) -> str:
    names = sorted({f.name for obj in secs.values() for f in fields(obj)})
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown setting {key!r}{hint}; valid settings: {', '.join(names)}"


def parse_set(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        if "=" not in item:
            raise GenzooError(f"--set {item!r} is not key=value (e.g. --set lr=1e-4)")
        k, v = item.split("=", 1)
        if not k.strip():
            raise GenzooError(f"--set {item!r} has an empty key")
        out.append((k.strip(), v.strip()))
    return out


# ----------------------------------------------------------------------------- presets and YAML

DATA_KINDS = ("image", "points")  # preset sections applied only for data of that kind


def preset_names() -> list[str]:
    """Presets users can name; files starting with '_' are shared bases for `inherit:`."""
    return sorted(p.name[:-5] for p in resources.files("genzoo.presets").iterdir()
                  if p.name.endswith(".yaml") and not p.name.startswith("_"))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_preset(name: str) -> dict:
    """A preset's YAML, merged over the preset it names in `inherit:` (if any)."""
    path = resources.files("genzoo.presets") / f"{name}.yaml"
    if not path.is_file():
        from genzoo.models import MODELS

        raise GenzooError(f"unknown model {name!r}; choose one of: "
                          f"{choices(set(preset_names()) | set(MODELS))}")
    d = yaml.safe_load(path.read_text()) or {}
    parent = d.pop("inherit", None)
    return _merge(load_preset(parent), d) if parent else d


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise GenzooError(f"config file {str(p)!r} does not exist")
    try:
        d = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise GenzooError(f"config file {str(p)!r} is not valid YAML: "
                          f"{str(e).splitlines()[0]}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise GenzooError(f"config file {str(p)!r} must hold a mapping with sections "
                          "model, data, train")
    return d


def _flatten(d: dict, source: str) -> list[tuple[str, Any]]:
    out = []
    for sec, body in d.items():
        if sec in ("description", "versions", "spec") or sec in DATA_KINDS:
            continue
        if sec not in SECTIONS:
            raise GenzooError(f"{source}: unknown section {sec!r}; use model, data, train")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise GenzooError(f"{source}: section {sec!r} must be a mapping")
        for k, v in body.items():
            if sec == "model" and k == "name":
                continue
            out.append((f"{sec}.{k}", v))
    return out


def build_config(model: str, *, config_file: str | None = None,
                 overrides: list[tuple[str, Any]] = ()) -> RunConfig:
    """Preset -> config file -> overrides; the result is type-checked and validated."""
    from genzoo.models import MODELS, get_model_class

    get_model_class("vae")  # fill the registry
    if model not in preset_names() and model not in MODELS:
        raise GenzooError(f"unknown model {model!r}; choose one of: "
                          f"{choices(set(preset_names()) | set(MODELS))}")
    preset = load_preset(model) if model in preset_names() else {"model": {"name": model}}
    base = (preset.get("model") or {}).get("name", model)
    file_d = read_yaml(config_file) if config_file else {}
    for sec, body in file_d.items():
        if (sec in SECTIONS or sec in DATA_KINDS) and body is not None \
                and not isinstance(body, dict):
            raise GenzooError(f"{config_file}: section {sec!r} must be a mapping of settings")
    file_model = (file_d.get("model") or {}).get("name", base)
    if file_model != base:
        raise GenzooError(f"config file is for model {file_model!r}, not {base!r}")
    cls = get_model_class(base)
    cfg = RunConfig(model=base, model_cfg=cls.Config())
    apply_overrides(cfg, _flatten(preset, f"preset {model}"))
    kind = _data_kind(preset, file_d, overrides)
    if preset.get(kind):  # e.g. the MLP networks and budget of the 2-D lab
        apply_overrides(cfg, _flatten(preset[kind], f"preset {model} ({kind} data)"))
    if file_d:
        apply_overrides(cfg, _flatten(file_d, str(config_file)))
        if file_d.get(kind):
            apply_overrides(cfg, _flatten(file_d[kind], f"{config_file} ({kind} data)"))
    apply_overrides(cfg, list(overrides))
    cls.complete_config(cfg)  # e.g. dann's schedule follows --steps
    cfg.check()
    return cfg


def _data_kind(preset: dict, file_d: dict, overrides) -> str | None:
    """The kind of the dataset the run will use (the last word on data.name wins)."""
    from genzoo.data import DATASETS, _ensure_loaded

    name = (preset.get("data") or {}).get("name")
    name = (file_d.get("data") or {}).get("name", name)
    for k, v in overrides:
        if k in ("data.name", "name"):
            name = v
    _ensure_loaded()
    entry = DATASETS.get(name)
    return entry.kind if entry else None


def config_from_dict(d: dict, source: str) -> RunConfig:
    """Rebuild a RunConfig from a run directory's config.yaml."""
    from genzoo.models import get_model_class

    try:
        name = d["model"]["name"]
    except (KeyError, TypeError):
        raise GenzooError(f"{source}: no model.name; is this a genzoo run directory?") from None
    cls = get_model_class(name)
    cfg = RunConfig(model=name, model_cfg=cls.Config())
    apply_overrides(cfg, _flatten(d, source))
    return cfg


def coerce_dataclass(cls, values: dict, source: str):
    """Build dataclass `cls` from a dict of plain values, type-checked (unknown keys refused)."""
    obj = cls()
    names = {f.name for f in fields(obj)}
    for k, v in values.items():
        if k not in names:
            raise GenzooError(f"{source}: unknown setting {k!r} for {cls.__qualname__}")
        set_field(obj, k, v, k)
    return obj
