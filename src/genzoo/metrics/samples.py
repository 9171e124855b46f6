"""Images from outside genzoo, for `genzoo eval --samples PATH --data DATASET`.

Accepted: a `.npy` array of images, (N, H, W), (N, C, H, W) or (N, H, W, C), with values in
[-1, 1] (floats) or [0, 255] (uint8, or floats above 1); or a folder of image files (PNG, JPEG,
...), read in sorted order. Grey and RGB are converted to the dataset's channels. The images must
have the dataset's size: nothing is resized silently, because resizing changes the scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.errors import GenzooError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _from_npy(path: Path) -> torch.Tensor:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GenzooError(f"{str(path)!r} is not a readable .npy array ({e})") from None
    if a.ndim == 3:
        a = a[:, None]  # (N, 1, H, W)
    elif a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    elif a.ndim != 4:
        raise GenzooError(f"{str(path)!r} holds an array of shape {a.shape}; expected images "
                          "(N, H, W), (N, C, H, W) or (N, H, W, C)")
    if not np.issubdtype(a.dtype, np.number):
        raise GenzooError(f"{str(path)!r} holds {a.dtype} values, not numbers")
    x = torch.from_numpy(np.ascontiguousarray(a)).float()
    if not torch.isfinite(x).all():
        raise GenzooError(f"{str(path)!r} holds NaN or Inf values")
    if a.dtype == np.uint8 or float(x.max()) > 1.5:
        if float(x.min()) < 0 or float(x.max()) > 255:
            raise GenzooError(f"{str(path)!r}: values in [{float(x.min())}, {float(x.max())}] "
                              "are neither in [-1, 1] nor in [0, 255]")
        x = x / 127.5 - 1
    elif float(x.min()) < -1.001 or float(x.max()) > 1.001:
        raise GenzooError(f"{str(path)!r}: values must lie in [-1, 1] or [0, 255]")
    return x.clamp(-1, 1)


def _from_folder(path: Path, channels: int) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise GenzooError(f"{str(path)!r} holds no image files ({kinds})")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise GenzooError(f"{str(f)!r} cannot be read as an image ({e})") from None
        a = a[:, :, None] if a.ndim == 2 else a
        if out and a.shape != out[0].shape:
            raise GenzooError(f"{str(f)!r} is {a.shape[1]}x{a.shape[0]} but the first image is "
                              f"{out[0].shape[1]}x{out[0].shape[0]}; all images must share a size")
        out.append(a)
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()  # (N, C, H, W)
    return x / 127.5 - 1


def load_samples(path, spec) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] with the channels and size of `spec` (an image DataSpec)."""
    from genzoo.data import convert_channels

    path = Path(path)
    if spec.kind != "image":
        raise GenzooError(f"--samples takes images; the dataset holds {spec.kind} data")
    c, h, w = spec.shape
    if path.is_dir():
        x = _from_folder(path, c)
    elif path.is_file() and path.suffix.lower() == ".npy":
        x = _from_npy(path)
    else:
        raise GenzooError(f"--samples {str(path)!r} must be a .npy file or a folder of images")
    if x.shape[1] != c:
        if x.shape[1] not in (1, 3):
            raise GenzooError(f"the samples have {x.shape[1]} channels; expected 1 or 3")
        x = convert_channels(x, c)
    if tuple(x.shape[2:]) != (h, w):
        raise GenzooError(f"the samples are {x.shape[3]}x{x.shape[2]} but the dataset's images "
                          f"are {w}x{h}; set the dataset's size with --set image_size=N "
                          "(and --set resize=pad|bilinear) to match")
    return x
