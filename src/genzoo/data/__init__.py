"""Dataset registry. Every dataset yields tensors in data space: images scaled to [-1, 1].

    from genzoo.data import DataConfig, load_dataset
    train = load_dataset(DataConfig(name="mnist5k"), "train")
    batch = train.batch(step=0, batch_size=64, seed=0)   # {"x": (64, 1, 28, 28), "y": (64,)}

A loader is a function `(cfg, split) -> TensorData` registered with `@register_dataset`. Options
common to all image datasets (image_size, channels, limit, binarize) are applied here, once.

Two domains (CycleGAN, pix2pix, domain adaptation). `target` names a second registered dataset;
`load_dataset` then returns a `TwoDomainData` (genzoo.data.base) whose batches hold domain A
under "x"/"y" and domain B under "x_b"/"y_b":

    cfg = DataConfig(name="mnist5k", target="mnist-m")    # --data mnist5k --set target=mnist-m
    data = load_dataset(cfg, "train")                     # TwoDomainData, unpaired
    batch = data.batch(step=0, batch_size=64, seed=0)
    # {"x": (64, 3, 28, 28), "y": (64,), "x_b": (64, 3, 28, 28), "y_b": (64,)}
    data.a, data.b                                        # each domain's TensorData
    data.spec.extras["domains"], data.spec.extras["paired"]   # ("mnist5k", "mnist-m"), False

With `paired=true` example i of A goes with example i of B (pix2pix; mnist5k -> mnist-m pairs
each digit with its own blended version); otherwise each domain is shuffled on its own.

The data options apply to both domains. Both must end with one shape: a grey domain beside an
RGB one is repeated to RGB (lossless); a difference in size is an error that asks for
image_size. `unpaired-folder` and `paired-folder` are two-domain datasets by themselves (the
CycleGAN and pix2pix folder layouts, genzoo.data.pairs); a model that needs two domains reads
`spec.extras["domains"]` or finds no "x_b" in its batch and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from genzoo.data.base import DataSpec, TensorData, TwoDomainData, binarize_tensor
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
    target: str | None = None  # a second dataset: domain B of two-domain models (dann, cyclegan)
    patch_seed: int = 0  # mnist-m / digits-m: seed of the photo patches (one fixed dataset)
    paired: bool = False  # with target: example i of A goes with example i of B (same length),
    #                       e.g. mnist5k -> mnist-m, whose example i is mnist5k's i blended
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
    invariances: tuple[str, ...] = ()  # changes that keep an example's content (e.g. "invert"
    #   for mnist-m): what a translation model's `invariance_*: [auto]` takes


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, kind: str = "image",
                     invariances: tuple[str, ...] = ()):
    """Decorator: add a loader `(cfg, split) -> TensorData` to the registry under `name`."""

    def deco(fn):
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = DatasetEntry(name, fn, description, kind, invariances)
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


def load_dataset(cfg: DataConfig, split: str = "train") -> TensorData | TwoDomainData:
    """Load one split ("train" or "test") of the dataset named by `cfg.name` (with
    `cfg.target`, or for a two-domain dataset: a TwoDomainData of both domains)."""
    _ensure_loaded()
    if cfg.name not in DATASETS:
        raise GenzooError(f"unknown dataset {cfg.name!r}; choose one of: {choices(DATASETS)}")
    if split not in ("train", "test"):
        raise GenzooError(f"unknown split {split!r}; choose train or test")
    if cfg.target is not None:
        if cfg.target not in DATASETS:
            raise GenzooError(f"unknown target dataset {cfg.target!r}; choose one of: "
                              f"{choices(DATASETS)}")
        one = dataclasses.replace(cfg, target=None)
        a, b = load_dataset(one, split), load_dataset(dataclasses.replace(one, name=cfg.target),
                                                      split)
        if isinstance(a, TwoDomainData) or isinstance(b, TwoDomainData):
            raise GenzooError(f"{cfg.name if isinstance(a, TwoDomainData) else cfg.target} "
                              "holds two domains already; leave target unset")
        if cfg.paired and len(a) != len(b):
            raise GenzooError(f"paired=true pairs example i of {cfg.name} with example i of "
                              f"{cfg.target}, but their {split} splits hold {len(a)} and "
                              f"{len(b)} examples; use paired=false")
        return _two_domains(a, b, paired=cfg.paired)
    data = DATASETS[cfg.name].loader(cfg, split)
    if isinstance(data, TwoDomainData):  # unpaired-folder, paired-folder
        return _two_domains(_finish(cfg, split, data.a), _finish(cfg, split, data.b),
                            paired=data.paired)
    return _finish(cfg, split, data)


def _two_domains(a: TensorData, b: TensorData, *, paired: bool) -> TwoDomainData:
    for d in (a, b):
        if d.spec.kind != "image":
            raise GenzooError(f"two-domain data must be images; {d.name} holds {d.spec.kind} "
                              "data")
    return TwoDomainData(a, b, paired=paired)


def _finish(cfg: DataConfig, split: str, data: TensorData) -> TensorData:
    """The options common to all datasets: audio/image settings checked, image options applied."""
    audio = [k for k in ("sample_rate", "clip_length") if getattr(cfg, k) is not None]
    if audio and data.spec.kind != "audio":  # audio settings on image/points data
        raise GenzooError(f"settings for audio datasets ({', '.join(audio)}) do not "
                          f"apply to {cfg.name}, which holds {data.spec.kind} data; leave "
                          "them unset")
    video = [k for k in ("frames", "num_digits", "frame_size") if getattr(cfg, k) is not None]
    if video and data.spec.kind != "video":  # video settings on image/points/audio data
        raise GenzooError(f"settings for video datasets ({', '.join(video)}) do not "
                          f"apply to {cfg.name}, which holds {data.spec.kind} data; leave "
                          "them unset")
    if cfg.factor_grid is not None and cfg.name != "shapes2d":
        raise GenzooError(f"factor_grid applies to the shapes2d dataset only, not {cfg.name}; "
                          "leave it unset")
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
    return TensorData(x, y, spec, binarize=mode, name=data.name or cfg.name)


def _ensure_loaded() -> None:
    # importing the modules runs their @register_dataset decorators
    from genzoo.data import (  # noqa: F401
        audio,
        edges,
        embedded,
        folder,
        mnistm,
        pairs,
        shapes2d,
        torchvision_sets,
        toy2d,
        video,
    )


__all__ = ["DATASETS", "DataConfig", "DataSpec", "TensorData", "TwoDomainData", "binarize_tensor",
           "load_dataset", "register_dataset"]
