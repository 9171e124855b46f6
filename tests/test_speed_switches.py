"""The training loop's speed switches: they change how the maths is computed, not what."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config

from genzoo.models.base import read_safetensors
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run):
    return read_safetensors(latest_checkpoint(run) / "model.safetensors")[0]


def test_channels_last_trains_to_the_same_weights(tmp_path, monkeypatch):
    layouts = []
    orig = torch.nn.Conv2d._conv_forward

    def spy(self, x, weight, bias):
        if weight.shape[1] > 1:  # with one input channel both layouts are the same
            layouts.append(weight.is_contiguous(memory_format=torch.channels_last)
                           and not weight.is_contiguous())
        return orig(self, x, weight, bias)

    monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", spy)
    train(tiny_config("vae", steps=4), tmp_path / "a")
    assert layouts and not any(layouts)
    layouts.clear()
    train(tiny_config("vae", steps=4, channels_last=True), tmp_path / "b")
    assert layouts and all(layouts)  # NHWC convolutions all along
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


def test_amp_bf16_runs_in_bfloat16_and_stays_close(tmp_path):
    seen = []
    cfg = tiny_config("vae", steps=3, amp="bf16")
    from genzoo.models.vae import VAE

    orig = VAE.loss

    def spy(self, batch, phase):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                    else None)
        return orig(self, batch, phase)

    VAE.loss = spy
    try:
        train(cfg, tmp_path / "amp")
    finally:
        VAE.loss = orig
    assert seen == [torch.bfloat16] * 3
    train(tiny_config("vae", steps=3), tmp_path / "fp32")
    la, lb = _rows(tmp_path / "amp")[-1]["loss"], _rows(tmp_path / "fp32")[-1]["loss"]
    assert la == pytest.approx(lb, rel=0.05)  # bf16 has 8 mantissa bits: close, not equal
    assert la != lb
    for v in _weights(tmp_path / "amp").values():  # weights stay float32
        assert v.dtype in (torch.float32, torch.int64)


def test_compile_keeps_checkpoint_names_and_the_maths(tmp_path):
    pytest.importorskip("torch._dynamo")
    cfg = tiny_config("vae", steps=2, compile=True)
    cfg.model_cfg.arch = "mlp"  # the smallest graph: compiling takes seconds, not minutes
    ref = tiny_config("vae", steps=2)
    ref.model_cfg.arch = "mlp"
    train(cfg, tmp_path / "c")
    train(ref, tmp_path / "e")
    a, b = _weights(tmp_path / "e"), _weights(tmp_path / "c")
    assert a.keys() == b.keys()  # no "_orig_mod." prefixes in the checkpoint
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


def test_the_loop_times_its_bookkeeping(tmp_path):
    res = train(tiny_config("vae", steps=4, log_every=1, sample_every=2, checkpoint_every=2),
                tmp_path / "r")
    o = res["overhead_seconds"]
    assert set(o) == {"log", "sample", "eval", "checkpoint"}
    assert o["log"] > 0 and o["sample"] > 0 and o["checkpoint"] > 0 and o["eval"] == 0
    assert sum(o.values()) < res["seconds"]
