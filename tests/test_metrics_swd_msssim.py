"""SWD on a Laplacian pyramid (arXiv:1710.10196, app. D) and MS-SSIM (Wang et al. 2003).

Independent references: scipy for the pyramid's filtering and for 1-D Wasserstein distances;
torchmetrics for MS-SSIM on inputs where its definition and the published one agree.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage, stats

from genzoo.errors import GenzooError
from genzoo.metrics.msssim import BETAS, _halve, ms_ssim, ms_ssim_pairs, msssim, msssim_setting
from genzoo.metrics.swd import (
    laplacian_pyramid,
    projected_w1,
    pyr_down,
    pyr_up,
    pyramid_sizes,
    sliced_wasserstein,
    swd,
)

FAST = {"descriptors_per_image": 16, "n_directions": 32, "n_repeats": 2}


def smooth_images(n, c=3, size=32, seed=0, dtype=torch.float32):
    """Images with structure at every scale: upsampled noise plus a little fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, c, size // 4, size // 4, generator=g, dtype=torch.float64)
    x = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    x = x + 0.1 * torch.randn(n, c, size, size, generator=g, dtype=torch.float64)
    return x.tanh().to(dtype)


def noise_like(x, seed):
    return torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


def fake_ctx(fake, real=None, **kw):
    return SimpleNamespace(fake=lambda: fake, real=lambda split="train": real, seed=0,
                           options={}, batch_size=64, device=torch.device("cpu"), **kw)


# --- Laplacian pyramid --------------------------------------------------------------------------

def _scipy_kernel():
    k = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    return np.outer(k, k)[None, None]  # (1, 1, 5, 5)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 1, 15, 10)])
def test_pyramid_filters_match_scipy_mirror_convolution(shape):
    # the paper's code: scipy.ndimage.convolve(mode='mirror'), even pixels kept / zeros inserted
    x = torch.randn(shape, dtype=torch.float64)
    down = ndimage.convolve(x.numpy(), _scipy_kernel(), mode="mirror")[:, :, ::2, ::2]
    assert torch.allclose(pyr_down(x), torch.from_numpy(down), atol=1e-12)
    small = pyr_down(x)
    canvas = np.zeros(shape)
    canvas[:, :, ::2, ::2] = small.numpy()
    up = ndimage.convolve(canvas, 4 * _scipy_kernel(), mode="mirror")
    assert torch.allclose(pyr_up(small, shape[-2:]), torch.from_numpy(up), atol=1e-12)


@pytest.mark.parametrize("shape,levels", [((2, 3, 32, 32), 3), ((2, 1, 28, 28), 2),
                                          ((1, 2, 27, 21), 3)])
def test_laplacian_pyramid_adds_back_to_the_image(shape, levels):
    x = torch.randn(shape, dtype=torch.float64)
    pyr = laplacian_pyramid(x, levels)
    assert len(pyr) == levels and pyr[0].shape == x.shape
    assert torch.equal(pyr[-1], pyr_down(pyr_down(x)) if levels == 3 else pyr_down(x))
    g = pyr[-1]
    for level in reversed(pyr[:-1]):
        g = level + pyr_up(g, level.shape[-2:])
    assert torch.allclose(g, x, atol=1e-12, rtol=0)
    assert pyr[0].abs().max() > 1e-3  # the Laplacian levels are not trivially zero


def test_pyramid_levels_stop_at_min_resolution():
    assert pyramid_sizes(32, 32) == [(32, 32), (16, 16)]
    assert pyramid_sizes(64, 64) == [(64, 64), (32, 32), (16, 16)]
    assert pyramid_sizes(28, 28) == [(28, 28)]  # 14 < 16, as the paper's code
    assert pyramid_sizes(8, 8) == [(8, 8)]  # smaller than 16: the image itself
    assert pyramid_sizes(28, 28, min_resolution=8) == [(28, 28), (14, 14)]
    with pytest.raises(GenzooError, match="at least 8x8"):
        pyramid_sizes(7, 7)
    with pytest.raises(GenzooError, match="min_resolution"):
        pyramid_sizes(32, 32, min_resolution=4)


# --- sliced Wasserstein distance ----------------------------------------------------------------

def test_projected_w1_matches_scipy_per_direction():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(60, 4, generator=g, dtype=torch.float64)
    b = 1.5 * torch.randn(60, 4, generator=g, dtype=torch.float64) + 0.3
    dirs = torch.randn(4, 5, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0)
    ours = projected_w1(a, b, dirs)
    for k in range(5):
        ref = stats.wasserstein_distance((a @ dirs[:, k]).numpy(), (b @ dirs[:, k]).numpy())
        assert ours[k].item() == pytest.approx(ref, rel=1e-12)
    # a 1-D set: the projection on +-1 is the set itself
    one = projected_w1(a[:, :1], b[:, :1], torch.ones(1, 1, dtype=torch.float64))
    assert one.item() == pytest.approx(stats.wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-12)


@pytest.mark.parametrize("size,keys", [(32, ["swd_32", "swd_16"]), (28, ["swd_28"]),
                                       (8, ["swd_8"])])
def test_swd_zero_for_identical_sets_with_keys_per_level(size, keys):
    x = smooth_images(12, c=1 if size == 28 else 3, size=size)
    out = sliced_wasserstein(x, x.clone(), **FAST)
    assert list(out) == keys + ["swd_avg"]
    assert all(v == 0.0 for v in out.values())


def test_swd_grows_with_noise():
    x = smooth_images(24)
    vals = [sliced_wasserstein(x, x + s * noise_like(x, 5), **FAST)
            for s in (0.0, 0.05, 0.2, 0.8)]
    avg = [v["swd_avg"] for v in vals]
    assert avg[0] == 0.0 and all(a < b for a, b in zip(avg, avg[1:])), avg
    for key in ("swd_32", "swd_16"):
        per_level = [v[key] for v in vals]
        assert all(a < b for a, b in zip(per_level, per_level[1:])), (key, per_level)


def test_swd_ignores_a_set_wide_contrast_change():
    # the paper normalises each set per channel on its own, so a global affine change of the
    # fake set is invisible (normalising both sets together would not be)
    x = smooth_images(16)
    same = sliced_wasserstein(x, 0.5 * x + 0.1, **FAST)["swd_avg"]
    noisy = sliced_wasserstein(x, x + 0.05 * noise_like(x, 5), **FAST)["swd_avg"]
    assert same < 1e-2 < 1.0 < noisy


def test_swd_deterministic_batch_independent_and_seeded():
    x, y = smooth_images(20, seed=1), smooth_images(14, seed=2)  # different sizes: subsampled
    a = sliced_wasserstein(x, y, seed=3, batch_size=256, **FAST)
    b = sliced_wasserstein(x, y, seed=3, batch_size=256, **FAST)
    c = sliced_wasserstein(x, y, seed=3, batch_size=3, **FAST)
    d = sliced_wasserstein(x, y, seed=4, **FAST)
    assert a == b
    assert c == pytest.approx(a, rel=1e-6)
    assert d["swd_avg"] != a["swd_avg"]
    assert a["swd_avg"] == pytest.approx((a["swd_32"] + a["swd_16"]) / 2)
    assert a["swd_avg"] > 10  # unrelated images are far apart (x1e3 units)


def test_swd_metric_reports_levels_and_counts():
    fake, real = smooth_images(10, size=32, seed=1), smooth_images(30, size=32, seed=2)
    ctx = fake_ctx(fake, real)
    ctx.options = {"swd_min_resolution": 8}
    out = swd(ctx)
    assert {"swd_32", "swd_16", "swd_8", "swd_avg"} <= set(out)
    assert out["n_real"] == out["n_fake"] == 10 and "1710.10196" in out["protocol"]
    with pytest.raises(GenzooError, match="swd needs image data"):
        swd(fake_ctx(torch.randn(50, 2), real))


# --- MS-SSIM ------------------------------------------------------------------------------------

def block_zero_mean(x, block, seed):
    """Noise whose every block x block tile sums to zero: vanishes after log2(block) halvings."""
    r = noise_like(x, seed)
    mean = F.avg_pool2d(r, block).repeat_interleave(block, 2).repeat_interleave(block, 3)
    return r - mean


@pytest.mark.parametrize("size,scales,kernel,sigma", [
    (32, 3, 7, 1.5 * 7 / 11),  # our choice for 32x32
    (28, 3, 7, 1.5 * 7 / 11),  # our choice for 28x28
    (32, 2, 11, 1.5),
    (176, 5, 11, 1.5),  # the published setting, five scales
])
def test_ms_ssim_matches_torchmetrics(size, scales, kernel, sigma):
    # torchmetrics averages the coarsest SSIM map over a reflection-padded border, we (and Wang et
    # al.) over valid positions; with noise that averages out before the coarsest scale the
    # coarsest terms are 1 in both, and every other term must agree
    tm = pytest.importorskip("torchmetrics.functional.image")
    c = 1 if size == 176 else 3
    x = smooth_images(3, c=c, size=size, dtype=torch.float64)
    y = x + 0.3 * block_zero_mean(x, 2 ** (scales - 1), seed=7)
    betas = tuple(b / sum(BETAS[:scales]) for b in BETAS[:scales]) if scales < 5 else BETAS
    ours = ms_ssim(x, y, kernel_size=kernel, sigma=sigma, betas=betas)
    ref = tm.multiscale_structural_similarity_index_measure(
        x, y, sigma=sigma, kernel_size=kernel, betas=betas, data_range=2.0, k1=0.01, k2=0.03,
        normalize=None, reduction="none")
    assert ours.dtype == torch.float64 and bool((ours < 0.99).all())
    assert torch.allclose(ours, ref.double(), rtol=1e-3, atol=0)


def test_single_scale_matches_torchmetrics_valid_ssim_map():
    # one scale is SSIM; torchmetrics' full SSIM map cropped to valid positions is Wang's mean
    tm = pytest.importorskip("torchmetrics.functional.image")
    x = smooth_images(3, size=24, dtype=torch.float64)
    y = 0.8 * x + 0.1 + 0.3 * noise_like(x, 3)  # luminance and contrast both differ
    ours = ms_ssim(x, y, kernel_size=11, sigma=1.5, betas=(1.0,))
    _, full = tm.structural_similarity_index_measure(x, y, sigma=1.5, kernel_size=11,
                                                     data_range=2.0, return_full_image=True,
                                                     reduction="none")
    ref = full[..., 5:-5, 5:-5].mean((1, 2, 3))
    assert torch.allclose(ours, ref, rtol=1e-6, atol=0)


def test_ms_ssim_identity_symmetry_noise_and_anticorrelation():
    x = smooth_images(4, dtype=torch.float64)
    kw = {"kernel_size": 7, "sigma": 1.5 * 7 / 11, "betas": msssim_setting(32, 32)["betas"]}
    assert torch.allclose(ms_ssim(x, x, **kw), torch.ones(4, dtype=torch.float64), atol=1e-12)
    y = x + 0.2 * noise_like(x, 1)
    assert torch.allclose(ms_ssim(x, y, **kw), ms_ssim(y, x, **kw), atol=1e-14, rtol=0)
    scores = [ms_ssim(x, x + s * noise_like(x, 1), **kw) for s in (0.0, 0.05, 0.2, 0.5, 1.0)]
    for a, b in zip(scores, scores[1:]):
        assert bool((a > b).all())
    anti = ms_ssim(x, -x, **kw)  # negative contrast-structure terms: 0, not NaN
    assert bool((anti == 0).all())


def test_halving_keeps_an_odd_last_row():
    x = torch.arange(7.0).view(1, 1, 1, 7).expand(1, 1, 3, 7)
    assert _halve(x)[0, 0, 0].tolist() == [0.5, 2.5, 4.5, 6.0]
    assert _halve(x).shape == (1, 1, 2, 4)


def test_msssim_setting_for_small_images():
    assert msssim_setting(256, 256) == {"scales": 5, "kernel_size": 11, "sigma": 1.5,
                                        "betas": BETAS}
    for size, scales, kernel in [(32, 3, 7), (28, 3, 7), (8, 1, 7), (64, 4, 7), (24, 2, 11)]:
        s = msssim_setting(size, size)
        assert (s["scales"], s["kernel_size"]) == (scales, kernel), size
        assert sum(s["betas"]) == pytest.approx(1.0) and len(s["betas"]) == scales
        assert s["sigma"] == pytest.approx(1.5 * kernel / 11)
    with pytest.raises(GenzooError, match="at least 7x7"):
        msssim_setting(6, 6)
    with pytest.raises(GenzooError, match="window"):
        ms_ssim(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))  # 5 scales of 11x11


def test_ms_ssim_pairs_deterministic_and_exhaustive():
    imgs = smooth_images(30, size=28, c=1)
    a = ms_ssim_pairs(imgs, n_pairs=40, seed=0)
    assert a == ms_ssim_pairs(imgs, n_pairs=40, seed=0, batch_size=7)
    assert a["msssim"] != ms_ssim_pairs(imgs, n_pairs=40, seed=1)["msssim"]
    assert (a["n_pairs"], a["scales"], a["kernel_size"]) == (40, 3, 7)
    # few images: every pair once
    small = imgs[:6]
    full = ms_ssim_pairs(small, n_pairs=10000)
    s = msssim_setting(28, 28)
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    ref = torch.cat([ms_ssim(small[i:i + 1], small[j:j + 1], kernel_size=s["kernel_size"],
                             sigma=s["sigma"], betas=s["betas"]) for i, j in pairs])
    assert full["n_pairs"] == 15
    assert full["msssim"] == pytest.approx(ref.mean().item(), rel=1e-12)
    assert full["msssim_std"] == pytest.approx(ref.std(correction=0).item(), rel=1e-9)


def test_msssim_metric_collapsed_samples_score_higher():
    varied = smooth_images(20, seed=1)
    collapsed = smooth_images(1, seed=1).expand(20, -1, -1, -1) + 0.05 * noise_like(varied, 2)
    a, b = msssim(fake_ctx(varied)), msssim(fake_ctx(collapsed))
    assert a["msssim"] < 0.5 < b["msssim"] < 1.0
    assert (a["n_pairs"], a["scales"], a["kernel_size"]) == (190, 3, 7)
    with pytest.raises(GenzooError, match="msssim needs image data"):
        msssim(fake_ctx(torch.randn(50, 2)))
