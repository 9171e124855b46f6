"""Two-domain image folders in the layouts of the CycleGAN and pix2pix code releases.

`unpaired-folder` (CycleGAN, Zhu et al. 2017, arXiv 1703.10593; horse2zebra and friends):

    root/trainA/ *.jpg    root/trainB/ *.jpg    root/testA/ *.jpg    root/testB/ *.jpg

`paired-folder` (pix2pix, Isola et al. 2017, arXiv 1611.07004), either layout:

    root/train/ *.jpg, root/test/ *.jpg      each file is A and B side by side (A left, B right),
                                             as facades, maps, edges2shoes; `val/` stands in for
                                             a missing `test/`
    root/A/ x.png ...,  root/B/ x.png ...    two folders; files with the same name (extension
                                             aside) are a pair; each may hold train/ and test/

Without train/test subfolders every 10th file (by sorted name, starting with the first) is the
test split, as for `folder`. Images are made square at `image_size` (default 64: shorter side
resized, centre crop) and held as uint8; unreadable files are skipped with a warning (a pair
loses both halves). Both return a `TwoDomainData` (genzoo.data.base): batches hold domain A
under "x" and domain B under "x_b", aligned for paired data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData, TwoDomainData
from genzoo.data.folder import (
    DEFAULT_SIZE,
    EXTENSIONS,
    _images_under,
    _square,
    read_images,
    stack_images,
)
from genzoo.errors import GenzooError

log = logging.getLogger("genzoo")


def _root(cfg: DataConfig, name: str) -> tuple[Path, int]:
    if cfg.root is None:
        raise GenzooError(f"{name}: no directory given; pass --set root=DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise GenzooError(f"{name}: directory {root} not found; pass --set root=DIR")
    if cfg.channels not in (None, 1, 3):
        raise GenzooError(f"{name}: channels={cfg.channels} is not valid; use 1 or 3")
    size = cfg.image_size if cfg.image_size is not None else DEFAULT_SIZE
    if size < 4:
        raise GenzooError(f"image_size={size} is too small; use 4 or more")
    return root, size


def _held_out(paths: list, split: str) -> list:
    """The deterministic 10% hold-out of `folder`: sorted positions 0, 10, 20, ... are test."""
    return [p for i, p in enumerate(paths) if (i % 10 == 0) == (split == "test")]


def _tensor(images: list, cfg: DataConfig, name: str, where: Path, split: str) -> TensorData:
    if not images:
        raise GenzooError(f"{name}: no readable images for the {split} split under {where} "
                          f"(extensions: {' '.join(sorted(EXTENSIONS))})")
    x = stack_images(images, cfg.channels)  # (N, C, S, S) uint8
    return TensorData(x, None, DataSpec("image", tuple(x.shape[1:])), name=f"{name}:{where.name}")


def _warn_skipped(name: str, bad: int, total: int, where: Path) -> None:
    if bad:
        log.warning(f"{name}: skipped {bad} unreadable files of {total} under {where}")


@register_dataset("unpaired-folder", "two image domains, CycleGAN layout root/trainA, trainB, "
                  "testA, testB (--set root=DIR)")
def load_unpaired_folder(cfg: DataConfig, split: str) -> TwoDomainData:
    name = "unpaired-folder"
    root, size = _root(cfg, name)
    domains = []
    for d in ("A", "B"):
        where = root / f"{split}{d}"
        if not where.is_dir():
            raise GenzooError(f"{name}: folder {where} not found; the layout is root/trainA, "
                              "root/trainB, root/testA, root/testB")
        paths = _images_under(where)
        images, kept = read_images(paths, size)
        _warn_skipped(name, len(paths) - len(kept), len(paths), where)
        domains.append(_tensor(images, cfg, name, where, split))
    return TwoDomainData(*domains, paired=False, name=name)


def _split_dir(base: Path, split: str) -> Path | None:
    """base/train or base/test (val when test is missing), or None when base has no splits."""
    if not (base / "train").is_dir():
        return None
    if split == "train":
        return base / "train"
    for d in ("test", "val"):
        if (base / d).is_dir():
            return base / d
    raise GenzooError(f"paired-folder: {base}/train exists but neither {base}/test nor "
                      f"{base}/val; add a test split")


def _side_by_side(root: Path, split: str, size: int, cfg: DataConfig):
    """Files holding A | B side by side: each image cut into its left and right halves."""
    where = _split_dir(root, split)
    paths = _images_under(where) if where else _held_out(_images_under(root), split)
    images, kept = read_images(paths, None)
    _warn_skipped("paired-folder", len(paths) - len(kept), len(paths), where or root)
    halves_a, halves_b = [], []
    for img, i in zip(images, kept):
        w, h = img.size
        if w < 2 or w % 2:
            raise GenzooError(f"paired-folder: {paths[i]} is {w}x{h}; a side-by-side pair needs "
                              "an even width (A left half, B right half)")
        halves_a.append(_square(img.crop((0, 0, w // 2, h)), size))
        halves_b.append(_square(img.crop((w // 2, 0, w, h)), size))
    where = where or root
    return (_tensor(halves_a, cfg, "paired-folder", where, split),
            _tensor(halves_b, cfg, "paired-folder", where, split))


def _two_folders(root: Path, split: str, size: int, cfg: DataConfig):
    """root/A and root/B: files with the same stem are a pair."""
    lists = []
    for d in ("A", "B"):
        where = _split_dir(root / d, split)
        files = _images_under(where) if where else \
            sorted(p for p in (root / d).iterdir() if p.suffix.lower() in EXTENSIONS)
        lists.append({p.stem: p for p in files})
    a, b = lists
    only = sorted(set(a) ^ set(b))
    if only:
        raise GenzooError(f"paired-folder: {len(only)} files in {root}/A or {root}/B have no "
                          f"partner of the same name (e.g. {only[0]}); pairs need matching names")
    stems = sorted(a)
    if not (root / "A" / "train").is_dir():
        stems = _held_out(stems, split)
    imgs_a, kept_a = read_images([a[s] for s in stems], size)
    imgs_b, kept_b = read_images([b[s] for s in stems], size)
    both = sorted(set(kept_a) & set(kept_b))  # a pair with one unreadable half is dropped
    _warn_skipped("paired-folder", len(stems) - len(both), len(stems), root)
    pos_a, pos_b = {k: i for i, k in enumerate(kept_a)}, {k: i for i, k in enumerate(kept_b)}
    return (_tensor([imgs_a[pos_a[k]] for k in both], cfg, "paired-folder", root / "A", split),
            _tensor([imgs_b[pos_b[k]] for k in both], cfg, "paired-folder", root / "B", split))


@register_dataset("paired-folder", "image pairs, pix2pix layout: A|B side by side in root/train, "
                  "root/test, or folders root/A, root/B with matching names (--set root=DIR)")
def load_paired_folder(cfg: DataConfig, split: str) -> TwoDomainData:
    root, size = _root(cfg, "paired-folder")
    if (root / "A").is_dir() and (root / "B").is_dir():
        a, b = _two_folders(root, split, size, cfg)
    else:
        a, b = _side_by_side(root, split, size, cfg)
    return TwoDomainData(a, b, paired=True, name="paired-folder")
