"""Content/pose pictures of video models with separate content and pose codes (DrNet).

    analogy            the analogy grid of DrNet's paper (arXiv 1705.10915, fig. 3): the top row
                       is a pose video; each row below starts with a content frame (frame 0 of
                       another test video) followed by that content moved along the top row's
                       poses
    pose-interpolation each row holds one content frame; the columns decode it with pose vectors
                       linearly interpolated between the first and last frame of a pose video
    prediction         future frames (DrNet with its pose LSTM, arXiv 1705.10915 sec. 3.2): for
                       each test video a row of its true frames and below it the predicted ones,
                       blank under the observed frames; a red bar separates observed from
                       predicted columns
"""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.viz.grid import image_grid, save_image


def _check(model, data, index: int, what: str) -> None:
    if not hasattr(model, "analogy"):
        raise GenzooError(f"plot {what} needs a run of a content/pose model (drnet), not "
                          f"{model.name}")
    if not 0 <= index < len(data.x):
        raise GenzooError(f"--pose {index} is outside the test videos (0..{len(data.x) - 1})")


def _contents(data, n: int, skip: int) -> torch.Tensor:
    """Frame 0 of the first n test videos other than `skip`: (n, C, H, W) in data space."""
    idx = [i for i in range(min(len(data.x), n + 1)) if i != skip][:n]
    return data.to_float(data.x[idx, 0])


@torch.no_grad()
def analogy_grid(model, data, out: str | Path, *, rows: int = 6, pose: int = 0) -> Path:
    """Write the analogy grid ((rows + 1) x (T + 1) tiles) of test video `pose`'s motion."""
    _check(model, data, pose, "analogy")
    dev = model.device
    pose_video = data.to_float(data.x[pose:pose + 1]).to(dev)  # (1, T, C, H, W)
    content = _contents(data, rows, pose).to(dev)  # (R, C, H, W)
    r, t = len(content), pose_video.shape[1]
    gen = model.analogy(content, pose_video.expand(r, *pose_video.shape[1:]))  # (R, T, C, H, W)
    blank = torch.zeros_like(content[:1])  # mid grey: the corner has no picture
    top = torch.cat([blank, pose_video[0]])  # (T + 1, C, H, W)
    body = torch.cat([content[:, None], gen], 1).flatten(0, 1)  # (R * (T + 1), C, H, W)
    out = Path(out)
    save_image(image_grid(torch.cat([top, body]).cpu(), nrow=t + 1), out)
    return out


@torch.no_grad()
def pose_interpolation(model, data, out: str | Path, *, rows: int = 6, pose: int = 0,
                       steps: int = 10) -> Path:
    """Write rows x (steps + 1) tiles: each content frame decoded along a straight line in pose
    space from the first to the last frame of test video `pose`."""
    _check(model, data, pose, "pose-interpolation")
    if steps < 2:
        raise GenzooError(f"--steps {steps} must be at least 2")
    dev = model.device
    video = data.to_float(data.x[pose]).to(dev)  # (T, C, H, W)
    ends = model.pose(video[[0, -1]])  # (2, Dp): poses of the first and last frame
    w = torch.linspace(0, 1, steps, device=dev)[:, None]
    path = (1 - w) * ends[0] + w * ends[1]  # (steps, Dp)
    content = _contents(data, rows, pose).to(dev)  # (R, C, H, W)
    r = len(content)
    h_c, skips = model.encode_content(content)  # (R, Dc) [and the maps of skip connections]
    gen = model.decode_sequence(h_c, path.expand(r, *path.shape), skips)  # (R, steps, C, H, W)
    tiles = torch.cat([content[:, None], gen], 1).flatten(0, 1)  # (R * (steps + 1), C, H, W)
    out = Path(out)
    save_image(image_grid(tiles.cpu(), nrow=steps + 1), out)
    return out


@torch.no_grad()
def prediction_grid(model, data, out: str | Path, *, rows: int = 4, pad: int = 2) -> Path:
    """Write 2 * rows x T tiles: for each of the first `rows` test videos its true frames, then
    the model's prediction of frames n_past.. from the first n_past."""
    if not callable(getattr(model, "predict", None)):  # a drnet without the LSTM: predict refuses
        raise GenzooError("plot prediction needs a drnet run trained with the pose LSTM "
                          "(--set model.lstm=true); this run has none")
    n_past, t = model.cfg.n_past, data.spec.shape[0]
    video = data.to_float(data.x[:rows]).to(model.device)  # (R, T, C, H, W)
    pred = model.predict(video, n_past, t - n_past)[0]  # (R, T - n_past, C, H, W)
    blank = torch.zeros_like(video[:, :n_past])  # mid grey: nothing predicted there
    below = torch.cat([blank, pred], 1)  # (R, T, C, H, W)
    tiles = torch.stack([video, below], 1).flatten(0, 2)  # (R * 2 * T, C, H, W)
    grid = image_grid(tiles.cpu(), nrow=t, pad=pad)  # (3, H', W') in [0, 1]
    if grid.shape[0] == 3:  # the padding column before the first predicted frame, in red
        x0 = n_past * (video.shape[-1] + pad)
        grid[:, :, x0:x0 + pad] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    out = Path(out)
    save_image(grid, out)
    return out
