"""MNIST, Fashion-MNIST, CIFAR-10 and SVHN read through torchvision's dataset classes.

Only torchvision's file handling is used: the decoded `.data` / `.targets` arrays are taken as a
whole, as uint8, with no per-item PIL transforms (TensorData scales each batch to [-1, 1]).
Files live under `cfg.root` (default ~/.cache/genzoo/data) in torchvision's own layout, so a
directory already used with torchvision works as is.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData
from genzoo.errors import GenzooError

DEFAULT_ROOT = "~/.cache/genzoo/data"

# What torchvision 0.29 checks before reading, stated so a user can fix it by hand offline.
# MNIST-like: `_check_exists` wants all four *uncompressed* idx files (either split needs all).
_IDX_FILES = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
              "t10k-labels-idx1-ubyte, uncompressed: gunzip any .gz")
# CIFAR10: `_check_integrity` checks the MD5 of all six batches, `_load_meta` that of the meta.
_CIFAR_FILES = ("data_batch_1..data_batch_5, test_batch, batches.meta as extracted from "
                "cifar-10-python.tar.gz; their MD5 sums are checked")


def _root(cfg: DataConfig) -> str:
    return os.path.expanduser(cfg.root if cfg.root is not None else DEFAULT_ROOT)


def _open(name: str, cls: type, cfg: DataConfig, split: str, where: str, need: str,
          problem: str = "files not found", args: dict | None = None):
    """Instantiate a torchvision dataset, turning its missing-file errors into one-line ones.
    `args` replace the split argument (default: train=True/False)."""
    root = _root(cfg)
    where = os.path.join(root, where) if where else root
    try:
        return cls(root, **(args or {"train": split == "train"}), download=cfg.download)
    except (RuntimeError, OSError) as e:  # OSError includes urllib's URLError
        if cfg.download:  # offline, blocked or a bad mirror: say why, keep the manual route open
            # torchvision's message spans lines (one per mirror tried): fold it into one
            reason = " ".join(str(e).split())[:300] or type(e).__name__
            raise GenzooError(f"{name}: download into {root} failed ({reason}); without internet, "
                              f"put {need} under {where}") from e
        if not isinstance(e, RuntimeError):  # e.g. permission denied: not a missing-file case
            raise
        raise GenzooError(f"{name}: {problem} under {where} (need {need}); place them "
                          "there or pass --set download=true when online") from e


def _mnist_like(name: str, cls: type, cfg: DataConfig, split: str) -> TensorData:
    ds = _open(name, cls, cfg, split, os.path.join(cls.__name__, "raw"), _IDX_FILES)
    x = ds.data.unsqueeze(1).contiguous()  # (N, 28, 28) uint8 -> (N, 1, 28, 28)
    y = ds.targets.long()
    return TensorData(x, y, DataSpec("image", tuple(x.shape[1:]), num_classes=10), name=name)


@register_dataset("mnist", "MNIST handwritten digits via torchvision, 28x28: 60k train / 10k test")
def load_mnist(cfg: DataConfig, split: str) -> TensorData:
    from torchvision.datasets import MNIST

    return _mnist_like("mnist", MNIST, cfg, split)


@register_dataset("fashion-mnist", "Zalando Fashion-MNIST via torchvision, 28x28: 60k / 10k")
def load_fashion_mnist(cfg: DataConfig, split: str) -> TensorData:
    from torchvision.datasets import FashionMNIST

    return _mnist_like("fashion-mnist", FashionMNIST, cfg, split)


@register_dataset("cifar10", "CIFAR-10 colour images via torchvision, 32x32: 50k train / 10k test")
def load_cifar10(cfg: DataConfig, split: str) -> TensorData:
    from torchvision.datasets import CIFAR10

    ds = _open("cifar10", CIFAR10, cfg, split, CIFAR10.base_folder, _CIFAR_FILES,
               problem="files not found or corrupted")
    # torchvision holds CIFAR as a numpy (N, 32, 32, 3) HWC array; genzoo is channels-first
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return TensorData(x, y, DataSpec("image", (3, 32, 32), num_classes=10), name="cifar10")


@register_dataset("svhn", "Street View House Numbers via torchvision, 3x32x32: 73,257 / 26,032")
def load_svhn(cfg: DataConfig, split: str) -> TensorData:
    from torchvision.datasets import SVHN

    need = f"{split}_32x32.mat from ufldl.stanford.edu/housenumbers (its MD5 sum is checked)"
    ds = _open("svhn", SVHN, cfg, split, "", need, problem="file not found or corrupted",
               args={"split": split})
    # torchvision has already turned the .mat's (32, 32, 3, N) into (N, 3, 32, 32) and label 10
    # (the digit 0) into 0
    x = torch.from_numpy(np.ascontiguousarray(ds.data))
    y = torch.as_tensor(ds.labels, dtype=torch.int64)
    return TensorData(x, y, DataSpec("image", (3, 32, 32), num_classes=10), name="svhn")
