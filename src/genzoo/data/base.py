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


def _to_rgb(d: TensorData) -> TensorData:
    """A grey dataset repeated to 3 channels (uint8 stays uint8); an RGB one as it is."""
    if d.spec.shape[0] != 1:
        return d
    x = d.x.repeat(1, 3, 1, 1)  # (N, 1, H, W) -> (N, 3, H, W)
    spec = DataSpec("image", tuple(x.shape[1:]), d.spec.num_classes, d.spec.extras)
    out = TensorData(x, d.y, spec, name=d.name)
    out.binarize = d.binarize  # a static binarisation is already in x: not redone
    return out


class TwoDomainData:
    """Two datasets of one shape, batched together: domain A and domain B.

    The batch of a two-domain dataset holds both domains under separate keys:

        {"x": (B, C, H, W) domain A, "y": (B,) A's labels (if any),
         "x_b": (B, C, H, W) domain B, "y_b": (B,) B's labels (if any)}

    `paired=True` (pix2pix): x_b[i] is the partner of x[i]; both splits have the same length and
    are drawn with the same indices. `paired=False` (CycleGAN, domain adaptation): each domain has
    its own permutation, drawn with a seed derived from train.seed, so A and B are independent
    and each still a pure function of (seed, step). `a` and `b` are the two `TensorData`; `x`
    and `y` are A's (code that reads one dataset sees domain A).
    """

    def __init__(self, a: TensorData, b: TensorData, *, paired: bool, name: str = ""):
        if a.spec.kind != "image" or b.spec.kind != "image":
            raise GenzooError("two-domain data must be images in both domains")
        if {a.spec.shape[0], b.spec.shape[0]} == {1, 3}:  # grey beside RGB: repeat grey, lossless
            a, b = _to_rgb(a), _to_rgb(b)
        if a.spec.shape != b.spec.shape:
            raise GenzooError(f"the two domains differ in shape: {a.name} is "
                              f"{'x'.join(map(str, a.spec.shape))}, {b.name} is "
                              f"{'x'.join(map(str, b.spec.shape))}; set image_size (and "
                              "channels) to bring both to one shape")
        if paired and len(a) != len(b):
            raise ValueError(f"paired domains of {len(a)} and {len(b)} examples")
        self.a, self.b, self.paired = a, b, paired
        self.name = name or f"{a.name}->{b.name}"
        extras = {**a.spec.extras, "domains": (a.name, b.name), "paired": paired,
                  "num_classes_b": b.spec.num_classes}
        self.spec = DataSpec("image", a.spec.shape, a.spec.num_classes, extras)

    def __len__(self) -> int:
        return len(self.a)

    @property
    def x(self) -> torch.Tensor:
        return self.a.x

    @property
    def y(self) -> torch.Tensor | None:
        return self.a.y

    to_float = staticmethod(TensorData.to_float)

    def to(self, device: torch.device | str) -> TwoDomainData:
        self.a.to(device)
        self.b.to(device)
        return self

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.a.steps_per_epoch(batch_size)

    def batch(self, step: int, batch_size: int, seed: int, *, rank: int = 0,
              world_size: int = 1) -> dict[str, torch.Tensor]:
        """{"x", "y"?} of domain A and {"x_b", "y_b"?} of domain B for `step`."""
        out = self.a.batch(step, batch_size, seed, rank=rank, world_size=world_size)
        # paired: the same seed gives the same permutation (equal lengths), so pairs stay aligned
        seed_b = seed if self.paired else _mix(seed, 0xB)
        b = self.b.batch(step, batch_size, seed_b, rank=rank, world_size=world_size)
        return {**out, **{f"{k}_b": v for k, v in b.items()}}

    def ordered(self, batch_size: int):
        """The whole of domain A in order, each batch with B at the same positions (unpaired:
        B's examples cycled when B is shorter, the rest of a longer B unused)."""
        n_b = len(self.b)
        for i, batch in zip(range(0, len(self), batch_size), self.a.ordered(batch_size)):
            idx = torch.arange(i, i + len(batch["x"])) % n_b
            batch["x_b"] = self.to_float(self.b.x[idx.to(self.b.x.device)])
            if self.b.y is not None:
                batch["y_b"] = self.b.y[idx.to(self.b.y.device)]
            yield batch
