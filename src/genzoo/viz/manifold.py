"""Latent-space pictures for VAEs: the 2-D manifold and the latent-size comparison."""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.viz.grid import image_grid, save_image


@torch.no_grad()
def manifold_grid(model, n: int = 20) -> torch.Tensor:
    """Decode an n x n grid of latents through the inverse Gaussian CDF (Kingma & Welling,
    arXiv:1312.6114, fig. 4): equal steps in probability mass under the prior, so the picture
    covers the prior evenly instead of wasting cells in its tails."""
    if getattr(model.cfg, "latent_dim", None) != 2:
        dim = getattr(model.cfg, "latent_dim", None)
        raise GenzooError(f"the manifold plot needs a 2-D latent space; this run has "
                          f"latent_dim={dim} (train with --set latent_dim=2)")
    if model.spec.kind != "image":
        raise GenzooError("the manifold plot needs an image model")
    p = torch.linspace(0.5 / n, 1 - 0.5 / n, n, dtype=torch.float64)
    q = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    # rows go down in z2 (top = high), columns right in z1, like a plot's axes
    z2, z1 = torch.meshgrid(q.flip(0), q, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], 1).to(model.device)  # (n*n, 2)
    x = model.decode(z)
    return image_grid(x, nrow=n, pad=0)


def save_manifold(model, path: str | Path, n: int = 20) -> None:
    save_image(manifold_grid(model, n), path)


def latent_dims_figure(rows: list[tuple[str, torch.Tensor]], path: str | Path) -> None:
    """Sample grids side by side, one per run, each titled (e.g. 'latent 2')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3.3), dpi=120)
    axes = [axes] if len(rows) == 1 else list(axes)
    for ax, (title, x) in zip(axes, rows):
        grid = image_grid(x, pad=1)
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
