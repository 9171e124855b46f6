"""Latent traversals: change one latent coordinate at a time and decode (Higgins et al. 2017,
beta-VAE, fig. 1-2). Row d of the grid walks latent d from -span to +span (in prior std units)
around a base code, all other coordinates fixed; a disentangled latent changes one factor of
the image along its row.
"""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError


@torch.no_grad()
def traversal_images(model, base: torch.Tensor, dims: list[int], steps: int = 11,
                     span: float = 3.0) -> torch.Tensor:
    """(len(dims) * steps, *shape) decoded images, row-major: row i walks latent dims[i]."""
    if not hasattr(model, "decode") or not hasattr(model, "latent_dim"):
        raise GenzooError(f"model {model.name!r} has no latent code to traverse; traversals "
                          "need a model with encode/decode (vae, ae)")
    L = model.latent_dim
    bad = [d for d in dims if not 0 <= d < L]
    if bad:
        raise GenzooError(f"latent dims {bad} do not exist; the model has {L} (0..{L - 1})")
    if steps < 2 or not span > 0:
        raise GenzooError("a traversal needs at least 2 steps and a positive span")
    values = torch.linspace(-span, span, steps)  # (S,)
    z = base.view(1, 1, L).repeat(len(dims), steps, 1)  # (R, S, L)
    for i, d in enumerate(dims):
        z[i, :, d] = values
    return model.decode(z.view(-1, L).to(base.device))  # (R*S, *shape)


def write_traversal(model, data, path, *, dims: list[int] | None = None, steps: int = 11,
                    span: float = 3.0, index: int = 0) -> torch.Tensor:
    """Traverse around the code of test example `index` (its posterior mean); save a PNG."""
    from genzoo.viz.grid import image_grid, save_image

    if model.spec.kind != "image":
        raise GenzooError("traversal pictures need an image model")
    if not 0 <= index < len(data):
        raise GenzooError(f"--index {index} is outside the test split (0..{len(data) - 1})")
    x = data.to_float(data.x[index:index + 1]).to(model.device)
    mu, _ = model.encode(x)
    dims = list(range(min(model.latent_dim, 10))) if dims is None else dims
    imgs = traversal_images(model, mu[0], dims, steps, span)
    grid = image_grid(imgs.cpu(), nrow=steps)
    save_image(grid, path)
    return grid
