"""`folder`: any directory of images, e.g. a scraped or personal collection.

    root/                        root/                       root/train/..., root/test/...
      a.png  b.jpg ...             cats/ 1.png ...             (either layout inside each)
                                   dogs/ 7.jpg ...
    no labels                    one class per subfolder     explicit splits

Without `train`/`test` subfolders every 10th file (in sorted order, starting with the first) is
held out as the test split, so the split is the same on every machine. Images are decoded once,
made square at `image_size` (shorter side resized, then centre-cropped) and held as uint8.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData
from genzoo.errors import GenzooError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_SIZE = 64
log = logging.getLogger("genzoo")

# what PIL raises for unreadable, truncated or hostile files (UnidentifiedImageError is an OSError)
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def _is_candidate(p: Path) -> bool:
    # dot files (.DS_Store, macOS "._x.png" resource forks) are never images: ignore them silently
    return p.is_file() and not p.name.startswith(".")


def _images_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if _is_candidate(p) and p.suffix.lower() in EXTENSIONS)


def _scan(base: Path, classes: list[str] | None) -> tuple[list[Path], list[int] | None, int]:
    """Image paths (sorted), their labels, and how many files were ignored (no image extension,
    or an image outside the class folders)."""
    if classes is None:  # unlabelled: the files directly in `base`
        files = sorted(p for p in base.iterdir() if _is_candidate(p))
        images = [p for p in files if p.suffix.lower() in EXTENSIONS]
        return images, None, len(files) - len(images)
    # images lying next to the class folders have no class: count them with the ignored files
    paths, labels = [], []
    ignored = sum(1 for p in base.iterdir() if _is_candidate(p))
    for label, name in enumerate(classes):
        d = base / name
        if not d.is_dir():  # a class present in the other split only
            continue
        found = _images_under(d)
        ignored += sum(1 for p in d.rglob("*") if _is_candidate(p)) - len(found)
        paths += found
        labels += [label] * len(found)
    return paths, labels, ignored


def _class_names(dirs: list[Path]) -> list[str] | None:
    """Subfolders holding images, over all split directories so labels agree between splits."""
    names = {d.name for base in dirs for d in base.iterdir()
             if d.is_dir() and not d.name.startswith(".") and _images_under(d)}
    return sorted(names) or None


def _to_8bit(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 'L' or 'RGB' (8 bits per channel), keeping grey images grey."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale (PNG/TIFF); PIL's own convert('L') clips at 255 instead of scaling
        a = np.asarray(img).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":  # palette: expand, keeping any transparency for the composite below
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # transparent pixels are composited on black (the data's -1 background); the colour under
        # a transparent pixel is arbitrary, so ignoring alpha would expose junk
        img = img.convert("LA" if img.mode in ("LA", "La") else "RGBA")
        a = np.asarray(img).astype(np.float32)
        out = np.rint(a[..., :-1] * a[..., -1:] / 255.0).astype(np.uint8)
        return Image.fromarray(out[..., 0] if img.mode == "LA" else out, img.mode[:-1])
    if img.mode in ("L", "RGB"):
        return img
    # '1', 'F', CMYK, YCbCr, LAB, HSV, ...: PIL knows how to turn these into 'L' or 'RGB'
    return img.convert("L" if img.mode in ("1", "F") else "RGB")


def _square(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to `size`, then crop the centre: no distortion, no padding."""
    w, h = img.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def _decode(path: Path) -> Image.Image:
    """Decode a file fully (animated GIF/WebP: the first frame); raises _READ_ERRORS if bad."""
    with Image.open(path) as img:
        img.load()  # decode now: truncated files raise here, not later
        return ImageOps.exif_transpose(img)  # camera JPEGs: honour the orientation tag


def read_images(paths: list[Path], size: int | None) -> tuple[list[Image.Image], list[int]]:
    """Decode files as 8-bit 'L'/'RGB' images (made square at `size`, if given); unreadable
    files are skipped. Returns the images and the positions in `paths` they came from."""
    images, kept = [], []
    for i, p in enumerate(paths):
        try:
            img = _decode(p)
        except _READ_ERRORS:
            continue
        # conversion is outside the try: a failure there is a bug to see, not a file to skip
        img = _to_8bit(img)
        images.append(img if size is None else _square(img, size))
        kept.append(i)
    return images, kept


def stack_images(images: list[Image.Image], channels: int | None) -> torch.Tensor:
    """Same-size PIL images -> (N, C, S, S) uint8. channels=None: stay greyscale only when every
    image is; one colour image makes the whole set RGB."""
    mode = {1: "L", 3: "RGB"}.get(channels or 0)
    mode = mode or ("L" if all(im.mode == "L" for im in images) else "RGB")
    arr = np.stack([np.asarray(im.convert(mode)) for im in images])  # (N, S, S) or (N, S, S, 3)
    return torch.from_numpy(np.ascontiguousarray(arr[:, None] if mode == "L"
                                                 else arr.transpose(0, 3, 1, 2)))


@register_dataset("folder", "a directory of images under --set root=DIR (class subfolders: labels)")
def load_folder(cfg: DataConfig, split: str) -> TensorData:
    if cfg.root is None:
        raise GenzooError("folder: no image directory given; pass --set root=DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise GenzooError(f"folder: directory {root} not found; pass --set root=DIR")
    if cfg.channels not in (None, 1, 3):
        raise GenzooError(f"folder: channels={cfg.channels} is not valid; use 1 or 3")
    size = cfg.image_size if cfg.image_size is not None else DEFAULT_SIZE
    if size < 4:
        raise GenzooError(f"image_size={size} is too small; use 4 or more")

    explicit = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / split if explicit else root
    classes = _class_names([root / "train", root / "test"] if explicit else [root])
    paths, labels, ignored = _scan(base, classes)
    if not explicit:  # deterministic 10% hold-out by position in the sorted file list
        keep = [i for i in range(len(paths)) if (i % 10 == 0) == (split == "test")]
        paths = [paths[i] for i in keep]
        labels = None if labels is None else [labels[i] for i in keep]

    images, kept = read_images(paths, size)
    bad = len(paths) - len(kept)
    ys = None if labels is None else [labels[i] for i in kept]
    # a README or labels.csv beside the images is normal (info); an image that fails is not
    other = f"{ignored} files with no image extension or outside class folders"
    if bad:
        log.warning(f"folder: skipped {bad} unreadable files of {len(paths)} under {base}"
                    + (f"; also ignored {other}" if ignored else ""))
    elif ignored:
        log.info(f"folder: ignored {other} under {base}")
    if not images:
        raise GenzooError(f"folder: no readable images for the {split} split under {base} "
                          f"({len(paths)} candidates; extensions: {' '.join(sorted(EXTENSIONS))})")

    x = stack_images(images, cfg.channels)
    y = None if labels is None else torch.tensor(ys, dtype=torch.int64)
    spec = DataSpec("image", tuple(x.shape[1:]), num_classes=len(classes) if classes else 0)
    return TensorData(x, y, spec, name="folder")
