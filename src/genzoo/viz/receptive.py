"""Receptive fields of autoregressive models: which inputs influence the output at a position.

Works for any model with `causal_logits(x)`: outputs whose last one (sequences, e.g. WaveNet) or
two (images, e.g. PixelCNN) dimensions are aligned with those of the input x. The influence of
input position q on the output at position p is |d o(p) / d x(q)|, summed over input channels;
o(p) is the projection of all logits at p on a fixed random direction, which is non-zero wherever
any logit's gradient is (almost surely) and costs one backward pass instead of one per logit.
Exactly zero influence is drawn white: a causal model shows nothing at or after p (the raster
order's future), and the plain PixelCNN shows its blind spot (arXiv:1606.05328, fig. 1).
"""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError


def influence(model, x: torch.Tensor, position: tuple[int, ...]) -> torch.Tensor:
    """|gradient| of the logits at `position` w.r.t. x (1, C, *S), summed over C: shape S."""
    if not hasattr(model, "causal_logits"):
        raise GenzooError(f"model {getattr(model, 'name', type(model).__name__)!r} has no "
                          "causal_logits; the receptive-field plot is for autoregressive models "
                          "(pixelcnn, wavenet)")
    spatial = x.shape[2:]
    if len(position) != len(spatial):
        raise GenzooError(f"--position needs {len(spatial)} coordinate(s) for inputs of shape "
                          f"{tuple(spatial)}, got {','.join(map(str, position))}")
    for p, s in zip(position, spatial):
        if not 0 <= p < s:
            raise GenzooError(f"--position {','.join(map(str, position))} is outside the "
                              f"input of size {'x'.join(map(str, spatial))}")
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model.causal_logits(x)  # (1, ..., *S)
        assert tuple(out.shape[-len(spatial):]) == tuple(spatial), \
            f"causal_logits gave {tuple(out.shape)}, not aligned with the input {tuple(x.shape)}"
        sel = out[(0, ...) + tuple(position)]  # every logit at the position
        w = torch.randn(sel.shape, generator=torch.Generator().manual_seed(0)).to(sel.device)
        (grad,) = torch.autograd.grad((sel * w).sum(), x)
    return grad[0].abs().sum(0).cpu()  # (*S)


def _input_picture(x: torch.Tensor):
    """What to draw for the input (C, *S): an image, or token ids for one-hot inputs."""
    if x.shape[0] in (1, 3):
        return ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).squeeze(-1)
    return x.detach().cpu().argmax(0)  # one-hot codes (K, h, w) -> token ids (h, w)


def save_receptive_field(model, x: torch.Tensor, position: tuple[int, ...],
                         path: str | Path, title: str = "") -> torch.Tensor:
    """Draw the input and the influence map with `position` marked; returns the map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    g = influence(model, x, position)
    fig_title = title or f"receptive field at {','.join(map(str, position))}"
    if g.dim() == 1:  # sequences: influence over time
        fig, ax = plt.subplots(figsize=(8, 2.8), dpi=110)
        t = np.arange(len(g))
        ax.plot(t, g.numpy(), lw=1)
        ax.axvline(position[0], color="red", lw=1, label="output position")
        ax.set_xlabel("input time step")
        ax.set_ylabel("|d logits / d x|")
        ax.legend(fontsize=7)
        ax.set_title(fig_title)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), dpi=110)
        pic = _input_picture(x[0])
        axes[0].imshow(pic.numpy(), cmap="gray" if pic.dim() == 2 else None,
                       interpolation="nearest")
        axes[0].set_title("input")
        shown = np.ma.masked_equal(g.numpy(), 0.0)  # exactly zero: left white
        im = axes[1].imshow(np.ma.log10(shown), cmap="viridis", interpolation="nearest")
        axes[1].set_title("log10 |d logits / d x| (white: 0)")
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        i, j = position
        for ax in axes:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(fig_title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return g
