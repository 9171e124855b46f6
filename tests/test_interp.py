"""Latent walks: lerp and slerp maths, and the interpolation figure."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config

from genzoo.errors import GenzooError
from genzoo.viz.interp import interpolation_images, lerp, slerp


def test_lerp_is_linear():
    a, b = torch.tensor([[0.0, 2.0]]), torch.tensor([[4.0, -2.0]])
    out = lerp(a, b, torch.tensor([0.0, 0.25, 1.0]))
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 2.0], [1.0, 1.0], [4.0, -2.0]]))


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    t = torch.tensor([0.0, 1 / 3, 0.5, 1.0])
    out = slerp(a, b, t)[0]  # (T, D)
    torch.testing.assert_close(out[0], a[0])
    torch.testing.assert_close(out[-1], b[0])
    # on the unit circle, at angle t * 90 degrees: (cos, sin)
    for i, ti in enumerate(t.tolist()):
        ang = ti * math.pi / 2
        torch.testing.assert_close(out[i], torch.tensor([math.cos(ang), math.sin(ang), 0.0]))
    # lerp cuts through the inside: its midpoint has norm 1/sqrt(2), slerp's keeps norm 1
    assert lerp(a, b, torch.tensor([0.5]))[0, 0].norm().item() == pytest.approx(2 ** -0.5)
    assert out[2].norm().item() == pytest.approx(1.0)


def test_slerp_interpolates_norms_and_handles_parallel_vectors():
    a = torch.tensor([[2.0, 0.0]])
    b = torch.tensor([[0.0, 4.0]])
    mid = slerp(a, b, torch.tensor([0.5]))[0, 0]
    assert mid.norm().item() == pytest.approx(3.0)  # norms are interpolated linearly
    same = slerp(a, 3 * a, torch.tensor([0.5]))[0, 0]  # parallel: falls back to lerp
    torch.testing.assert_close(same, torch.tensor([4.0, 0.0]))
    assert torch.isfinite(slerp(a, a, torch.linspace(0, 1, 5))).all()


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_interpolation_images_shape_and_endpoints(name):
    from genzoo.data import load_dataset
    from genzoo.models import build_model

    cfg = tiny_config(name)
    data = load_dataset(cfg.data, "train")
    model = build_model(cfg.model, cfg.model_cfg, data.spec).eval()
    x = interpolation_images(model, rows=3, steps=4, mode="slerp", seed=1)
    assert tuple(x.shape) == (12, *data.spec.shape)
    # the first column is the decoded first endpoint: the same walk with lerp starts there too
    y = interpolation_images(model, rows=3, steps=4, mode="lerp", seed=1)
    torch.testing.assert_close(x.view(3, 4, -1)[:, 0], y.view(3, 4, -1)[:, 0])
    torch.testing.assert_close(x.view(3, 4, -1)[:, -1], y.view(3, 4, -1)[:, -1])
    with pytest.raises(GenzooError, match="lerp or slerp"):
        interpolation_images(model, mode="cubic")
