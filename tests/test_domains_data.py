"""Two-domain data: mnist-m / digits-m, `target=`, the CycleGAN and pix2pix folders, svhn."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data import DataConfig, TwoDomainData, load_dataset
from genzoo.errors import GenzooError


def load(name, split="train", **kw):
    return load_dataset(DataConfig(name=name, **kw), split)


def pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 or [-1, 1] data -> 0..255 as float."""
    return x.float() if x.dtype == torch.uint8 else (x.float() + 1) * 127.5


# --- mnist-m / digits-m ------------------------------------------------------------------------

def test_mnist_m_recipe_on_hand_checked_pixels():
    from sklearn.datasets import load_sample_images

    from genzoo.data.embedded import _mnist5k
    from genzoo.data.mnistm import draw_patches

    m, src = load("mnist-m"), load("mnist5k")
    assert m.x.shape == (4500, 3, 28, 28) and m.x.dtype == torch.uint8
    assert torch.equal(m.y, src.y) and m.spec.num_classes == 10
    assert len(load("mnist-m", "test")) == 500
    # the patch of training example 0: its index in the full 5,000, then the photo and corner
    raw, _, train_idx, _ = _mnist5k()
    photos = load_sample_images().images  # china.jpg, flower.jpg
    which, top, left = draw_patches(5000, [p.shape[:2] for p in photos], (28, 28), seed=0)
    o = int(train_idx[0])
    photo, t, lft = photos[which[o]], int(top[o]), int(left[o])
    digit = raw[o, 0].numpy().astype(int)
    r, c = np.argwhere(digit == 255)[0]  # a pixel inside a stroke: the photo's colour inverted
    for ch in range(3):
        expect = abs(int(photo[t + r, lft + c, ch]) - 255)
        assert int(m.x[0, ch, r, c]) == expect
    # the background (digit 0) shows the photo unchanged
    assert int(m.x[0, 2, 0, 0]) == int(photo[t, lft, 2])
    assert int(m.x[0, 1, 27, 27]) == int(photo[t + 27, lft + 27, 1])


def test_mnist_m_deterministic_by_seed():
    a, b = load("mnist-m", "test"), load("mnist-m", "test")
    assert torch.equal(a.x, b.x)
    c = load("mnist-m", "test", patch_seed=1)
    assert not torch.equal(a.x, c.x) and torch.equal(a.y, c.y)
    x = a.batch(0, 8, seed=0)["x"]
    assert x.shape == (8, 3, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_digits_m():
    from genzoo.data.embedded import _digits
    from genzoo.data.mnistm import draw_patches, photos

    d, src = load("digits-m"), load("digits")
    assert d.x.shape == (1497, 3, 8, 8) and d.x.dtype == torch.float32
    assert torch.equal(d.y, src.y) and d.x.min() >= -1 and d.x.max() <= 1
    pics = photos(8 / 28)  # shrunk so an 8x8 patch covers what 28x28 covers at full size
    assert pics[0].shape == (122, 183, 3)
    raw, _, train_idx, _ = _digits()
    which, top, left = draw_patches(len(raw), [p.shape[:2] for p in pics], (8, 8), seed=0)
    o = int(train_idx[0])
    patch = pics[which[o]][top[o]:top[o] + 8, left[o]:left[o] + 8].astype(np.float64)
    grey = (raw[o, 0].numpy().astype(np.float64) + 1) * 127.5  # 0..16 scaled to 0..255
    expect = np.abs(patch - grey[:, :, None]).transpose(2, 0, 1) / 127.5 - 1
    assert np.allclose(d.x[0].numpy(), expect, atol=1e-6)


# --- target=: two domains from two registered datasets -----------------------------------------

def test_target_builds_two_domains():
    d = load("mnist5k", target="mnist-m")
    assert isinstance(d, TwoDomainData) and d.spec.shape == (3, 28, 28)
    assert d.spec.extras["domains"] == ("mnist5k", "mnist-m") and not d.spec.extras["paired"]
    b = d.batch(3, 16, seed=0)
    assert set(b) == {"x", "y", "x_b", "y_b"}
    assert b["x"].shape == b["x_b"].shape == (16, 3, 28, 28)
    # the grey domain is repeated to RGB
    assert torch.equal(b["x"][:, 0], b["x"][:, 1]) and torch.equal(b["x"][:, 1], b["x"][:, 2])
    assert torch.equal(b["x"], load("mnist5k", target="mnist-m").batch(3, 16, seed=0)["x"])
    # unpaired: B has its own order (mnist-m example i is mnist5k example i, so the same order
    # would give the same labels)
    assert not torch.equal(b["y"], b["y_b"])
    assert torch.equal(b["x"], d.a.batch(3, 16, seed=0)["x"])
    # ordered: A in order with B at the same positions
    first = next(d.ordered(10))
    assert torch.equal(first["y"], first["y_b"]) and first["x_b"].shape == (10, 3, 28, 28)


def test_target_paired():
    d = load("mnist5k", target="mnist-m", paired=True)
    assert d.spec.extras["paired"]
    b = d.batch(2, 16, seed=1)
    assert torch.equal(b["y"], b["y_b"])  # each digit with its own blended version
    with pytest.raises(GenzooError, match="paired=true.*4500 and 1497"):
        load("mnist5k", target="digits-m", paired=True, image_size=8)


def test_target_errors():
    with pytest.raises(GenzooError, match="unknown target dataset 'nope'"):
        load("mnist5k", target="nope")
    with pytest.raises(GenzooError, match="differ in shape.*image_size"):
        load("digits", target="mnist-m")
    d = load("digits", target="mnist-m", image_size=16)
    assert d.spec.shape == (3, 16, 16) and d.b.x.shape == (4500, 3, 16, 16)


# --- folders -----------------------------------------------------------------------------------

def _img(path, colour, size=(12, 10), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_unpaired_folder(tmp_path):
    for i in range(3):
        _img(tmp_path / "trainA" / f"{i}.png", (200, 0, 0))
    for i in range(2):
        _img(tmp_path / "trainB" / f"{i}.jpg", 50, mode="L")
    _img(tmp_path / "testA" / "t.png", (0, 200, 0))
    _img(tmp_path / "testB" / "t.png", 90, mode="L")
    (tmp_path / "trainB" / "broken.png").write_bytes(b"junk")
    d = load("unpaired-folder", root=str(tmp_path), image_size=8)
    assert isinstance(d, TwoDomainData) and d.spec.shape == (3, 8, 8)  # grey B -> RGB
    assert (len(d.a), len(d.b)) == (3, 2)
    b = d.batch(0, 2, seed=0)
    assert (pixels(b["x"])[:, 0] == 200).all() and (pixels(b["x_b"]) - 50).abs().max() <= 1
    assert "y" not in b and "y_b" not in b
    t = load("unpaired-folder", "test", root=str(tmp_path), image_size=8)
    assert (pixels(t.a.x)[:, 1] == 200).all()
    with pytest.raises(GenzooError, match="root=DIR"):
        load("unpaired-folder")
    with pytest.raises(GenzooError, match="trainA.*trainB.*testA.*testB"):
        load("unpaired-folder", root=str(tmp_path / "trainA"))
    with pytest.raises(GenzooError, match="holds two domains already"):
        load("unpaired-folder", root=str(tmp_path), target="digits")


def test_paired_folder_side_by_side(tmp_path):
    # pair i: A (left half) has red = 10 i, B (right half) has red = 10 i + 5
    for split, n in (("train", 6), ("val", 2)):
        for i in range(n):
            a = np.zeros((8, 16, 3), dtype=np.uint8)
            a[:, :8, 0], a[:, 8:, 0] = 10 * i, 10 * i + 5
            a[:, 8:, 2] = 255  # B is blue on top of that
            (tmp_path / split).mkdir(exist_ok=True)
            Image.fromarray(a).save(tmp_path / split / f"{i:02d}.png")
    d = load("paired-folder", root=str(tmp_path), image_size=8)
    assert d.spec.extras["paired"] and d.spec.shape == (3, 8, 8) and len(d) == 6
    b = d.batch(1, 4, seed=5)
    assert torch.equal(pixels(b["x_b"])[:, 0], pixels(b["x"])[:, 0] + 5)  # pairs stay aligned
    assert (pixels(b["x_b"])[:, 2] == 255).all() and (pixels(b["x"])[:, 2] == 0).all()
    t = load("paired-folder", "test", root=str(tmp_path), image_size=8)  # val/ stands in
    assert len(t) == 2
    Image.new("RGB", (7, 4)).save(tmp_path / "train" / "odd.png")
    with pytest.raises(GenzooError, match="even width"):
        load("paired-folder", root=str(tmp_path), image_size=8)


def test_paired_folder_two_folders(tmp_path):
    for i in range(11):
        _img(tmp_path / "A" / f"{i:02d}.png", (i * 20, 0, 0))
        _img(tmp_path / "B" / f"{i:02d}.jpg", (i * 20, 0, 0))  # same stem, other extension
    train = load("paired-folder", root=str(tmp_path), image_size=8)
    test = load("paired-folder", "test", root=str(tmp_path), image_size=8)
    assert (len(train), len(test)) == (9, 2)  # sorted positions 0 and 10 held out
    assert (pixels(train.a.x[:, 0, 0, 0]) - pixels(train.b.x[:, 0, 0, 0])).abs().max() <= 2
    assert pixels(test.a.x[:, 0, 0, 0]).tolist() == [0, 200]
    _img(tmp_path / "A" / "lonely.png", (1, 2, 3))
    with pytest.raises(GenzooError, match="no partner.*lonely"):
        load("paired-folder", root=str(tmp_path), image_size=8)


# --- svhn --------------------------------------------------------------------------------------

def test_svhn_mat_layout(tmp_path, monkeypatch):
    import scipy.io
    import torchvision.datasets.svhn as tv_svhn

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # (H, W, C, N) as distributed
        X[5, 7, 1, 0] = 201  # row 5, column 7, green, first image
        y = np.array([[10], [3], [7], [1]][:n], dtype=np.uint8)  # 10 is the digit 0
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
    # torchvision checks the MD5 of the real file; keep only the existence part for tiny files
    monkeypatch.setattr(tv_svhn, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    d = load("svhn", root=str(tmp_path))
    assert d.x.shape == (4, 3, 32, 32) and d.x.dtype == torch.uint8
    assert int(d.x[0, 1, 5, 7]) == 201 and d.y.tolist() == [0, 3, 7, 1]
    assert load("svhn", "test", root=str(tmp_path)).y.tolist() == [0, 3]
    monkeypatch.undo()
    with pytest.raises(GenzooError, match="train_32x32.mat.*download=true"):
        load("svhn", root=str(tmp_path / "empty"))


def test_mnist_m_declared_invariances_hold_for_the_blend():
    """Each change mnist-m declares content-keeping is, for a digit of strokes (255) on ground
    (0), the blend of the same digit with a changed photo: invert <-> 255 - photo,
    invert-first <-> the same in channel 0, channel-roll <-> the photo's channels rolled,
    half-contrast <-> the photo halfway to 127.5. Checked with genzoo's own blend."""
    from genzoo.data import DATASETS, _ensure_loaded
    from genzoo.data.mnistm import blend
    from genzoo.models.cyclegan import INVARIANCES

    _ensure_loaded()
    rng = np.random.default_rng(0)
    digits = (rng.random((5, 6, 6)) > 0.5) * 255.0  # binary strokes
    photo = rng.integers(0, 256, (20, 20, 3)).astype(np.float64)
    changed_photo = {
        "invert": 255.0 - photo,
        "invert-first": np.concatenate([255.0 - photo[..., :1], photo[..., 1:]], -1),
        "channel-roll": np.roll(photo, 1, axis=-1),
        "half-contrast": 127.5 + (photo - 127.5) / 2,
    }
    base = torch.from_numpy(blend(digits, (photo,), seed=3)) / 127.5 - 1.0
    assert DATASETS["mnist-m"].invariances == tuple(changed_photo)
    for name, pic in changed_photo.items():
        want = torch.from_numpy(blend(digits, (pic,), seed=3)) / 127.5 - 1.0
        assert torch.allclose(INVARIANCES[name](base), want, atol=1e-12), name
    # and a grey-level stroke (not 0 or 255) is where the identity is only approximate
    grey = np.full((1, 6, 6), 100.0)
    got = INVARIANCES["invert"](torch.from_numpy(blend(grey, (photo,), seed=3)) / 127.5 - 1.0)
    want = torch.from_numpy(blend(grey, (255.0 - photo,), seed=3)) / 127.5 - 1.0
    assert not torch.allclose(got, want)
