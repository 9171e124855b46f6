"""`edges2mnist`: a paired translation task built from our own digits, in the spirit of pix2pix's
edges2shoes (Isola et al. 2017, arXiv:1611.07004 sec. 4): domain A is an edge map of each
mnist5k digit, domain B the digit itself, aligned example by example.

The edge map is Canny-like without the hysteresis: the Sobel gradient magnitude of the digit
(0..1 intensities), thresholded at EDGE_THRESHOLD of its largest possible value. Strokes of
MNIST are 2-3 pixels wide and flat inside, so the map is the outline of each stroke: the model
must fill the strokes in. Deterministic, no parameters, the same train/test split and labels as
mnist5k (both domains carry the digit's label).
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData, TwoDomainData

EDGE_THRESHOLD = 0.25  # of the largest Sobel magnitude a 0..1 image can have (4 sqrt 2)


def sobel_edges(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) uint8 images -> (N, 1, H, W) uint8 edge maps in {0, 255}."""
    img = x.float() / 255.0  # (N, 1, H, W) in [0, 1]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    pad = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(pad, kx)  # (N, 1, H, W) horizontal gradient
    gy = F.conv2d(pad, kx.transpose(2, 3))  # vertical gradient
    mag = (gx ** 2 + gy ** 2).sqrt() / (4 * 2 ** 0.5)  # in [0, 1]
    return (mag > EDGE_THRESHOLD).to(torch.uint8) * 255


@lru_cache(maxsize=1)
def _edges_all() -> torch.Tensor:
    from genzoo.data.embedded import _mnist5k

    return sobel_edges(_mnist5k()[0])


@register_dataset("edges2mnist", "paired task: Sobel edge maps of mnist5k digits (A) -> the "
                  "digits (B), 1x28x28: 4,500 / 500 pairs")
def load_edges2mnist(cfg: DataConfig, split: str) -> TwoDomainData:
    from genzoo.data.embedded import _mnist5k

    x, y, train, test = _mnist5k()
    idx = torch.from_numpy(train if split == "train" else test)
    spec = DataSpec("image", tuple(x.shape[1:]), num_classes=10)
    edges = TensorData(_edges_all()[idx], y[idx], spec, name="mnist5k-edges")
    digits = TensorData(x[idx], y[idx], spec, name="mnist5k")
    return TwoDomainData(edges, digits, paired=True, name="edges2mnist")
