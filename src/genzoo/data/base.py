"""What every dataset is: a `DataSpec`, and data held as tensors and batched by index.

Small datasets (everything genzoo ships, and MNIST/CIFAR-sized ones) are held as one tensor, on
the training device when asked, and batched by index: no DataLoader workers, no per-item Python.
The batch of step `s` is a pure function of (seed, s), so a resumed run sees exactly the batches
an uninterrupted run would have seen, without storing any sampler state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genzoo.errors import GenzooError


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data."""

    kind: str  # "image" (C, H, W) | "points" (D,) | "audio" (C, T) | "video" (T, C, H, W)
    shape: tuple[int, ...]  # shape of one example, without the batch dimension
    num_classes: int = 0  # 0 when the dataset has no labels
    # free-form facts a model or metric may use (mode centres of 2-D data, sample rate, ...)
    extras: dict = field(default_factory=dict, compare=False)

    @property
    def dim(self) -> int:
        """Number of scalar dimensions of one example (D in bits/dim)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, d: dict) -> DataSpec:
        return cls(kind=d["kind"], shape=tuple(d["shape"]), num_classes=int(d["num_classes"]))


def _mix(seed: int, *ints: int) -> int:
    """A deterministic 63-bit seed from several integers (splitmix-style mixing)."""
    h = seed & 0x7FFFFFFFFFFFFFFF
    for i in ints:
        h = (h * 6364136223846793005 + 1442695040888963407 + i) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


def binarize_tensor(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Stochastic binarisation of data in [-1, 1]: pixel on with probability (x + 1) / 2.

    Returns values in {-1, 1} (still data space); the same generator state gives the same result.
    """
    p = ((x + 1) / 2).clamp(0, 1)
    u = torch.rand(p.shape, generator=generator, device="cpu").to(p.device)
    return torch.where(u < p, 1.0, -1.0).to(x.dtype)


class TensorData:
    """A whole dataset split in memory, batched by index.

    `x` is either uint8 (0..255, scaled to [-1, 1] per batch, a quarter of the memory) or float
    already in data space. `y` holds integer labels or is None.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, spec: DataSpec, *,
                 binarize: str = "none", name: str = ""):
        if x.shape[1:] != torch.Size(spec.shape):
            raise ValueError(f"data of shape {tuple(x.shape[1:])} does not match spec {spec.shape}")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{len(x)} examples but {len(y)} labels")
        if binarize not in ("none", "dynamic", "static"):
            raise GenzooError(f"binarize={binarize!r} is not valid; choose none, dynamic, static")
        self.x, self.y, self.spec, self.name = x, y, spec, name
        self.binarize = binarize
        self._perm_key, self._perm = None, None  # (seed, epoch) of the cached permutation
        if binarize == "static":  # binarised once, with a fixed seed, independent of the run
            g = torch.Generator().manual_seed(_mix(0, 12345))
            self.x = binarize_tensor(self.to_float(self.x), g)

    def __len__(self) -> int:
        return len(self.x)

    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.float().div_(127.5).sub_(1.0)
        return x.float()

    def to(self, device: torch.device | str) -> TensorData:
        self.x = self.x.to(device)
        if self.y is not None:
            self.y = self.y.to(device)
        return self

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def indices(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        """Indices of the batch of `step`: epoch-wise random permutations, last partial dropped."""
        n = len(self)
        if batch_size > n:
            raise GenzooError(f"batch_size={batch_size} is larger than the dataset ({n} examples)")
        spe = n // batch_size
        epoch, i = divmod(step, spe)
        if (seed, epoch) != self._perm_key:
            g = torch.Generator().manual_seed(_mix(seed, epoch))
            self._perm = torch.randperm(n, generator=g)
            self._perm_key = (seed, epoch)
        return self._perm[i * batch_size:(i + 1) * batch_size]

    def batch(self, step: int, batch_size: int, seed: int, *, rank: int = 0,
              world_size: int = 1) -> dict[str, torch.Tensor]:
        """The training batch of `step` (this rank's shard of it when distributed)."""
        idx = self.indices(step, batch_size, seed).to(self.x.device)
        out = {"x": self.to_float(self.x[idx])}  # (B, *shape), the global batch
        if self.binarize == "dynamic":
            # drawn for the whole global batch, then sharded: every rank count sees the same bits
            g = torch.Generator().manual_seed(_mix(seed, step, 7))
            out["x"] = binarize_tensor(out["x"], g)
        if self.y is not None:
            out["y"] = self.y[idx]
        if world_size > 1:
            out = {k: v.tensor_split(world_size)[rank] for k, v in out.items()}
        return out

    def ordered(self, batch_size: int):
        """Iterate over the whole split in order (evaluation), as data-space batches."""
        for i in range(0, len(self), batch_size):
            b = {"x": self.to_float(self.x[i:i + batch_size])}
            if self.y is not None:
                b["y"] = self.y[i:i + batch_size]
            yield b
