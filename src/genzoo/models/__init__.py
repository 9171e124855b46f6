"""Model registry: a plain dict filled by the @register_model decorator."""

from __future__ import annotations

import json
from pathlib import Path

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError, choices
from genzoo.models.base import GenerativeModel, Phase, read_safetensors

MODELS: dict[str, type[GenerativeModel]] = {}


def register_model(name: str):
    def deco(cls):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        cls.name = name
        MODELS[name] = cls
        return cls

    return deco


# one module per model family; importing a module registers its models
_MODULES = ("vae", "gan", "vqvae", "pixelcnn", "wavenet", "progan", "stylegan", "cyclegan",
            "pix2pix", "dann", "drnet", "bigan", "factorvae", "aae")


def _ensure_loaded() -> None:
    import importlib

    for name in _MODULES:
        importlib.import_module(f"genzoo.models.{name}")


def get_model_class(name: str) -> type[GenerativeModel]:
    _ensure_loaded()
    if name not in MODELS:
        raise GenzooError(f"unknown model {name!r}; choose one of: {choices(MODELS)}")
    return MODELS[name]


def build_model(name: str, cfg, spec: DataSpec) -> GenerativeModel:
    return get_model_class(name)(cfg, spec)


def load_model(path: str | Path, map_location: str = "cpu") -> GenerativeModel:
    """Rebuild a model from a `model.safetensors` file alone (config and spec are inside it)."""
    from genzoo.config import coerce_dataclass

    state, meta = read_safetensors(path)
    if "genzoo_model" not in meta:
        raise GenzooError(f"{str(path)!r} has no genzoo metadata; was it written by genzoo?")
    cls = get_model_class(meta["genzoo_model"])
    cfg = coerce_dataclass(cls.Config, json.loads(meta["config"]), str(path))
    model = cls(cfg, DataSpec.from_dict(json.loads(meta["spec"])))
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise GenzooError(f"{str(path)!r} does not hold a whole model (an ema.safetensors file "
                          "holds only the averaged weights; load model.safetensors)") from None
    return model.to(map_location).eval()


__all__ = ["MODELS", "GenerativeModel", "Phase", "build_model", "get_model_class", "load_model",
           "register_model"]
