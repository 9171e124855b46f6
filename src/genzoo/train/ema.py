"""Exponential moving average of chosen submodules (e.g. a GAN's generator).

Kept as a flat dict of tensors keyed like the model's state_dict, so it saves to safetensors and
loads over the model's weights with `load_state_dict(ema, strict=False)`.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, modules: tuple[str, ...], decay: float):
        self.decay = decay
        self.params: dict[str, nn.Parameter] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        for m in modules:
            sub = getattr(model, m)
            self.params.update({f"{m}.{k}": p for k, p in sub.named_parameters()})
            self.buffers.update({f"{m}.{k}": b for k, b in sub.named_buffers()})
        self.shadow = {k: p.detach().clone() for k, p in {**self.params, **self.buffers}.items()}

    @torch.no_grad()
    def update(self) -> None:
        keys = list(self.params)
        shadow = [self.shadow[k] for k in keys]
        live = [self.params[k].detach() for k in keys]
        # shadow += (1 - decay) * (live - shadow), all tensors in one fused call
        torch._foreach_lerp_(shadow, live, 1.0 - self.decay)
        for k, b in self.buffers.items():  # running statistics are copied, not averaged
            self.shadow[k].copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            if k in self.shadow:
                self.shadow[k].copy_(v)
