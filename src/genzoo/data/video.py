"""Video datasets: DataSpec kind "video", one example of shape (T, C, H, W) in [-1, 1].

    moving-digits   the Moving MNIST recipe (Srivastava et al. 2015, arXiv 1502.04681): one or
                    two `mnist5k` digits bouncing inside a square frame, T frames per video

The recipe: each digit starts at a uniform random position with a uniform random direction and
moves a fixed step per frame (a tenth of the free range, 3.6 px in a 64x64 frame as in the
paper's generator); on hitting an edge the position is mirrored back inside and that velocity
component flips sign. Overlapping digits combine by pixel maximum. Settings:

    frames      T, frames per video (default 10)
    num_digits  1 or 2 digits per video (default 2, the paper's; 1 makes content/pose clean)
    frame_size  side of the square frame (default 64); digits scale with it (28 px at 64,
                14 px at 32), so every frame size shows the same motion in relative terms

Train videos take digits from the `mnist5k` train split, test videos from its test split.
Videos are rendered on the fly: the training batch of a step is a pure function of (seed, step);
the test split (and the train split's `x`, a reference set) is a fixed set of videos drawn with
seed 0. Besides "x" (B, T, C, H, W), every batch holds "y" (B, K) digit labels, "index" (B, K)
the digits' indices in the source split, and "pos" (B, T, K, 2) the top-left corner (row,
column) of every digit in every frame, as floats before rounding to the pixel grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData, _mix
from genzoo.errors import GenzooError

DEFAULT_FRAMES = 10
DEFAULT_DIGITS = 2
DEFAULT_SIZE = 64
STEP = 0.1  # distance per frame as a fraction of the free range (frame - digit), arXiv 1502.04681
TRAIN_LEN = 10_000  # nominal epoch size: only sets how steps group into epochs
FIXED_LEN = 500  # videos in the fixed test set (and in the train split's reference set)


def video_settings(cfg: DataConfig) -> tuple[int, int, int]:
    """(frames, digits, frame size) of a moving-digits config, defaults filled in and checked."""
    t = DEFAULT_FRAMES if cfg.frames is None else cfg.frames
    k = DEFAULT_DIGITS if cfg.num_digits is None else cfg.num_digits
    s = DEFAULT_SIZE if cfg.frame_size is None else cfg.frame_size
    if t < 2:
        raise GenzooError(f"frames={t} must be at least 2 frames per video")
    if k not in (1, 2):
        raise GenzooError(f"num_digits={k} is not valid; choose 1 or 2")
    if not 16 <= s <= 256:
        raise GenzooError(f"frame_size={s} is not valid; use 16..256 pixels")
    return t, k, s


def bounce_step(p: torch.Tensor, v: torch.Tensor, room: float) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
    """One frame of motion in [0, room] per coordinate: p + v, mirrored at the walls, where the
    velocity component that hit a wall flips sign. Needs |v| <= room."""
    q = p + v
    low, high = q < 0, q > room
    q = torch.where(low, -q, torch.where(high, 2 * room - q, q))
    return q, torch.where(low | high, -v, v)


def trajectories(n: int, frames: int, digits: int, room: float, g: torch.Generator
                 ) -> torch.Tensor:
    """(n, frames, digits, 2) top-left corners (row, col) in [0, room]: uniform start, uniform
    direction, speed STEP * room per frame."""
    p = torch.rand(n, digits, 2, generator=g) * room  # (n, K, 2)
    theta = torch.rand(n, digits, generator=g) * (2 * math.pi)
    v = STEP * room * torch.stack([theta.sin(), theta.cos()], -1)  # (n, K, 2)
    out = [p]
    for _ in range(frames - 1):
        p, v = bounce_step(p, v, room)
        out.append(p)
    return torch.stack(out, 1)  # (n, T, K, 2)


def render(digits: torch.Tensor, pos: torch.Tensor, size: int) -> torch.Tensor:
    """Paste digit images at positions: digits (n, K, d, d) uint8, pos (n, T, K, 2) floats ->
    frames (n, T, 1, size, size) uint8, overlapping digits combined by maximum."""
    n, k, d, _ = digits.shape
    t, dev = pos.shape[1], digits.device  # pasted on the digits' device
    frames = torch.zeros(n, t, size, size, dtype=torch.uint8, device=dev)
    ar = torch.arange(d, device=dev)
    bi = torch.arange(n, device=dev).view(n, 1, 1, 1)
    ti = torch.arange(t, device=dev).view(1, t, 1, 1)
    corner = pos.round().long().clamp(0, size - d).to(dev)  # (n, T, K, 2) on the pixel grid
    for j in range(k):
        rows = corner[:, :, j, 0].view(n, t, 1, 1) + ar.view(1, 1, d, 1)  # (n, T, d, 1)
        cols = corner[:, :, j, 1].view(n, t, 1, 1) + ar.view(1, 1, 1, d)  # (n, T, 1, d)
        patch = digits[:, j].view(n, 1, d, d).expand(n, t, d, d)
        frames[bi, ti, rows, cols] = torch.maximum(frames[bi, ti, rows, cols], patch)
    return frames.unsqueeze(2)  # (n, T, 1, size, size)


class VideoData:
    """Moving digits with TensorData's interface (batch, ordered, x, y, len, to, to_float)."""

    def __init__(self, name: str, pool: TensorData, frames: int, digits: int, size: int,
                 split: str):
        d = round(28 * size / DEFAULT_SIZE)
        src = pool.x  # (N, 1, 28, 28) uint8
        if d != 28:  # digits scale with the frame: the same relative motion at every size
            src = F.interpolate(src.float(), size=(d, d), mode="bilinear", antialias=True,
                                align_corners=False).round().clamp(0, 255).to(torch.uint8)
        self.digit_images = src[:, 0]  # (N, d, d) uint8
        self.digit_labels = pool.y  # (N,)
        self.name, self.split = name, split
        self.frames, self.num_digits, self.size, self.digit_size = frames, digits, size, d
        self.room = float(size - d)
        self.spec = DataSpec("video", (frames, 1, size, size), num_classes=10,
                             extras={"num_digits": digits, "digit_size": d,
                                     "step_px": STEP * self.room})
        self.binarize = "none"
        self.device = torch.device("cpu")
        self._fixed: dict[str, torch.Tensor] | None = None
        self._images_on: torch.Tensor | None = None  # digit_images on the batches' device

    to_float = staticmethod(TensorData.to_float)

    def make(self, n: int, seed: int, device: torch.device | None = None
             ) -> dict[str, torch.Tensor]:
        """n videos drawn with `seed`: the random numbers on the CPU, so that they do not depend
        on the device; the frames pasted on `device` (default CPU), the same pixels anywhere."""
        g = torch.Generator().manual_seed(seed)
        index = torch.randint(len(self.digit_labels), (n, self.num_digits), generator=g)
        pos = trajectories(n, self.frames, self.num_digits, self.room, g)
        images = self.digit_images
        if device is not None and torch.device(device) != images.device:
            if self._images_on is None or self._images_on.device != torch.device(device):
                self._images_on = images.to(device)  # copied once per device
            images, index_d = self._images_on, index.to(device)
        else:
            index_d = index
        x = render(images[index_d], pos, self.size)  # (n, T, 1, S, S) uint8
        return {"x": x, "y": self.digit_labels[index], "index": index, "pos": pos}

    def render_digits(self, index: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Frames in data space showing the split's digits `index` (n, K) at `pos` (n, T, K, 2):
        the ground truth of an analogy (the content video's digit on the pose video's path)."""
        return self.to_float(render(self.digit_images[index.cpu()], pos.cpu(), self.size))

    def fixed_set(self) -> dict[str, torch.Tensor]:
        """The split's fixed videos with their facts: {"x", "y", "index", "pos"} (500 each)."""
        if self._fixed is None:
            # seed 0 with a salt per split, independent of the run's seed
            salt = 1 if self.split == "test" else 2
            self._fixed = {k: v.to(self.device) for k, v in self.make(FIXED_LEN, _mix(0, salt))
                           .items()}
        return self._fixed

    @property
    def x(self) -> torch.Tensor:
        """The split's fixed set of videos, (500, T, 1, S, S) uint8."""
        return self.fixed_set()["x"]

    @property
    def y(self) -> torch.Tensor:
        return self.fixed_set()["y"]

    def __len__(self) -> int:
        return TRAIN_LEN if self.split == "train" else FIXED_LEN

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self) // batch_size)

    def to(self, device: torch.device | str) -> VideoData:
        self.device = torch.device(device)
        if self._fixed is not None:
            self._fixed = {k: v.to(self.device) for k, v in self._fixed.items()}
        return self

    def batch(self, step: int, batch_size: int, seed: int, *, rank: int = 0,
              world_size: int = 1) -> dict[str, torch.Tensor]:
        """Fresh videos for `step`; every rank draws the same global batch and keeps its shard."""
        # pasted where they are used: on the CPU a batch of 128 videos took 12.5 ms (one thread),
        # half of a GPU training step
        b = self.make(batch_size, _mix(seed, step, 11), self.device)
        b["x"] = self.to_float(b["x"])  # (B, T, 1, S, S) in [-1, 1]
        if world_size > 1:
            b = {k: v.tensor_split(world_size)[rank] for k, v in b.items()}
        return {k: v.to(self.device) for k, v in b.items()}

    def ordered(self, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """The split's fixed set in order, for evaluation."""
        f = self.fixed_set()
        for i in range(0, FIXED_LEN, batch_size):
            b = {k: v[i:i + batch_size] for k, v in f.items()}
            b["x"] = self.to_float(b["x"])
            yield b


@register_dataset("moving-digits", "Moving MNIST: mnist5k digits bouncing in a 64x64 frame, "
                  "T=10 frames (frames, num_digits, frame_size settable)", kind="video")
def load_moving_digits(cfg: DataConfig, split: str) -> VideoData:
    from genzoo.data.embedded import load_mnist5k

    frames, digits, size = video_settings(cfg)
    # test videos are made of test digits only: no digit image is shared between the splits
    return VideoData("moving-digits", load_mnist5k(cfg, split), frames, digits, size, split)
