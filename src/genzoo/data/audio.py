"""Audio datasets: mono waveforms in [-1, 1], DataSpec kind "audio", shape (1, T).

    tones        synthesised clips, one of 4 classes (the label): a tone with harmonics, a chord,
                 a chirp, or noise bursts; deterministic (fixed seeds), nothing to download
    wav-folder   any directory of WAV files (--set root=DIR), resampled and cut into clips

Both take `sample_rate` (samples per second, default 8000) and `clip_length` (samples per example,
default 4096: about half a second at 8 kHz). The rate is kept in `spec.extras["sample_rate"]`.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from genzoo.data import DataConfig, register_dataset
from genzoo.data.base import DataSpec, TensorData
from genzoo.errors import GenzooError

DEFAULT_RATE = 8000  # Hz
DEFAULT_CLIP = 4096  # samples per example
TONES_CLASSES = ("tone", "chord", "chirp", "noise")
TONES_TRAIN, TONES_TEST = 2000, 200  # clips per split
WAV_EXTENSIONS = {".wav", ".wave"}
log = logging.getLogger("genzoo")


def audio_settings(cfg: DataConfig) -> tuple[int, int]:
    """(sample rate, clip length) of an audio dataset config, defaults filled in and checked."""
    rate = DEFAULT_RATE if cfg.sample_rate is None else cfg.sample_rate
    clip = DEFAULT_CLIP if cfg.clip_length is None else cfg.clip_length
    if not 1000 <= rate <= 192_000:
        raise GenzooError(f"sample_rate={rate} is not valid; use 1000..192000 samples per second")
    if clip < 2:
        raise GenzooError(f"clip_length={clip} must be at least 2 samples per example")
    return rate, clip


# ----------------------------------------------------------------------------- tones
def _envelope(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Silence, a linear attack of 2-30 ms, then an exponential decay (time constant 0.1-1 s)."""
    t = np.arange(n) / rate
    onset = rng.uniform(0, 0.25) * n / rate
    attack = rng.uniform(0.002, 0.03)
    tau = math.exp(rng.uniform(math.log(0.1), math.log(1.0)))
    rel = t - onset
    return np.where(rel < 0, 0.0, np.minimum(rel / attack, 1.0) * np.exp(-np.maximum(rel, 0) / tau))


def _tone(t: np.ndarray, f: float, rng: np.random.Generator, fmax: float) -> np.ndarray:
    """A sine at f with up to 2 more harmonics (those below fmax), amplitudes 1, r, r^2."""
    r = rng.uniform(0.0, 0.5)
    out = np.zeros_like(t)
    for h in range(1, 4):
        if h * f < fmax:
            out += r ** (h - 1) * np.sin(2 * np.pi * h * f * t + rng.uniform(0, 2 * np.pi))
    return out


def _clip(cls: int, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / rate
    fmax = 0.4 * rate  # keeps every partial well below Nyquist at any rate
    lo, hi = math.log(110.0), math.log(min(1760.0, 0.3 * rate))  # A2 .. A6

    def freq() -> float:
        return math.exp(rng.uniform(lo, hi))

    if cls == 0:  # tone: one pitch with harmonics
        x = _tone(t, freq(), rng, fmax) * _envelope(n, rate, rng)
    elif cls == 1:  # chord: a root and 1-2 notes at just intervals above it
        f0 = freq()
        ratios = [1.0] + list(rng.choice([5 / 4, 4 / 3, 3 / 2, 2.0], rng.integers(1, 3),
                                         replace=False))
        x = sum(_tone(t, f0 * r, rng, fmax) for r in ratios) * _envelope(n, rate, rng)
    elif cls == 2:  # chirp: the frequency sweeps linearly from f0 to f1 over the clip
        f0, f1 = freq(), freq()
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * max(t[-1], 1e-9)))
        x = np.sin(phase + rng.uniform(0, 2 * np.pi)) * _envelope(n, rate, rng)
    else:  # noise: 1-4 percussive bursts of one-pole low-passed white noise
        x = np.zeros(n)
        for _ in range(rng.integers(1, 5)):
            start = rng.integers(0, max(1, n - n // 8))
            rel = t[: n - start]
            env = np.minimum(rel / 0.002, 1.0) * np.exp(-rel / rng.uniform(0.01, 0.08))
            x[start:] += rng.uniform(0.3, 1.0) * env * rng.standard_normal(n - start)
        a = rng.uniform(0.0, 0.9)  # one-pole low-pass y_t = (1-a) x_t + a y_{t-1}: 0 white
        x = np.convolve(x, (1 - a) * a ** np.arange(64))[:n]  # its impulse response, a^64 ~ 0
    peak = np.abs(x).max()
    gain = rng.uniform(0.3, 0.9)
    return x * (gain / peak) if peak > 0 else x


@functools.lru_cache(maxsize=4)  # train and test of a config: generated once per process
def _tones(n: int, rate: int, clip: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.empty((n, 1, clip), dtype=np.float32)
    ys = np.arange(n) % len(TONES_CLASSES)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        xs[i, 0] = _clip(int(ys[i]), clip, rate, rng)
    return xs, ys.astype(np.int64)


def make_tones(n: int, rate: int = DEFAULT_RATE, clip: int = DEFAULT_CLIP, seed: int = 0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """n clips (n, 1, clip) in [-1, 1] and their labels (n,), class i % 4 for clip i.

    Clip i depends only on (seed, i, rate, clip): numpy's PCG64 seeded with [seed, i].
    """
    xs, ys = _tones(n, rate, clip, seed)
    return torch.from_numpy(xs.copy()), torch.from_numpy(ys.copy())


@register_dataset("tones", "synthetic audio: tones, chords, chirps, noise bursts (4 classes)",
                  kind="audio")
def load_tones(cfg: DataConfig, split: str) -> TensorData:
    rate, clip = audio_settings(cfg)
    # fixed seeds, independent of the run: seed 1 for train, 2 for test (disjoint clips)
    n, seed = (TONES_TRAIN, 1) if split == "train" else (TONES_TEST, 2)
    x, y = make_tones(n, rate, clip, seed)
    spec = DataSpec("audio", (1, clip), num_classes=len(TONES_CLASSES),
                    extras={"sample_rate": rate, "classes": TONES_CLASSES})
    return TensorData(x, y, spec, name="tones")


# ----------------------------------------------------------------------------- wav-folder
def read_wav(path: str | Path) -> tuple[int, np.ndarray]:
    """(sample rate, mono float64 samples in [-1, 1]) of a PCM (8/16/24/32-bit) or float WAV;
    channels are averaged. Raises ValueError (or OSError) for a file that is not a readable WAV.
    """
    from scipy.io import wavfile

    with warnings.catch_warnings():  # unknown chunks (LIST, cue, ...) are skipped: fine
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        try:
            rate, data = wavfile.read(str(path))
        except OSError:
            raise
        except Exception as e:  # a damaged header can surface as any error inside the parser
            raise ValueError(f"{path}: not a readable WAV file ({type(e).__name__}: {e})") \
                from e
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        a = (data.astype(np.float64) - 128.0) / 128.0
    elif data.dtype.kind == "i":  # 16-bit; 24- and 32-bit come left-justified in int32
        a = data.astype(np.float64) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind == "f":
        a = data.astype(np.float64)
    else:
        raise ValueError(f"unsupported WAV sample type {data.dtype}")
    if a.ndim == 2:  # (N, channels) -> mono
        a = a.mean(1)
    if a.ndim != 1 or rate <= 0:
        raise ValueError("not a WAV file of samples")
    return int(rate), np.clip(np.nan_to_num(a), -1.0, 1.0)


def _resample(a: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Polyphase resampling by dst/src in lowest terms (anti-aliasing FIR, Kaiser window)."""
    if src == dst:
        return a
    from scipy.signal import resample_poly

    g = math.gcd(src, dst)
    return resample_poly(a, dst // g, src // g)


def _wav_files(base: Path) -> tuple[list[Path], int]:
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    wavs = [p for p in files if p.suffix.lower() in WAV_EXTENSIONS]
    return wavs, len(files) - len(wavs)


@register_dataset("wav-folder", "WAV files under --set root=DIR, resampled and cut into clips",
                  kind="audio")
def load_wav_folder(cfg: DataConfig, split: str) -> TensorData:
    rate, clip = audio_settings(cfg)
    if cfg.root is None:
        raise GenzooError("wav-folder: no directory given; pass --set root=DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise GenzooError(f"wav-folder: directory {root} not found; pass --set root=DIR")
    explicit = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / split if explicit else root
    wavs, other = _wav_files(base)
    clips, bad, short = [], 0, 0
    for p in wavs:
        try:
            src, a = read_wav(p)
        except (ValueError, OSError, EOFError, MemoryError):
            bad += 1
            continue
        a = _resample(a, src, rate)
        k = len(a) // clip  # whole clips only; the remainder of each file is dropped
        short += int(k == 0)
        clips += [a[i * clip:(i + 1) * clip] for i in range(k)]
    if not explicit:  # every 10th clip (in file order) held out: the same on every machine
        clips = [c for i, c in enumerate(clips) if (i % 10 == 0) == (split == "test")]
    if bad:
        log.warning(f"wav-folder: skipped {bad} unreadable or non-WAV files of {len(wavs)} "
                    f"under {base}" + (f"; ignored {other} files without a .wav extension"
                                       if other else ""))
    elif other:
        log.info(f"wav-folder: ignored {other} files without a .wav extension under {base}")
    if not clips:
        raise GenzooError(
            f"wav-folder: no clips for the {split} split under {base}: {len(wavs)} .wav files, "
            f"{bad} unreadable, {short} shorter than one clip of {clip} samples "
            f"({clip / rate:.3g} s at {rate} Hz); add WAV files or lower clip_length"
            + ("" if explicit else " (1 clip in 10 goes to the test split)"))
    x = torch.from_numpy(np.stack(clips).astype(np.float32)).unsqueeze(1)  # (N, 1, clip)
    spec = DataSpec("audio", (1, clip), num_classes=0, extras={"sample_rate": rate})
    return TensorData(x, None, spec, name="wav-folder")
