"""shapes2d: binary 2-D shapes rendered from known factors, the dSprites recipe (Matthey et al.
2017; used by beta-VAE, Higgins et al. 2017, and FactorVAE, Kim & Mnih 2018, arXiv:1802.05983).

Five independent factors, each on a grid of values; every combination is one image:

    shape        square, ellipse, heart                     dSprites: 3 values
    scale        0.5 .. 1 (linear)                          dSprites: 6 values
    orientation  0 .. 2 pi (n values, 2 pi excluded)        dSprites: 40 values
    x, y         position 0 .. 1 (linear)                   dSprites: 32 values each

The default grid is dSprites' (3, 6, 40, 32, 32): 737,280 images. `--set factor_grid=3,3,8,8,8`
takes fewer values per factor (evenly spread over the same ranges) for CPU runs, and
`--set image_size=32` renders on a 32x32 canvas instead of 64x64.

Nothing is stored: the batch of step s is a pure function of (seed, s): factor indices drawn
uniformly, then rendered. Rendering is a pixel test in the shape's own frame (pixel centres,
float64 on the CPU), so it gives the same bits on every machine. Canvas coordinates run 0..1;
a shape of scale 1 has radius 0.15 and its centre moves over 0.2 .. 0.8, so no shape is ever
cut by the border, and one x step moves a shape by 0.6 * size / (n_x - 1) pixels.

Batches hold "x" (B, 1, S, S) in {-1, 1}, "y" the shape index, and "factors" (B, 5) int64
factor indices: the ground truth of the disentanglement metrics (genzoo.metrics.disentangle).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData, _mix
from genzoo.errors import GenzooError

FACTORS = ("shape", "scale", "orientation", "x", "y")
SHAPES = ("square", "ellipse", "heart")
DSPRITES_GRID = (3, 6, 40, 32, 32)
RADIUS = 0.15  # canvas units, at scale 1
POS_LO, POS_HI = 0.2, 0.8  # range of the shape's centre, canvas units
TRAIN_REF, TEST_LEN = 5000, 2000  # fixed reference samples (data.x) of the two splits


def factor_values(grid: tuple[int, ...]) -> list[torch.Tensor]:
    """The values of each factor on `grid` (float64): shape ids, scales, angles, x, y."""
    def lin(lo: float, hi: float, n: int) -> torch.Tensor:
        return torch.linspace(lo, hi, n, dtype=torch.float64) if n > 1 else \
            torch.tensor([(lo + hi) / 2], dtype=torch.float64)

    ns, nc, no, nx, ny = grid
    return [torch.arange(ns, dtype=torch.float64), lin(0.5, 1.0, nc),
            torch.arange(no, dtype=torch.float64) * (2 * math.pi / no), lin(0.0, 1.0, nx),
            lin(0.0, 1.0, ny)]


def render(factors: torch.Tensor, grid: tuple[int, ...], size: int) -> torch.Tensor:
    """(B, 5) factor indices -> (B, 1, size, size) images in {-1, 1} (float32, CPU)."""
    assert factors.dim() == 2 and factors.shape[1] == 5, f"factors {tuple(factors.shape)}"
    f = factors.cpu().long()
    vals = factor_values(grid)
    shape = f[:, 0]
    r = RADIUS * vals[1][f[:, 1]]  # (B,)
    th = vals[2][f[:, 2]]
    cx = POS_LO + (POS_HI - POS_LO) * vals[3][f[:, 3]]
    cy = POS_LO + (POS_HI - POS_LO) * vals[4][f[:, 4]]
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size  # pixel centres
    py, px = torch.meshgrid(c, c, indexing="ij")  # (S, S): row = y (down), column = x
    dx = px[None] - cx[:, None, None]  # (B, S, S)
    dy = py[None] - cy[:, None, None]
    cos, sin = th.cos()[:, None, None], th.sin()[:, None, None]
    rr = r[:, None, None]
    u = (cos * dx + sin * dy) / rr  # the shape's own frame, radius 1
    v = (-sin * dx + cos * dy) / rr
    square = torch.maximum(u.abs(), v.abs()) <= 0.75
    ellipse = u ** 2 + (v / 0.5) ** 2 <= 1.0
    a, b = 1.15 * u, 0.125 - 1.15 * v  # the heart curve, lobes up: (a^2+b^2-1)^3 <= a^2 b^3
    heart = (a ** 2 + b ** 2 - 1) ** 3 - a ** 2 * b ** 3 <= 0
    s = shape[:, None, None]
    on = torch.where(s == 0, square, torch.where(s == 1, ellipse, heart))
    return (on.float() * 2 - 1).unsqueeze(1)  # (B, 1, S, S)


class Shapes2D:
    """A factor dataset with TensorData's interface (batch, ordered, x, y, len, to, ...) plus
    `factor_sizes`, `factors_of(index)`, `index_of(factors)`, `render(factors)` and
    `sample_factors(n, generator)` for the disentanglement metrics."""

    factor_names = FACTORS

    def __init__(self, grid: tuple[int, ...], size: int, split: str):
        self.grid, self.size, self.split = tuple(grid), size, split
        self.name = "shapes2d"
        self.spec = DataSpec("image", (1, size, size), num_classes=grid[0],
                             extras={"factor_names": FACTORS, "factor_grid": self.grid})
        self.binarize = "none"
        self.device = torch.device("cpu")
        self._ref: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- factor addressing -------------------------------------------------------------------
    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self.grid

    @property
    def n_combinations(self) -> int:
        return math.prod(self.grid)

    def factors_of(self, index: torch.Tensor) -> torch.Tensor:
        """Combination numbers (N,) -> factor indices (N, 5), mixed radix, y varying fastest."""
        index = torch.as_tensor(index, dtype=torch.long)
        out = []
        for n in reversed(self.grid):
            out.append(index % n)
            index = index // n
        return torch.stack(out[::-1], 1)

    def index_of(self, factors: torch.Tensor) -> torch.Tensor:
        """Factor indices (N, 5) -> combination numbers (N,)."""
        idx = torch.zeros(len(factors), dtype=torch.long)
        for k, n in enumerate(self.grid):
            idx = idx * n + factors[:, k].long()
        return idx

    def sample_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, 5) factor indices drawn uniformly and independently."""
        return torch.stack([torch.randint(k, (n,), generator=generator) for k in self.grid], 1)

    def render(self, factors: torch.Tensor) -> torch.Tensor:
        """(N, 5) factor indices -> (N, 1, S, S) images on the dataset's device."""
        bad = (factors < 0) | (factors >= torch.tensor(self.grid))
        if bad.any():
            raise GenzooError(f"factor indices out of range for grid {self.grid}")
        return render(factors, self.grid, self.size).to(self.device)

    # --- TensorData's interface --------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_combinations if self.split == "train" else TEST_LEN

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def to(self, device: torch.device | str) -> Shapes2D:
        self.device = torch.device(device)
        self._ref = None
        return self

    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        return TensorData.to_float(x)

    def _reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's fixed sample (seed 0, independent of the run): factors and images."""
        if self._ref is None:
            n, salt = (TEST_LEN, 1) if self.split == "test" else (TRAIN_REF, 2)
            f = self.sample_factors(n, torch.Generator().manual_seed(_mix(0, salt)))
            self._ref = (f.to(self.device), self.render(f))
        return self._ref

    @property
    def x(self) -> torch.Tensor:
        """Images of the fixed reference sample: 2,000 for test, 5,000 for train."""
        return self._reference()[1]

    @property
    def y(self) -> torch.Tensor:
        """Shape indices of the reference sample (the class label of the linear probe)."""
        return self._reference()[0][:, 0]

    @property
    def factors(self) -> torch.Tensor:
        return self._reference()[0]

    def batch(self, step: int, batch_size: int, seed: int, *, rank: int = 0,
              world_size: int = 1) -> dict[str, torch.Tensor]:
        """Fresh factor combinations for `step`; every rank draws the global batch, keeps its
        shard."""
        f = self.sample_factors(batch_size, torch.Generator().manual_seed(_mix(seed, step)))
        out = {"x": self.render(f), "y": f[:, 0].to(self.device),
               "factors": f.to(self.device)}
        if world_size > 1:
            out = {k: v.tensor_split(world_size)[rank] for k, v in out.items()}
        return out

    def ordered(self, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        f, x = self._reference()
        for i in range(0, len(x), batch_size):
            yield {"x": x[i:i + batch_size], "y": f[i:i + batch_size, 0],
                   "factors": f[i:i + batch_size]}


@register_dataset("shapes2d", "dSprites-style shapes from 5 known factors, generated on the fly "
                  "(factor_grid, image_size 64 or 32)")
def load_shapes2d(cfg: DataConfig, split: str) -> Shapes2D:
    grid = DSPRITES_GRID if cfg.factor_grid is None else tuple(cfg.factor_grid)
    if len(grid) != 5 or any(n < 1 for n in grid) or grid[0] > len(SHAPES):
        raise GenzooError(f"factor_grid={','.join(map(str, grid))} is not valid: give 5 counts "
                          "(shape <= 3, scale, orientation, x, y), each >= 1, e.g. 3,6,40,32,32")
    size = 64 if cfg.image_size is None else cfg.image_size
    if size < 16:
        raise GenzooError(f"image_size={size} is too small for shapes2d; use 16 or more "
                          "(64 is dSprites', 32 suits CPU runs)")
    # binarize is accepted (the VAE presets set it) and changes nothing: pixels are already 0/1
    used = [k for k in ("limit", "root") if getattr(cfg, k) is not None]
    used += ["channels"] if cfg.channels not in (None, 1) else []
    if used:
        raise GenzooError(f"settings {', '.join(used)} do not apply to shapes2d (binary, one "
                          "channel, generated); use factor_grid and image_size")
    return Shapes2D(grid, size, split)
