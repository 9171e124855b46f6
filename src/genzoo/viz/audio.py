"""Audio samples: a waveform/spectrogram picture, and WAV files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch


def spectrogram_db(x: np.ndarray, nfft: int) -> np.ndarray:
    """(T,) signal -> (nfft/2 + 1, frames) power in dB, Hann window, hop nfft/4, floor -100 dB."""
    hop = max(1, nfft // 4)
    frames = 1 + (len(x) - nfft) // hop
    idx = np.arange(nfft)[None, :] + hop * np.arange(frames)[:, None]  # (frames, nfft)
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(nfft), axis=1)) ** 2  # (frames, nfft/2+1)
    return 10 * np.log10(spec.T + 1e-10)


def audio_image(x: torch.Tensor, path: str | Path, sample_rate: int | None = None,
                title: str = "", max_rows: int = 8) -> torch.Tensor:
    """One row per clip (the first `max_rows`): waveform left, spectrogram right. Saves a PNG and
    returns it as a (3, H, W) tensor in [0, 1]. Axes are in seconds and Hz when the sample rate
    is known, else in samples and cycles per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert x.dim() == 3, f"expected (N, C, T) audio, got shape {tuple(x.shape)}"
    a = x.detach().float().cpu().mean(1).numpy()[:max_rows]  # (rows, T), channels averaged
    rows, T = a.shape
    rate = sample_rate or 1
    nfft = min(256, 2 ** int(np.floor(np.log2(max(T // 4, 8)))))  # >= 4 frames when short
    show_spec = T >= 16
    fig, axes = plt.subplots(rows, 2 if show_spec else 1, squeeze=False, dpi=100,
                             figsize=(10 if show_spec else 6, 0.4 + 1.3 * rows),
                             gridspec_kw={"width_ratios": [3, 2]} if show_spec else None)
    t = np.arange(T) / rate
    for i in range(rows):
        ax = axes[i, 0]
        ax.plot(t, a[i], lw=0.5, color="#1f77b4")
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlim(0, t[-1] if T > 1 else 1)
        ax.tick_params(labelsize=6)
        if show_spec:
            s = spectrogram_db(a[i], nfft)
            s = np.maximum(s, s.max() - 80)  # 80 dB of range below the loudest bin
            axes[i, 1].imshow(s, origin="lower", aspect="auto", cmap="magma",
                              extent=(0, T / rate, 0, rate / 2))
            axes[i, 1].tick_params(labelsize=6)
    unit_t, unit_f = ("time (s)", "Hz") if sample_rate else ("time (samples)", "cycles/sample")
    axes[-1, 0].set_xlabel(unit_t, fontsize=7)
    if show_spec:
        axes[-1, 1].set_xlabel(unit_t, fontsize=7)
        axes[0, 1].set_title(f"spectrogram ({unit_f})", fontsize=8)
    axes[0, 0].set_title(title or "waveform", fontsize=8)
    from genzoo.viz.grid import save_figure

    return save_figure(fig, path)


def write_wav(path: str | Path, x: torch.Tensor, sample_rate: int) -> None:
    """(C, T) or (T,) waveform in [-1, 1] -> 16-bit PCM WAV (channels kept)."""
    a = x.detach().float().cpu().reshape(-1, x.shape[-1]).numpy()  # (C, T)
    # the scale read_wav divides by (2^15), so a written and re-read clip is within 1/2^16
    pcm = np.clip(np.rint(a.T * 32768.0), -32768, 32767).astype("<i2")  # (T, C) interleaved
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
