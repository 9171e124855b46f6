"""`genzoo translate RUN --input PATH --direction AtoB|BtoA --out PATH`: a translation run's
generator applied to an image file or a folder of images.

Each image is read with PIL, converted to the model's channels (grey or RGB), resized to the
model's image size (bilinear, both sides) and scaled to [-1, 1]; the translation is written as
PNG at the model's size. A folder translates every image in it (not its subfolders) into the
--out folder under the same stem with `.png`; unreadable files are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.errors import GenzooError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _read(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """An image file -> (C, H, W) in [-1, 1] at the model's shape."""
    from PIL import Image

    c, h, w = shape
    with Image.open(path) as img:
        img = img.convert("L" if c == 1 else "RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.float32)  # (H, W) or (H, W, 3)
    x = torch.from_numpy(arr[None] if c == 1 else arr.transpose(2, 0, 1).copy())
    return x / 127.5 - 1.0


def _write(x: torch.Tensor, path: Path) -> None:
    from genzoo.viz.grid import save_image

    save_image((x.clamp(-1, 1) + 1) / 2, path)  # (C, H, W) in [0, 1]


def translate_files(run_dir: str | Path, input_path: str | Path, direction: str,
                    out: str | Path, *, ema: bool = True, batch_size: int = 64) -> dict:
    """Translate one image (out: a .png file) or a folder of images (out: a folder); returns
    {"written": [paths], "skipped": n, "info": checkpoint description}."""
    from genzoo.train.rundir import load_run

    src, out = Path(input_path), Path(out)
    if not src.exists():
        raise GenzooError(f"--input {str(src)!r} does not exist; give an image file or a "
                          "folder of images")
    if src.is_file() and src.suffix.lower() not in EXTENSIONS:
        raise GenzooError(f"--input {str(src)!r} is not an image file (extensions: "
                          f"{' '.join(sorted(EXTENSIONS))})")
    if src.is_file() and out.suffix.lower() != ".png":
        raise GenzooError(f"--out {str(out)!r} must be a .png file for one input image")
    if src.is_dir() and out.exists() and not out.is_dir():
        raise GenzooError(f"--out {str(out)!r} is a file; give a folder for a folder of inputs")
    if src.is_file() and not out.parent.is_dir():
        raise GenzooError(f"directory {str(out.parent)!r} does not exist")
    model, _, info = load_run(run_dir, ema=ema)
    directions = getattr(model, "directions", ())
    if not directions:
        raise GenzooError(f"{str(run_dir)!r} holds a {model.name!r} run; translate needs a "
                          "translation model (cyclegan, pix2pix)")
    if direction not in ("AtoB", "BtoA"):
        raise GenzooError(f"--direction {direction!r} is not valid; choose "
                          f"{' or '.join(directions)}")
    if direction not in directions:
        raise GenzooError(f"a {model.name} model translates {' and '.join(directions)} only, "
                          f"not {direction}")
    shape = model.spec.shape  # both domains have the model's shape

    files = [src] if src.is_file() else sorted(
        p for p in src.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise GenzooError(f"--input {str(src)!r} holds no images (extensions: "
                          f"{' '.join(sorted(EXTENSIONS))})")
    images, targets, skipped = [], [], 0
    for f in files:
        try:
            images.append(_read(f, tuple(shape)))
        except (OSError, ValueError, SyntaxError) as e:
            if src.is_file():
                raise GenzooError(f"cannot read {str(f)!r} as an image ({e})") from None
            skipped += 1
            continue
        targets.append(out if src.is_file() else out / f"{f.stem}.png")
    if not images:
        raise GenzooError(f"none of the {len(files)} image files in {str(src)!r} could be read")
    if src.is_dir():
        out.mkdir(parents=True, exist_ok=True)
    x = torch.stack(images)  # (N, C, H, W)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            y = model.translate(x[i:i + batch_size].to(model.device), direction).cpu()
            for img, path in zip(y, targets[i:i + batch_size]):
                _write(img, path)
    return {"written": targets, "skipped": skipped, "info": info}
