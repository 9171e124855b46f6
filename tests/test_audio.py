"""Audio datasets (tones, wav-folder), the settings checks, and the audio pictures/WAV files."""

from __future__ import annotations

import logging
import wave

import numpy as np
import pytest
import torch

from genzoo.data import DataConfig, load_dataset
from genzoo.data.audio import make_tones, read_wav
from genzoo.errors import GenzooError


# ----------------------------------------------------------------------------- tones
def test_tones_are_deterministic_by_seed_and_in_range():
    x1, y1 = make_tones(12, 8000, 256, seed=5)
    x2, y2 = make_tones(12, 8000, 256, seed=5)
    x3, _ = make_tones(12, 8000, 256, seed=6)
    assert x1.shape == (12, 1, 256) and x1.dtype == torch.float32
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert x1.abs().max() <= 0.9 + 1e-6 and x1.abs().amax(-1).min() >= 0.3 - 1e-6
    assert y1.tolist() == [i % 4 for i in range(12)]
    x1[0] = 0  # a caller editing its copy does not change the next call's clips
    assert torch.equal(make_tones(12, 8000, 256, seed=5)[0], x2)


def test_tones_splits_spec_and_disjointness():
    cfg = DataConfig(name="tones", clip_length=128, sample_rate=16000)
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    assert train.spec.kind == "audio" and train.spec.shape == (1, 128)
    assert train.spec.num_classes == 4 and train.spec.extras["sample_rate"] == 16000
    assert len(train) == 2000 and len(test) == 200
    seen = {r.numpy().tobytes() for r in train.x}
    assert not any(r.numpy().tobytes() in seen for r in test.x)
    b = train.batch(0, 16, 0)
    assert b["x"].shape == (16, 1, 128) and b["y"].shape == (16,)
    assert torch.equal(load_dataset(cfg, "test").x, test.x)  # the same on every load


def test_tone_class_has_its_pitch():
    """A 'tone' clip's strongest frequency is in the drawn range (110 Hz .. 0.3 rate)."""
    x, y = make_tones(40, 8000, 4096, seed=0)
    for clip in x[y == 0][:5, 0].numpy():
        f = np.fft.rfftfreq(4096, 1 / 8000)[np.abs(np.fft.rfft(clip)).argmax()]
        assert 100 <= f <= 2400


def test_settings_of_the_other_kind_are_refused():
    with pytest.raises(GenzooError, match="image datasets.*image_size.*audio"):
        load_dataset(DataConfig(name="tones", image_size=8, clip_length=64), "train")
    with pytest.raises(GenzooError, match="image datasets.*channels"):
        load_dataset(DataConfig(name="tones", channels=1, clip_length=64), "train")
    with pytest.raises(GenzooError, match="audio datasets.*clip.*image"):
        load_dataset(DataConfig(name="digits", clip_length=64), "train")
    with pytest.raises(GenzooError, match="audio datasets.*sample_rate.*points"):
        load_dataset(DataConfig(name="8gaussians", sample_rate=8000), "train")
    with pytest.raises(GenzooError, match="sample_rate"):
        load_dataset(DataConfig(name="tones", sample_rate=10), "train")
    with pytest.raises(GenzooError, match="clip"):
        load_dataset(DataConfig(name="tones", clip_length=1), "train")


# ----------------------------------------------------------------------------- wav-folder
def _sine(rate: int, seconds: float, f: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * f * t)


def _write_pcm(path, a: np.ndarray, rate: int, width: int) -> None:
    """(T,) or (T, C) in [-1, 1] -> PCM WAV with `width` bytes per sample (1: unsigned)."""
    a = a.reshape(len(a), -1)
    if width == 1:
        data = np.rint(a * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:  # 24-bit little-endian: the low three bytes of an int32
        v = np.rint(a * (2 ** 23 - 1)).astype("<i4").reshape(-1)
        data = v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = np.rint(a * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


@pytest.fixture()
def wav_dir(tmp_path):
    from scipy.io import wavfile

    d = tmp_path / "wavs"
    d.mkdir()
    _write_pcm(d / "a16.wav", _sine(16000, 1.0), 16000, 2)  # 16-bit mono, 2x the rate
    _write_pcm(d / "b8.wav", _sine(11025, 1.0), 11025, 1)  # 8-bit unsigned mono
    st = np.stack([_sine(22050, 1.0), _sine(22050, 1.0, amp=0.25)], 1)
    wavfile.write(d / "c_float.wav", 22050, st.astype(np.float32))  # float32 stereo
    _write_pcm(d / "d24.WAV", _sine(8000, 1.0), 8000, 3)  # 24-bit, upper-case extension
    (d / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    (d / "notes.txt").write_text("not audio")
    return d


def test_read_wav_formats(wav_dir):
    for name, rate in [("a16.wav", 16000), ("b8.wav", 11025), ("c_float.wav", 22050),
                       ("d24.WAV", 8000)]:
        r, a = read_wav(wav_dir / name)
        assert r == rate and a.ndim == 1 and len(a) == rate
        peak = 0.375 if name == "c_float.wav" else 0.5  # stereo (0.5, 0.25) -> mean
        assert abs(np.abs(a).max() - peak) < 0.01, name
    with pytest.raises(ValueError):
        read_wav(wav_dir / "bad.wav")


def test_wav_folder_resamples_keeps_pitch_and_skips_bad_files(wav_dir, caplog):
    cfg = DataConfig(name="wav-folder", root=str(wav_dir), sample_rate=8000, clip_length=1024)
    with caplog.at_level(logging.WARNING, logger="genzoo"):
        train = load_dataset(cfg, "train")
    assert "skipped 1 unreadable" in caplog.text and "1 files without a .wav" in caplog.text
    test = load_dataset(cfg, "test")
    # every file is 1 s = 8000 samples at 8 kHz: 7 whole clips each, 4 files -> 28 clips
    assert len(train) + len(test) == 28 and len(test) == 3  # clips 0, 10, 20
    assert train.spec.kind == "audio" and train.spec.shape == (1, 1024)
    assert train.spec.extras["sample_rate"] == 8000 and train.y is None
    freqs = np.fft.rfftfreq(1024, 1 / 8000)  # 7.8 Hz bins
    for clip in torch.cat([train.x, test.x])[:, 0].numpy():
        peak = freqs[np.abs(np.fft.rfft(clip * np.hanning(1024))).argmax()]
        assert abs(peak - 440) <= 8, peak  # resampling kept the pitch
        assert np.abs(clip).max() <= 1
    # an explicit train/test layout is used as it is
    (wav_dir / "train").mkdir()
    (wav_dir / "test").mkdir()
    (wav_dir / "a16.wav").rename(wav_dir / "train" / "a16.wav")
    (wav_dir / "b8.wav").rename(wav_dir / "test" / "b8.wav")
    assert len(load_dataset(cfg, "train")) == 7 and len(load_dataset(cfg, "test")) == 7


def test_wav_folder_errors(tmp_path):
    with pytest.raises(GenzooError, match="root=DIR"):
        load_dataset(DataConfig(name="wav-folder"), "train")
    with pytest.raises(GenzooError, match="not found"):
        load_dataset(DataConfig(name="wav-folder", root=str(tmp_path / "nope")), "train")
    (tmp_path / "bad.wav").write_bytes(b"not a wav file at all")
    _write_pcm(tmp_path / "short.wav", _sine(8000, 0.01), 8000, 2)  # 80 samples
    with pytest.raises(GenzooError, match="no clips.*2 .wav files, 1 unreadable, 1 shorter"):
        load_dataset(DataConfig(name="wav-folder", root=str(tmp_path)), "train")


# ----------------------------------------------------------------------------- pictures, WAVs
def test_audio_picture_and_wav_round_trip(tmp_path):
    from genzoo.viz.audio import write_wav
    from genzoo.viz.grid import save_samples

    x, _ = make_tones(3, 8000, 512, seed=0)
    pic = save_samples(x, "audio", tmp_path / "a.png", title="t", sample_rate=8000)
    assert pic.dim() == 3 and pic.shape[0] == 3 and 0 <= pic.min() and pic.max() <= 1
    assert (tmp_path / "a.png").stat().st_size > 1000
    save_samples(x[:, :, :8], "audio", tmp_path / "short.png")  # too short for a spectrogram
    write_wav(tmp_path / "a.wav", x[0], 8000)
    rate, a = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and np.abs(a - x[0, 0].numpy()).max() <= 0.5 / 32768 + 1e-7


def test_wav_out_is_for_audio_runs_only(tmp_path):
    from conftest import tiny_config

    from genzoo.models import build_model
    from genzoo.viz.grid import write_samples_file

    cfg = tiny_config("vae")
    model = build_model("vae", cfg.model_cfg, load_dataset(cfg.data, "train").spec).eval()
    with pytest.raises(GenzooError, match=r"\.png.*\.npy"):
        write_samples_file(model, cfg, tmp_path / "x.wav", n=2, seed=0)
    assert list(tmp_path.iterdir()) == []
