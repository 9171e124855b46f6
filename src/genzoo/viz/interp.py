"""Walks through latent space: linear and spherical interpolation, and a grid of walks."""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b for rows a, b (N, D) and t (T,) -> (N, T, D)."""
    t = t.view(1, -1, 1)
    return (1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; for GAN latents White 2016, arXiv:1609.04468):
    follows the great circle between a and b, so the walk keeps the norm that Gaussian latents
    concentrate on instead of cutting through the low-density centre. (N, D), (T,) -> (N, T, D).
    Norms are interpolated linearly; nearly parallel pairs fall back to lerp."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)  # (N, 1)
    ua, ub = a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)
    omega = torch.acos((ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0))  # (N, 1)
    so = torch.sin(omega)
    t3 = t.view(1, -1, 1)
    om, s = omega.unsqueeze(1), so.unsqueeze(1)  # (N, 1, 1)
    safe = s.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - t3) * om) / s.clamp_min(1e-12), 1 - t3)
    wb = torch.where(safe, torch.sin(t3 * om) / s.clamp_min(1e-12), t3)
    unit = wa * ua.unsqueeze(1) + wb * ub.unsqueeze(1)  # (N, T, D) on the unit sphere
    unit = unit / unit.norm(dim=2, keepdim=True).clamp_min(1e-12)
    norm = (1 - t3) * na.unsqueeze(1) + t3 * nb.unsqueeze(1)
    return unit * norm


@torch.no_grad()
def interpolation_images(model, rows: int = 8, steps: int = 10, mode: str = "slerp",
                         seed: int = 0) -> torch.Tensor:
    """rows x steps decoded latents, each row a walk between two random latents: (rows*steps,
    *shape) in data space, row-major."""
    if mode not in ("lerp", "slerp"):
        raise GenzooError(f"--mode {mode!r} is not valid; choose lerp or slerp")
    if not hasattr(model, "decode") or not hasattr(model, "latent_dim"):
        raise GenzooError(f"model {model.name!r} has no latent space to walk through")
    if rows < 1 or steps < 2:
        raise GenzooError("interpolation needs rows >= 1 and steps >= 2")
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, model.latent_dim, generator=g)
    b = torch.randn(rows, model.latent_dim, generator=g)
    if getattr(model.cfg, "latent", "gaussian") == "sphere":  # endpoints on the model's sphere
        r = model.latent_dim ** 0.5
        a, b = a / a.norm(dim=1, keepdim=True) * r, b / b.norm(dim=1, keepdim=True) * r
    t = torch.linspace(0, 1, steps)
    z = (slerp if mode == "slerp" else lerp)(a, b, t).reshape(rows * steps, -1)  # (R*T, D)
    return model.decode(z.to(model.device))


def interpolation_gif(x: torch.Tensor, rows: int, steps: int, path, fps: float = 8) -> None:
    """An animated GIF of the walks: frame t shows every row's image at step t, and the walk
    plays forward and back. x: (rows * steps, C, H, W) row-major, as interpolation_images."""
    from PIL import Image

    from genzoo.viz.grid import image_grid

    x = x.reshape(rows, steps, *x.shape[1:])  # (R, T, C, H, W)
    frames = []
    for t in list(range(steps)) + list(range(steps - 2, 0, -1)):
        g = image_grid(x[:, t], nrow=min(rows, 8), pad=2)
        arr = (g.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        frames.append(Image.fromarray(arr))
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=max(1, round(1000 / fps)), loop=0)
