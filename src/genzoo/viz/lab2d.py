"""Pictures for the 2-D mode-collapse lab: training animations and discriminator surfaces.

    training_gif(run_dir, "run/training.gif")          # samples/step-*.png, in step order
    decision_surface(model, data.x, "run/surface.png")  # what D thinks of the plane

The decision surface shows the discriminator's output over a grid covering the data, as the
objective's kind reads it: "logit" as sigmoid(output) = P(real), "critic" as the raw score,
"energy" as minus the energy; in all three, higher means "more real".
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from genzoo.errors import GenzooError, choices

_STEP_PNG = re.compile(r"^step-(\d+)\.png$")

# kind -> (transform of the raw output, colour-bar label, colour map)
KINDS = {
    "logit": (torch.sigmoid, "D(x) = sigmoid(output) = P(real)", "RdBu_r"),
    "critic": (lambda v: v, "critic score (higher = more real)", "viridis"),
    "score": (lambda v: v, "least-squares score (1 = real, 0 = fake)", "RdBu_r"),
    "energy": (lambda v: -v, "-energy (higher = more real)", "viridis"),
}


def _check_out(out_path: str | Path) -> Path:
    out = Path(out_path)
    if not out.parent.exists():
        raise GenzooError(f"directory {str(out.parent)!r} does not exist")
    return out


def sample_pngs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """A run's sample pictures `samples/step-N.png` as (step, path), in step order."""
    d = Path(run_dir) / "samples"
    found = []
    if d.is_dir():
        for p in d.iterdir():
            m = _STEP_PNG.match(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p))
    # numeric order: step-1000000 comes after step-999999 although it sorts before it as text
    return sorted(found)


def training_gif(run_dir: str | Path, out_path: str | Path, fps: float = 4) -> Path:
    """An animated GIF (looping forever) of a run's samples/step-*.png in step order.

    Frames of another size than the first are resized to it. Note that GIF encoders (Pillow's
    included) merge consecutive identical frames into one longer frame.
    """
    from PIL import Image

    if not Path(run_dir).is_dir():
        raise GenzooError(f"run directory {str(run_dir)!r} does not exist")
    if not fps > 0:
        raise GenzooError(f"fps={fps} must be positive")
    pngs = sample_pngs(run_dir)
    if not pngs:
        raise GenzooError(f"no sample pictures (samples/step-*.png) in {str(run_dir)!r}; "
                          "they are written every train.sample_every steps")
    out = _check_out(out_path)
    frames = []
    for _, p in pngs:
        with Image.open(p) as im:
            frame = im.convert("RGB")
        if frames and frame.size != frames[0].size:
            frame = frame.resize(frames[0].size, Image.Resampling.BILINEAR)
        frames.append(frame)
    duration = max(1, round(1000 / fps))  # milliseconds per frame
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:],
                   duration=duration, loop=0)
    return out


def _model_device(model) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device(getattr(model, "device", "cpu"))


def _kind(model) -> str:
    if not callable(getattr(model, "discriminate", None)):
        raise GenzooError(f"model {getattr(model, 'name', type(model).__name__)!r} has no "
                          "discriminator; the decision surface needs a GAN")
    kind = getattr(getattr(model, "objective", None), "kind", None)
    if kind not in KINDS:
        raise GenzooError(f"unknown discriminator output kind {kind!r}; "
                          f"choose one of: {choices(KINDS)}")
    return kind


def reference_extent(reference: torch.Tensor, margin: float = 0.25
                     ) -> tuple[float, float, float, float]:
    """A square (xmin, xmax, ymin, ymax) around 2-D points, `margin` of their span each side."""
    r = reference.detach().float().cpu()
    r = r[torch.isfinite(r).all(1)]
    if len(r) == 0:
        raise GenzooError("the reference data has no finite points to frame the plot")
    lo, hi = r.min(0).values, r.max(0).values
    mid = (lo + hi) / 2
    span = float((hi - lo).max())
    half = span / 2 + (margin * span if span > 0 else 1.0)
    return (float(mid[0]) - half, float(mid[0]) + half, float(mid[1]) - half, float(mid[1]) + half)


@torch.no_grad()
def discriminator_field(model, extent: tuple[float, float, float, float], resolution: int = 200,
                        batch_size: int = 4096) -> tuple[torch.Tensor, str]:
    """The discriminator over a resolution x resolution grid on `extent` (xmin, xmax, ymin, ymax).

    Returns (values, label): values is (resolution, resolution) on the CPU, row i at the i-th y
    from ymin up, column j at the j-th x from xmin; already transformed for the kind (see KINDS).
    """
    kind = _kind(model)
    x0, x1, y0, y1 = (float(v) for v in extent)
    if not (x0 < x1 and y0 < y1):
        raise GenzooError(f"extent {extent} must be (xmin, xmax, ymin, ymax) with min < max")
    if resolution < 2 or batch_size < 1:
        raise GenzooError(f"resolution={resolution} must be at least 2 and "
                          f"batch_size={batch_size} at least 1")
    device = _model_device(model)
    xs = torch.linspace(x0, x1, resolution)
    ys = torch.linspace(y0, y1, resolution)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    transform, label, _ = KINDS[kind]
    out = []
    for i in range(0, len(pts), batch_size):
        b = pts[i:i + batch_size].to(device)
        v = model.discriminate(b)
        if v.numel() != len(b):
            raise ValueError(f"discriminate returned shape {tuple(v.shape)} for {len(b)} points; "
                             "expected one output per point")
        out.append(transform(v.reshape(-1).float()).cpu())
    return torch.cat(out).reshape(resolution, resolution), label


def decision_surface(model, reference: torch.Tensor, out_path: str | Path, n_samples: int = 1000,
                     generator: torch.Generator | None = None,
                     extent: tuple[float, float, float, float] | None = None, *,
                     resolution: int = 200) -> Path:
    """A PNG of the discriminator's output over the plane, the real data and the generator's
    samples on top; the colour bar says how the output is read (see KINDS).

    `extent` (xmin, xmax, ymin, ymax) defaults to a square around `reference` (M, 2) with a
    margin; generator samples outside it are counted in the legend rather than shown.
    """
    from matplotlib.figure import Figure

    kind = _kind(model)
    if reference.dim() != 2 or reference.shape[1] != 2:
        raise GenzooError(f"the decision surface needs (M, 2) reference points; got shape "
                          f"{tuple(reference.shape)}")
    if n_samples < 0:
        raise GenzooError(f"n_samples={n_samples} must be 0 or more")
    out = _check_out(out_path)
    extent = reference_extent(reference) if extent is None else tuple(float(v) for v in extent)

    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()  # no batch-norm statistics updates while we look
    try:
        values, label = discriminator_field(model, extent, resolution)
        fake = None
        if n_samples > 0:
            g = torch.Generator().manual_seed(0) if generator is None else generator
            with torch.no_grad():
                fake = model.sample(n_samples, generator=g).detach().float().cpu()
    finally:
        if was_training:
            model.train(True)

    _, _, cmap = KINDS[kind]
    v = values.numpy()
    finite = values[torch.isfinite(values)]
    if kind == "logit":
        vmin, vmax = 0.0, 1.0
    elif len(finite):
        vmin, vmax = float(finite.min()), float(finite.max())
    else:
        vmin, vmax = 0.0, 1.0
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5

    fig = Figure(figsize=(5.6, 4.6), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(v, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="bilinear", aspect="equal")
    if kind == "logit" and len(finite) and float(finite.min()) < 0.5 < float(finite.max()):
        xs = torch.linspace(extent[0], extent[1], v.shape[1]).numpy()
        ys = torch.linspace(extent[2], extent[3], v.shape[0]).numpy()
        ax.contour(xs, ys, v, levels=[0.5], colors="k", linewidths=0.8, linestyles="--")
    fig.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.04)
    r = reference.detach().float().cpu().numpy()
    ax.scatter(r[:, 0], r[:, 1], s=2, c="k", edgecolors="none", alpha=0.6, label="data")
    if fake is not None:
        f = fake.reshape(len(fake), -1)[:, :2]
        inside = (torch.isfinite(f).all(1) & (f[:, 0] >= extent[0]) & (f[:, 0] <= extent[1])
                  & (f[:, 1] >= extent[2]) & (f[:, 1] <= extent[3]))
        outside = int((~inside).sum())
        shown = f[inside].numpy()
        tag = f"samples ({outside} outside)" if outside else "samples"
        ax.scatter(shown[:, 0], shown[:, 1], s=4, c="#d62728", marker="x", linewidths=0.6,
                   label=tag)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    name = getattr(getattr(model, "objective", None), "name", None)
    ax.set_title(f"decision surface: {name} ({kind})" if name else f"decision surface ({kind})")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8, markerscale=3)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return out
