"""The StyleGAN paper's figures (Karras et al. 2019, arXiv:1812.04948) from a trained run.

    style_mixing_figure(model, "mix.png")   # fig. 3: coarse/middle/fine styles from source B
    noise_figure(model, "noise.png")        # fig. 5: noise in all, no, fine, coarse layers
    truncation_figure(model, "trunc.png")   # fig. 8: the same z at several psi

Every figure is drawn from fixed seeds, so two runs give comparable pictures.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.viz.grid import image_grid

BLANK = -1.0  # an empty cell: black (images are in [-1, 1])


def _check(model) -> None:
    if not hasattr(model, "synthesize") or not hasattr(model, "truncate"):
        raise GenzooError(f"this figure needs a stylegan run, not {model.name!r}")


def labelled_grid(cells: torch.Tensor, path: str | Path, *, row_labels: list[str],
                  col_labels: list[str], title: str = "") -> None:
    """cells (R, K, C, H, W) images in [-1, 1] as an R x K grid with row and column labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.viz.grid import save_figure

    r, k, _, h, w = cells.shape
    grid = image_grid(cells.reshape(r * k, *cells.shape[2:]), nrow=k, pad=2)  # (3, H', W')
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * k, 0.6 + 0.9 * r), dpi=110)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([2 + (w + 2) * j + w / 2 for j in range(k)], col_labels, fontsize=7)
    ax.set_yticks([2 + (h + 2) * i + h / 2 for i in range(r)], row_labels, fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8, pad=14)
    save_figure(fig, path)


@torch.no_grad()
def style_mixing_figure(model, path: str | Path, *, n_a: int = 3, n_b: int = 5,
                        seed: int = 0) -> None:
    """Row 0: sources B. Then, per group (coarse, middle, fine), a row per source A: A itself,
    then A with that group's styles taken from each B (the rest from A). One fixed noise."""
    from genzoo.models.stylegan import style_groups

    _check(model)
    g = torch.Generator().manual_seed(seed)
    za, zb = torch.randn(n_a, model.latent_dim, generator=g), \
        torch.randn(n_b, model.latent_dim, generator=g)
    wa, wb = model.styles(za), model.styles(zb)  # (n, L, w_dim), truncated as configured
    def img(ws):  # one fixed noise realisation for every image
        return model.synthesize(ws, model.fixed_noise(ws.shape[0], seed))

    xa, xb = img(wa), img(wb)
    shape = xa.shape[1:]
    rows = [torch.cat([torch.full((1, *shape), BLANK), xb])]
    labels = ["source B"]
    for name, layers in style_groups(model.levels).items():
        for i in range(n_a):
            ws = wa[i:i + 1].repeat(n_b, 1, 1)  # (n_b, L, w_dim)
            ws[:, layers] = wb[:, layers]
            rows.append(torch.cat([xa[i:i + 1], img(ws)]))
            labels.append(f"{name}: A{i}")
    cols = ["source A"] + [f"B{j}" for j in range(n_b)]
    groups = ", ".join(f"{k} {v[0]}-{v[-1]}" if v else f"{k} none"
                       for k, v in style_groups(model.levels).items())
    labelled_grid(torch.stack(rows), path, row_labels=labels, col_labels=cols,
                  title=f"A with styles from B (layers: {groups})")


@torch.no_grad()
def noise_figure(model, path: str | Path, *, n: int = 4, seed: int = 0,
                 realisations: int = 16) -> None:
    """For n w's: noise in all layers, in none, in the fine layers only, in the coarse only
    (each from the same w), and the per-pixel std over `realisations` noise draws (all layers),
    stretched to the picture's range."""
    from genzoo.models.stylegan import style_groups

    _check(model)
    if not model.cfg.noise:
        raise GenzooError("this run was trained without noise inputs (noise=false)")
    g = torch.Generator().manual_seed(seed)
    ws = model.styles(torch.randn(n, model.latent_dim, generator=g))
    groups = style_groups(model.levels)
    cases = {"all layers": None, "none": [], "fine only": groups["fine"],
             "coarse only": groups["coarse"]}
    cols = []
    for layers in cases.values():
        noise = model.noise_inputs(n, layers=layers,
                                   generator=torch.Generator().manual_seed(seed + 1))
        cols.append(model.synthesize(ws, noise))
    draws = torch.stack([model.synthesize(ws, model.noise_inputs(n, generator=g))
                         for _ in range(realisations)])  # (R, n, C, H, W)
    std = draws.std(0)
    std = std / std.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8) * 2 - 1
    cells = torch.stack(cols + [std], 1)  # (n, 5, C, H, W)
    labelled_grid(cells, path, row_labels=[f"w{i}" for i in range(n)],
                  col_labels=list(cases) + ["std (all)"],
                  title="noise inputs, same w in each row")


@torch.no_grad()
def truncation_figure(model, path: str | Path, *, psis=(-1.0, -0.5, 0.0, 0.5, 0.7, 1.0),
                      n: int = 6, seed: int = 0) -> None:
    """Rows: latents z; columns: w = w_avg + psi (w - w_avg) on every layer; one fixed noise."""
    _check(model)
    g = torch.Generator().manual_seed(seed)
    ws = model.styles(torch.randn(n, model.latent_dim, generator=g), psi=1.0)
    noise = model.fixed_noise(n, seed)
    cols = [model.synthesize(model.truncate(ws, psi), noise) for psi in psis]
    labelled_grid(torch.stack(cols, 1), path, row_labels=[f"z{i}" for i in range(n)],
                  col_labels=[f"psi {p:g}" for p in psis], title="truncation trick")
