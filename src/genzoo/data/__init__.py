"""Dataset registry. Every dataset yields tensors in data space: images scaled to [-1, 1].

    from genzoo.data import DataConfig, load_dataset
    train = load_dataset(DataConfig(name="mnist5k"), "train")
    batch = train.batch(step=0, batch_size=64, seed=0)   # {"x": (64, 1, 28, 28), "y": (64,)}

A loader is a function `(cfg, split) -> TensorData` registered with `@register_dataset`. Options
common to all image datasets (image_size, channels, limit, binarize) are applied here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from genzoo.data.base import DataSpec, TensorData, binarize_tensor
from genzoo.errors import GenzooError, choices


@dataclass
class DataConfig:
    name: str = "digits"  # dataset name; `genzoo list` shows them
    root: str | None = None  # directory of torchvision files, or of images for `folder`
    download: bool = False  # let torchvision download missing files (needs internet)
    image_size: int | None = None  # resize images to image_size x image_size (None: native)
    resize: Literal["bilinear", "nearest", "pad"] = "bilinear"  # how image_size is reached
    channels: int | None = None  # convert images to 1 or 3 channels (None: native)
    binarize: Literal["none", "dynamic"] = "none"  # dynamic: fresh Bernoulli draw per batch
    limit: int | None = None  # keep only the first `limit` examples of each split
    sample_rate: int | None = None  # audio: samples per second (None: 8000)
    clip_length: int | None = None  # audio: samples per example (None: 4096)
    factor_grid: tuple[int, ...] | None = None  # shapes2d: values per factor (shape, scale,
    #   orientation, x, y); None: dSprites' 3,6,40,32,32
    frames: int | None = None  # video: frames per video (None: 10)
    num_digits: int | None = None  # moving-digits: 1 or 2 digits per video (None: 2)
    frame_size: int | None = None  # video: side of the square frame in pixels (None: 64)


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Callable[[DataConfig, str], TensorData]
    description: str
    kind: str = "image"


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, kind: str = "image"):
    """Decorator: add a loader `(cfg, split) -> TensorData` to the registry under `name`."""

    def deco(fn):
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = DatasetEntry(name, fn, description, kind)
        return fn

    return deco


def resize_images(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize (N, C, H, W) images in data space to size x size.

    `pad` centres the image on a background of -1 (black), which keeps MNIST digits pixel-exact
    when going 28 -> 32 as DCGAN code usually does.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    if mode == "pad":
        if h > size or w > size:
            raise GenzooError(f"resize=pad cannot shrink {h}x{w} images to {size}x{size}; "
                              "use resize=bilinear or resize=nearest")
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(x, (left, size - w - left, top, size - h - top), value=-1.0)
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True).clamp_(-1, 1)


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB by repetition; RGB -> grey by ITU-R 601 luma (as PIL's 'L' mode)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True)
    raise GenzooError(f"cannot convert {c}-channel images to {channels} channels; use 1 or 3")


def load_dataset(cfg: DataConfig, split: str = "train") -> TensorData:
    """Load one split ("train" or "test") of the dataset named by `cfg.name`."""
    _ensure_loaded()
    if cfg.name not in DATASETS:
        raise GenzooError(f"unknown dataset {cfg.name!r}; choose one of: {choices(DATASETS)}")
    if split not in ("train", "test"):
        raise GenzooError(f"unknown split {split!r}; choose train or test")
    entry = DATASETS[cfg.name]
    audio = [k for k in ("sample_rate", "clip_length") if getattr(cfg, k) is not None]
    if audio and entry.kind != "audio":  # audio settings on image/points data
        raise GenzooError(f"settings for audio datasets ({', '.join(audio)}) do not "
                          f"apply to {cfg.name}, which holds {entry.kind} data; leave "
                          "them unset")
    video = [k for k in ("frames", "num_digits", "frame_size") if getattr(cfg, k) is not None]
    if video and entry.kind != "video":  # video settings on image/points/audio data
        raise GenzooError(f"settings for video datasets ({', '.join(video)}) do not "
                          f"apply to {cfg.name}, which holds {entry.kind} data; leave "
                          "them unset")
    if cfg.factor_grid is not None and cfg.name != "shapes2d":
        raise GenzooError(f"factor_grid applies to the shapes2d dataset only, not {cfg.name}; "
                          "leave it unset")
    data = entry.loader(cfg, split)
    if data.spec.kind != "image":
        used = [k for k in ("image_size", "channels", "limit") if getattr(cfg, k) is not None]
        used += ["binarize"] if cfg.binarize != "none" else []
        if used:
            raise GenzooError(f"settings for image datasets ({', '.join(used)}) do not apply "
                              f"to {cfg.name}, which holds {data.spec.kind} data; leave them "
                              "unset")
        return data
    if not isinstance(data, TensorData):  # rendered on the fly (shapes2d): its loader applies
        return data  # image_size itself and refuses the settings it cannot honour
    x, y = data.x, data.y
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise GenzooError(f"limit={cfg.limit} must be a positive number of examples")
        x = x[:cfg.limit]
        y = None if y is None else y[:cfg.limit]
    if cfg.image_size is not None and cfg.image_size < 4:
        raise GenzooError(f"image_size={cfg.image_size} is too small; use 4 or more")
    # convert to float only when something changes: uint8 holds the data in a quarter the memory
    if cfg.image_size is not None and tuple(x.shape[2:]) != (cfg.image_size, cfg.image_size):
        x = resize_images(TensorData.to_float(x), cfg.image_size, cfg.resize)
    if cfg.channels is not None and x.shape[1] != cfg.channels:
        x = convert_channels(TensorData.to_float(x), cfg.channels)
    # extras["binarize"]: models whose likelihood depends on it (pixelcnn output=auto) read it
    extras = {**data.spec.extras, "binarize": cfg.binarize}
    spec = DataSpec("image", tuple(x.shape[1:]), data.spec.num_classes, extras)
    mode = {"none": "none", "dynamic": "dynamic" if split == "train" else "static"}[cfg.binarize]
    return TensorData(x, y, spec, binarize=mode, name=cfg.name)


def _ensure_loaded() -> None:
    # importing the modules runs their @register_dataset decorators
    from genzoo.data import (  # noqa: F401
        audio,
        embedded,
        folder,
        shapes2d,
        torchvision_sets,
        toy2d,
        video,
    )


__all__ = ["DATASETS", "DataConfig", "DataSpec", "TensorData", "binarize_tensor",
           "load_dataset", "register_dataset"]
