"""`mnist-m` and `digits-m`: digits blended with colour photo patches (Ganin & Lempitsky).

The recipe of MNIST-M (Ganin & Lempitsky 2015, arXiv 1409.7495, sec. 4.1; Ganin et al. 2016,
arXiv 1505.07818): every digit is blended with a patch cut at a random place from a colour photo,
by the absolute difference per channel,

    out[c, i, j] = | patch[c, i, j] - digit[i, j] |        (values 0..255)

so strokes invert the photo's colours. The paper cut patches from BSDS500; genzoo uses the two
photos that ship inside scikit-learn (`china.jpg`, `flower.jpg`, 427 x 640), so nothing is
downloaded. Example i of `mnist-m` is example i of `mnist5k` blended with its own patch: the same
train/test split and the same labels. The patches depend only on `data.patch_seed` (default 0),
so every run and machine sees the same dataset; another seed gives another draw of patches.

`digits-m` does the same to the 8x8 scikit-learn digits (grey levels 0..16 scaled to 0..255).
Its photos are first shrunk by 8/28, so an 8x8 patch covers as much of a photo as a 28x28 patch
of MNIST-M does, and holds some texture rather than one flat colour.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import TensorData
from genzoo.data.embedded import _digits, _mnist5k, _select


@lru_cache(maxsize=2)
def photos(scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """scikit-learn's sample photos as (H, W, 3) uint8 arrays, optionally shrunk by `scale`."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:  # china.jpg, flower.jpg, in this order
        if scale != 1.0:
            h, w = img.shape[:2]
            size = (round(w * scale), round(h * scale))
            img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
        out.append(np.ascontiguousarray(img))
    return tuple(out)


def draw_patches(n: int, shapes: list[tuple[int, int]], size: tuple[int, int],
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For n digits: which photo, and the top-left corner of the (h, w) patch cut from it.

    A pure function of (n, shapes, size, seed): the whole dataset is one draw, so example i gets
    the same patch whatever split or `limit` is asked for.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    which = rng.integers(0, len(shapes), n)  # (n,)
    hs = np.array([s[0] for s in shapes])[which]
    ws = np.array([s[1] for s in shapes])[which]
    top = rng.integers(0, hs - h + 1)  # (n,) each within its own photo
    left = rng.integers(0, ws - w + 1)
    return which, top, left


def blend(digits: np.ndarray, pics: tuple[np.ndarray, ...], seed: int) -> np.ndarray:
    """digits (N, H, W) in 0..255 -> (N, 3, H, W) float64 |patch - digit| in 0..255."""
    n, h, w = digits.shape
    which, top, left = draw_patches(n, [p.shape[:2] for p in pics], (h, w), seed)
    out = np.empty((n, h, w, 3), dtype=np.float64)
    for i in range(n):
        patch = pics[which[i]][top[i]:top[i] + h, left[i]:left[i] + w]  # (H, W, 3)
        out[i] = np.abs(patch.astype(np.float64) - digits[i][:, :, None])
    return out.transpose(0, 3, 1, 2)  # (N, 3, H, W)


@lru_cache(maxsize=2)
def _mnist_m(seed: int):
    x, y, train, test = _mnist5k()
    out = blend(x[:, 0].numpy().astype(np.float64), photos(), seed)
    # whole numbers 0..255 (|uint8 - uint8|): kept as uint8 like the source digits
    return torch.from_numpy(out.astype(np.uint8)), y, train, test


@lru_cache(maxsize=2)
def _digits_m(seed: int):
    x, y, train, test = _digits()
    grey = (x[:, 0].numpy().astype(np.float64) + 1.0) * 127.5  # [-1, 1] -> 0..255
    out = blend(grey, photos(8 / 28), seed)
    # 17 grey levels scaled by 255/16 are not whole numbers: stored in data space as float
    return torch.from_numpy((out / 127.5 - 1.0).astype(np.float32)), y, train, test


# Changes that keep the digit (exactly where the digit is 0 or 255): |patch - digit| inverted,
# in all channels or one, is the digit on the inverted patch; rolling the channels recolours
# the patch; halving the contrast around 127.5 is the digit on a patch of half the contrast.
CONTENT_KEEPING = ("invert", "invert-first", "channel-roll", "half-contrast")


@register_dataset("mnist-m", "mnist5k digits blended with colour photo patches (Ganin & "
                  "Lempitsky), 3x28x28: 4,500 / 500", invariances=CONTENT_KEEPING)
def load_mnist_m(cfg: DataConfig, split: str) -> TensorData:
    return _select("mnist-m", _mnist_m(cfg.patch_seed), split)


@register_dataset("digits-m", "8x8 digits blended with colour photo patches, 3x8x8: 1,497 / 300",
                  invariances=CONTENT_KEEPING)
def load_digits_m(cfg: DataConfig, split: str) -> TensorData:
    return _select("digits-m", _digits_m(cfg.patch_seed), split)
