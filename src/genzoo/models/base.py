"""The model contract every genzoo model follows, and saving/loading weights with their config.

A model is `nn.Module -> GenerativeModel -> concrete model`, one level deep. It declares:

- `Config`: a dataclass beside it; `check()` on it raises GenzooError for bad values.
- `phases`: the optimisation phases. The trainer builds one optimizer per phase over the phase's
  modules and, at every step where `step % interval == 0`, runs zero_grad -> loss -> backward ->
  (clip) -> step for it. n_critic is an interval: the generator's phase has interval n_critic.
- `loss(batch, phase) -> dict`: a scalar "loss" to minimise plus detached scalars to log.
- `sample(n, generator=None, **cond)`: n examples in data space (images in [-1, 1]).
- optional: `log_prob(x)` (nats per example), `encode`/`decode`, `set_progress(step)`.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: which submodules it trains, how often, optional own settings."""

    name: str  # "main", "D", "G", ...
    modules: tuple[str, ...]  # attribute names of the submodules (or parameters) it updates
    interval: int = 1  # runs at steps where step % interval == 0
    lr: float | None = None  # None: the run's train.lr
    betas: tuple[float, float] | None = None  # None: (train.beta1, train.beta2)
    optimizer: str | None = None  # None: train.optimizer


class GenerativeModel(nn.Module, metaclass=ABCMeta):
    name: ClassVar[str] = ""  # set by @register_model
    description: ClassVar[str] = ""  # one line for `genzoo list`
    Config: ClassVar[type]
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)  # DataSpec kinds it can model
    ema_modules: ClassVar[tuple[str, ...]] = ()  # submodules averaged when train.ema_decay > 0
    generates: ClassVar[bool] = True  # False: not generative (dann): `sample` raises GenzooError
    two_domains: ClassVar[bool] = False  # True: trains on two datasets (--set target=NAME)
    #                                   and the trainer draws no sample grids

    @classmethod
    def complete_config(cls, run_cfg) -> None:
        """Fill model settings that follow from the rest of the run's config (called by
        build_config before validation, so config.yaml records the values used). No-op here."""

    def __init__(self, cfg, spec: DataSpec):
        super().__init__()
        if spec.kind not in self.data_kinds:
            raise GenzooError(f"model {self.name!r} cannot model {spec.kind} data; it takes "
                              f"{', '.join(self.data_kinds)} datasets")
        self.cfg = cfg
        self.spec = spec

    # --- the contract: abstract, so a model missing one cannot even be built ------------------
    @property
    @abstractmethod
    def phases(self) -> tuple[Phase, ...]:
        """The optimisation phases, in the order the trainer runs them within a step."""

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        """{"loss": scalar to minimise in `phase`, other detached scalars to log}."""

    @abstractmethod
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        """n examples in data space (images in [-1, 1]); no gradients needed."""

    def set_progress(self, step: int) -> None:
        """Called by the trainer before every step (schedules, annealing, fade-in)."""

    def post_step(self, phase: str) -> None:
        """Called after each optimizer step of `phase` (parameter constraints, e.g. clipping)."""

    # --- helpers shared by all models --------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        return torch.device("cpu")

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise on the model's device.

        With a (CPU) generator the numbers are drawn on the CPU and moved, so fixed noise gives
        the same samples on every device; without one, the device's global RNG is used.
        """
        if generator is None:
            return torch.randn(*shape, device=self.device)
        return torch.randn(*shape, generator=generator).to(self.device)

    def phase_parameters(self, phase: Phase) -> Iterator[nn.Parameter]:
        for m in phase.modules:
            obj = getattr(self, m)
            if isinstance(obj, nn.Parameter):
                yield obj
            else:
                yield from obj.parameters()

    # --- persistence -------------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        return {
            "genzoo_model": self.name,
            "config": json.dumps(dataclasses.asdict(self.cfg)),
            "spec": json.dumps(self.spec.to_dict()),
        }

    def save(self, path: str | Path) -> None:
        """Weights and buffers as safetensors, with the config and data spec as metadata."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path), metadata=self.metadata())


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; a clear error for a damaged file."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise GenzooError(f"weights file {str(p)!r} does not exist")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(p)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise GenzooError(f"weights file {str(p)!r} is damaged or not safetensors ({e})") from None
