"""Sample pictures: image grids, and scatter plots for 2-D point data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 2) -> torch.Tensor:
    """(N, C, H, W) images in [-1, 1] -> one (3 or C, H', W') grid in [0, 1]."""
    assert x.dim() == 4, f"expected (N, C, H, W) images, got shape {tuple(x.shape)}"
    nrow = nrow or max(1, int(math.ceil(math.sqrt(x.shape[0]))))
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2)
    return make_grid(x, nrow=nrow, padding=pad, pad_value=1.0)


def save_image(grid: torch.Tensor, path: str | Path) -> None:
    """Write a (C, H, W) tensor in [0, 1] as PNG (greyscale when C == 1)."""
    arr = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    Image.fromarray(arr).save(path)


def save_figure(fig, path: str | Path) -> torch.Tensor:
    """Save a matplotlib figure as PNG, close it; return the picture as (3, H, W) in [0, 1]."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255


def scatter_image(points: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None,
                  title: str = "") -> torch.Tensor:
    """Scatter plot of (N, 2) samples over reference data; saves a PNG, returns it as a tensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        r = reference.detach().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="#bbbbbb", label="data")
    p = points.detach().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=3, c="#d62728", label="samples")
    if reference is not None:  # fixed limits from the data: frames of a training GIF line up
        lo, hi = r.min(0), r.max(0)
        c, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.3 + 1e-6
        ax.set_xlim(c[0] - half, c[0] + half)
        ax.set_ylim(c[1] - half, c[1] + half)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    return save_figure(fig, path)


def save_samples(x: torch.Tensor, kind: str, path: str | Path,
                 reference: torch.Tensor | None = None, title: str = "",
                 sample_rate: int | None = None) -> torch.Tensor:
    """A picture of samples of any data kind; returns it as a (C, H, W) tensor in [0, 1]."""
    if kind == "points":
        return scatter_image(x, path, reference, title)
    if kind == "audio":  # waveforms and spectrograms; sample_rate labels the axes
        from genzoo.viz.audio import audio_image

        return audio_image(x, path, sample_rate, title)
    if kind == "video":  # (N, T, C, H, W): one row of frames per video
        grid = image_grid(x.flatten(0, 1), nrow=x.shape[1])
        save_image(grid, path)
        return grid
    if kind == "image":
        grid = image_grid(x)
        save_image(grid, path)
        return grid
    raise ValueError(f"no picture for {kind} data yet")


def write_samples_file(model, cfg, out: str | Path, *, n: int, seed: int) -> Path:
    """Samples to `.png` (a grid, a scatter plot for points, waveforms and spectrograms for
    audio), `.npy` (raw, data space) or, for audio, `.wav`: X.wav writes X-000.wav, X-001.wav,
    ... (16-bit PCM, one per sample) and their picture X.png; returns the PNG's path."""
    from genzoo.errors import GenzooError

    out = Path(out)
    audio = model.spec.kind == "audio"
    if out.suffix.lower() not in (".png", ".npy") + ((".wav",) if audio else ()):
        raise GenzooError(f"--out {str(out)!r} must end in .png (picture) or .npy (raw samples)"
                          + (" or .wav (audio files)" if audio else ""))
    if not out.parent.exists():
        raise GenzooError(f"directory {str(out.parent)!r} does not exist")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = model.sample(n, generator=g).cpu()
    if out.suffix.lower() == ".npy":
        np.save(out, x.numpy())
    elif audio:
        from genzoo.data.audio import audio_settings
        from genzoo.viz.audio import audio_image, write_wav

        rate = audio_settings(cfg.data)[0]
        if out.suffix.lower() == ".wav":
            for i, clip in enumerate(x):
                write_wav(out.with_name(f"{out.stem}-{i:03d}.wav"), clip, rate)
            out = out.with_suffix(".png")
        audio_image(x, out, rate, title=f"{n} samples")
    else:
        ref = None
        if model.spec.kind == "points":
            from genzoo.data import load_dataset

            ref = load_dataset(cfg.data, "train").x[:2000]
        save_samples(x, model.spec.kind, out, reference=ref, title=f"{n} samples")
    return out
