"""shapes2d: deterministic rendering from factors, factor addressing, geometry, settings."""

from __future__ import annotations

import pytest
import torch

from genzoo.data import DataConfig, load_dataset
from genzoo.data.shapes2d import POS_HI, POS_LO, RADIUS
from genzoo.errors import GenzooError


def _data(**kw):
    return load_dataset(DataConfig(name="shapes2d", **kw), "train")


def _centroid(img: torch.Tensor) -> torch.Tensor:
    """(1, S, S) image in {-1, 1} -> (x, y) centroid of the 'on' pixels, in pixels."""
    on = (img[0] > 0).double()
    ys, xs = torch.meshgrid(torch.arange(on.shape[0], dtype=torch.float64),
                            torch.arange(on.shape[1], dtype=torch.float64), indexing="ij")
    return torch.stack([(on * xs).sum(), (on * ys).sum()]) / on.sum()


def test_default_is_the_dsprites_grid_on_64x64_binary_images():
    d = _data()
    assert d.factor_sizes == (3, 6, 40, 32, 32) and len(d) == 737_280
    b = d.batch(0, 8, seed=0)
    assert b["x"].shape == (8, 1, 64, 64) and set(b["x"].unique().tolist()) <= {-1.0, 1.0}
    assert b["factors"].shape == (8, 5) and b["factors"].dtype == torch.long
    assert torch.equal(b["y"], b["factors"][:, 0])


def test_batches_are_deterministic_and_differ_by_step_and_seed():
    a, b = _data(image_size=32).batch(3, 16, seed=1), _data(image_size=32).batch(3, 16, seed=1)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["factors"], b["factors"])
    assert not torch.equal(a["factors"], _data(image_size=32).batch(4, 16, seed=1)["factors"])
    assert not torch.equal(a["factors"], _data(image_size=32).batch(3, 16, seed=2)["factors"])


def test_every_combination_is_addressable_and_renders_the_same_image():
    d = _data(factor_grid=(3, 2, 4, 5, 5), image_size=32)
    idx = torch.arange(d.n_combinations)
    f = d.factors_of(idx)
    assert torch.equal(d.index_of(f), idx)  # a bijection between numbers and factor tuples
    assert len({tuple(r) for r in f.tolist()}) == d.n_combinations
    batch = d.batch(0, 32, seed=0)
    assert torch.equal(d.render(batch["factors"]), batch["x"])  # a batch is its factors' images
    hearts = d.render(f[f[:, 0] == 2]).flatten(1)  # no symmetry: every heart image differs
    assert len({tuple(r) for r in (hearts > 0).tolist()}) == len(hearts)


def test_changing_x_or_y_moves_the_centroid_by_the_expected_pixels():
    d = _data()  # 64x64, 32 positions: one step = 0.6 * 64 / 31 pixels
    step = (POS_HI - POS_LO) * 64 / 31
    for shape in range(3):
        base = torch.tensor([[shape, 5, 0, 3, 10]])
        moved_x = base.clone()
        moved_x[0, 3] += 20
        moved_y = base.clone()
        moved_y[0, 4] += 17
        c0, cx, cy = (_centroid(d.render(f)[0]) for f in (base, moved_x, moved_y))
        # exact up to rasterisation: a binary shape's centroid sits within half a pixel
        assert (cx - c0).tolist() == pytest.approx([20 * step, 0.0], abs=0.5)
        assert (cy - c0).tolist() == pytest.approx([0.0, 17 * step], abs=0.5)


def test_scale_grows_the_area_and_shapes_differ():
    d = _data()
    small, big = d.render(torch.tensor([[1, 0, 0, 16, 16], [1, 5, 0, 16, 16]]))
    r = RADIUS * 64  # ellipse semi-axes r * scale and r * scale / 2, in pixels
    assert float((big > 0).sum()) == pytest.approx(torch.pi * r * r / 2, rel=0.05)
    assert float((small > 0).sum()) == pytest.approx(torch.pi * r * r / 8, rel=0.1)
    sq, el, he = d.render(torch.tensor([[s, 5, 0, 16, 16] for s in range(3)]))
    assert not torch.equal(sq, el) and not torch.equal(el, he) and not torch.equal(sq, he)


def test_test_split_is_a_fixed_sample_with_labels_and_factors():
    t = load_dataset(DataConfig(name="shapes2d", image_size=32), "test")
    assert len(t) == 2000 and t.x.shape == (2000, 1, 32, 32)
    assert torch.equal(t.render(t.factors), t.x) and torch.equal(t.y, t.factors[:, 0])
    again = load_dataset(DataConfig(name="shapes2d", image_size=32), "test")
    assert torch.equal(again.factors, t.factors)


@pytest.mark.parametrize("kw, match", [
    ({"factor_grid": (3, 6, 40)}, "5 counts"),
    ({"factor_grid": (4, 6, 40, 32, 32)}, "shape <= 3"),
    ({"channels": 3}, "channels"),
    ({"limit": 10}, "limit"),
    ({"image_size": 8}, "too small"),
])
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(GenzooError, match=match):
        _data(**kw)


def test_binarize_changes_nothing_on_binary_images():
    a = _data(image_size=32).batch(0, 16, seed=0)["x"]
    assert torch.equal(_data(image_size=32, binarize="dynamic").batch(0, 16, seed=0)["x"], a)


def test_factor_grid_is_refused_on_other_datasets():
    with pytest.raises(GenzooError, match="shapes2d"):
        load_dataset(DataConfig(name="digits", factor_grid=(3, 6, 40, 32, 32)), "train")
