"""2-D toy distributions, the classic mode-collapse benchmarks for GANs and flows.

    8gaussians   8 Gaussians evenly spaced on a circle of radius 2, std 0.02
    25gaussians  Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, std 0.05
    swissroll    2-D swiss roll (x, z of scikit-learn's 3-D one) scaled by 1/5, noise std 0.05

Points are in the literature's units (radius 2, grid spacing 2), NOT rescaled into [-1, 1], so
mode counts and distances compare with published numbers. They are sampled on the fly: the
batch of a step is a pure function of (seed, step), like TensorData's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, _mix

TRAIN_LEN = 100_000  # nominal epoch size: only sets how steps group into epochs
TRAIN_REF = 10_000  # fixed reference sample of the train split, for code reading `data.x`
TEST_LEN = 2_500  # fixed test sample, the same for every run


def _ring(n: int = 8, radius: float = 2.0) -> torch.Tensor:
    a = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    # rounded so that cos(pi/2) etc. are exact zeros rather than 6e-17
    return (radius * torch.stack([a.cos(), a.sin()], 1)).round(decimals=12).float()


def _grid(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    v = torch.tensor(values)
    return torch.cartesian_prod(v, v)


def _mixture(centers: torch.Tensor, std: float) -> Callable[[int, torch.Generator], torch.Tensor]:
    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        k = torch.randint(len(centers), (n,), generator=g)
        return centers[k] + std * torch.randn(n, 2, generator=g)

    return sample


def _swissroll(n: int, g: torch.Generator) -> torch.Tensor:
    # scikit-learn's make_swiss_roll, keeping (x, z): t in [1.5 pi, 4.5 pi], radius grows with t
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    x = torch.stack([t * t.cos(), t * t.sin()], 1) + 0.25 * torch.randn(n, 2, generator=g)
    return x / 5.0  # |t| <= 4.5 pi ~ 14.1, so the roll lies within about [-3, 3]


class PointData:
    """A 2-D distribution with TensorData's interface (batch, ordered, x, len, to, ...)."""

    def __init__(self, name: str, sample: Callable[[int, torch.Generator], torch.Tensor],
                 centers: torch.Tensor | None, std: float, split: str):
        self.name, self.split, self._sample = name, split, sample
        self.spec = DataSpec("points", (2,), num_classes=0,
                             extras={"centers": centers, "std": std})
        self.y = None  # no labels: mode membership is computed from `centers` by the metrics
        self.binarize = "none"
        self.device = torch.device("cpu")
        self._x: torch.Tensor | None = None

    def _draw(self, n: int, seed: int) -> torch.Tensor:
        # always drawn on the CPU, so the numbers do not depend on the device
        g = torch.Generator().manual_seed(seed)
        return self._sample(n, g).float()

    def __len__(self) -> int:
        return TRAIN_LEN if self.split == "train" else TEST_LEN

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def to(self, device: torch.device | str) -> PointData:
        self.device = torch.device(device)
        if self._x is not None:
            self._x = self._x.to(self.device)
        return self

    @property
    def x(self) -> torch.Tensor:
        """The split's fixed sample: 2,500 test points, or a 10,000-point train reference."""
        if self._x is None:
            n, salt = (TEST_LEN, 1) if self.split == "test" else (TRAIN_REF, 2)
            # fixed seed 0, independent of the run's seed; different salts keep the sets apart
            self._x = self._draw(n, _mix(0, salt)).to(self.device)
        return self._x

    def batch(self, step: int, batch_size: int, seed: int, *, rank: int = 0,
              world_size: int = 1) -> dict[str, torch.Tensor]:
        """Fresh points for `step`; every rank draws the same global batch and keeps its shard."""
        x = self._draw(batch_size, _mix(seed, step))
        if world_size > 1:
            x = x.tensor_split(world_size)[rank]
        return {"x": x.to(self.device)}

    def ordered(self, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """The split's fixed sample (`x`) in order, for evaluation."""
        x = self.x
        for i in range(0, len(x), batch_size):
            yield {"x": x[i:i + batch_size]}


def _register(name: str, description: str, centers: torch.Tensor | None, std: float,
              sample: Callable[[int, torch.Generator], torch.Tensor]) -> None:
    @register_dataset(name, description, kind="points")
    def load(cfg: DataConfig, split: str) -> PointData:
        # a fresh copy of the centres, so a caller moving or editing them cannot affect others
        c = None if centers is None else centers.clone()
        return PointData(name, sample, c, std, split)


_register("8gaussians", "8 Gaussians on a circle of radius 2, std 0.02 (2-D mode collapse)",
          _ring(), 0.02, _mixture(_ring(), 0.02))
_register("25gaussians", "25 Gaussians on the grid {-4,-2,0,2,4}^2, std 0.05 (2-D mode collapse)",
          _grid(), 0.05, _mixture(_grid(), 0.05))
_register("swissroll", "2-D swiss roll within about [-3, 3], noise std 0.05 (no discrete modes)",
          None, 0.05, _swissroll)
