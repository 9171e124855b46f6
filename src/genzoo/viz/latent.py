"""The latent picture: codes of the test split as a scatter plot coloured by class (the
adversarial autoencoder's figures, Makhzani et al. 2015, arXiv:1511.05644, fig. 2 and 4).

Codes are `encode(x)` (the posterior mean for a VAE). A 2-D code is drawn as it is; a larger one
through its first two principal components (the axis labels say which). Prior samples, when the
model can draw them (`prior_sample`), are drawn underneath in grey, so a reader sees how well
q(z) covers p(z).
"""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError


@torch.no_grad()
def latent_codes(model, data, n: int = 2000, batch_size: int = 250) -> tuple:
    """(codes (N, F), labels (N,) or None) of the first n examples of a split."""
    if not callable(getattr(model, "encode", None)):
        raise GenzooError(f"model {model.name!r} has no encoder; the latent picture needs "
                          "encode(x) (vae, aae, factorvae, ...)")
    zs, ys, count = [], [], 0
    for b in data.ordered(batch_size):
        out = model.encode(b["x"].to(model.device))
        z = out[0] if isinstance(out, (tuple, list)) else out
        zs.append(z.flatten(1).float().cpu())
        if "y" in b:
            ys.append(b["y"].cpu())
        count += len(z)
        if count >= n:
            break
    return torch.cat(zs)[:n], (torch.cat(ys)[:n] if ys else None)


def _project(z: torch.Tensor, prior: torch.Tensor | None):
    if z.shape[1] == 2:
        return z, prior, ("z1", "z2")
    mean = z.mean(0)
    _, _, v = torch.pca_lowrank(z - mean, q=2, center=False)  # (F, 2) principal axes
    proj = (z - mean) @ v
    return proj, None if prior is None else (prior - mean) @ v, ("PC 1", "PC 2")


def save_latent_scatter(model, data, path: str | Path, n: int = 2000,
                        title: str = "") -> torch.Tensor:
    """Scatter of test codes coloured by label, prior samples in grey; PNG; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.viz.grid import save_figure

    z, y = latent_codes(model, data, n)
    prior = None
    if callable(getattr(model, "prior_sample", None)):
        prior = model.prior_sample(len(z), generator=torch.Generator().manual_seed(0)).cpu()
        prior = prior if prior.shape[1] == z.shape[1] else None
    pz, pp, (xl, yl) = _project(z, prior)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if pp is not None:
        ax.scatter(pp[:, 0], pp[:, 1], s=2, c="#cccccc", label="prior p(z)")
    if y is None:
        ax.scatter(pz[:, 0], pz[:, 1], s=3, c="#1f77b4", label="codes")
    else:
        sc = ax.scatter(pz[:, 0], pz[:, 1], s=3, c=y.numpy(), cmap="tab10", vmin=-0.5,
                        vmax=9.5)
        fig.colorbar(sc, ax=ax, ticks=range(10), label="class")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(title or f"{model.name}: test codes by class")
    if pp is not None:
        ax.legend(loc="upper right", markerscale=4)
    return save_figure(fig, path)
