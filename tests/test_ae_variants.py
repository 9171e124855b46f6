"""Autoencoder variants of the VAE family: plain AE, denoising AE (three noises), beta-VAE, and
latent traversals."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from genzoo.cli import main
from genzoo.config import apply_overrides
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.vae import corrupt
from genzoo.train import train
from genzoo.viz.traversal import traversal_images


def _model(**model):
    cfg = tiny_config("vae")
    apply_overrides(cfg, [(f"model.{k}", v) for k, v in model.items()])
    cfg.check()
    from genzoo.data import load_dataset

    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model("vae", cfg.model_cfg, data.spec), data


def test_corruptions_have_the_stated_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 1, 16, 16)
    gauss = corrupt(x, "gaussian", 0.3, g)
    assert gauss.std().item() == pytest.approx(0.3, rel=0.02)
    masked = corrupt(x, "masking", 0.25, g)
    hit = masked != 0
    assert hit.float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert (masked[hit] == -1).all()
    sp = corrupt(x, "salt-pepper", 0.2, g)
    hit = sp != 0
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(sp[hit].unique().tolist()) == {-1.0, 1.0}
    assert (sp[hit] == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert torch.equal(corrupt(x, "none", 0.5, g), x)


def test_plain_autoencoder_loss_is_reconstruction_only_and_deterministic():
    model, data = _model(kind="ae")
    batch = data.batch(0, 16, 0)
    a, b = model.loss(batch, "main"), model.loss(batch, "main")
    assert set(a) == {"loss", "recon"}
    assert torch.equal(a["loss"], b["loss"])  # no sampled z: the same loss twice
    mu, _ = model.encode(batch["x"])
    expect = -model.log_px_z(batch["x"], model.decoder_out(mu)).mean()
    assert a["loss"].item() == pytest.approx(expect.item(), rel=1e-6)
    with pytest.raises(GenzooError, match="no likelihood"):
        model.log_prob(batch["x"])


def test_autoencoder_samples_from_the_fitted_code_gaussian():
    model, data = _model(kind="ae")
    model.code_mean.fill_(5.0)
    model.code_var.fill_(1e-8)
    model.eval()
    s = model.sample(3, generator=torch.Generator().manual_seed(0))
    z = torch.full((3, model.latent_dim), 5.0)
    assert torch.allclose(s, model.decode(z), atol=1e-5)
    # training moves the running code statistics towards the batch's codes
    model.train()
    before = model.code_mean.clone()
    model.loss(data.batch(0, 16, 0), "main")
    assert not torch.equal(before, model.code_mean)


def test_denoising_encoder_sees_noise_but_target_is_clean(monkeypatch):
    model, data = _model(kind="ae", noise="masking", noise_level=0.5)
    batch = data.batch(0, 16, 0)
    seen = {}
    orig = model.encode

    def spy(x):
        seen["x"] = x
        return orig(x)

    monkeypatch.setattr(model, "encode", spy)
    torch.manual_seed(1)
    terms = model.loss(batch, "main")
    assert not torch.equal(seen["x"], batch["x"])  # corrupted input
    mu, _ = orig(seen["x"])
    clean = -model.log_px_z(batch["x"], model.decoder_out(mu)).mean()
    assert terms["loss"].item() == pytest.approx(clean.item(), rel=1e-6)  # clean target


def test_denoising_autoencoder_learns_to_denoise(tmp_path):
    # trained on masked digits, it reconstructs masked test digits closer to the clean ones than
    # the corrupted input is
    cfg = tiny_config("vae", steps=300, batch_size=64)
    apply_overrides(cfg, [("model.kind", "ae"), ("model.noise", "masking"),
                          ("model.noise_level", "0.3"), ("model.arch", "mlp"),
                          ("model.hidden", "64"), ("model.latent_dim", "16"),
                          ("model.decoder", "gaussian"), ("train.lr", "3e-3")])
    train(cfg, tmp_path / "dae")
    from genzoo.data import load_dataset
    from genzoo.train.rundir import load_run

    model, _, _ = load_run(tmp_path / "dae")
    test = load_dataset(cfg.data, "test")
    x = test.to_float(test.x)
    noisy = corrupt(x, "masking", 0.3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        rec = model.decode(model.encode(noisy)[0])
    err_noisy = (noisy - x).pow(2).mean().item()
    err_rec = (rec - x).pow(2).mean().item()
    assert err_rec < 0.6 * err_noisy, (err_rec, err_noisy)


def test_beta_scales_the_kl_term():
    m1, data = _model(beta=1.0)
    m4, _ = _model(beta=4.0)
    batch = data.batch(0, 16, 0)
    torch.manual_seed(3)
    t1 = m1.loss(batch, "main")
    torch.manual_seed(3)
    t4 = m4.loss(batch, "main")
    assert t4["loss"].item() == pytest.approx(
        t1["recon"].item() + 4 * t1["kl"].item(), rel=1e-5)


def test_traversal_walks_one_latent_per_row():
    model, _ = _model(latent_dim=3)
    model.eval()
    base = torch.tensor([0.5, -0.2, 0.1])
    imgs = traversal_images(model, base, [0, 2], steps=5, span=2.0)
    assert imgs.shape == (10, *model.spec.shape)
    vals = torch.linspace(-2, 2, 5)
    for row, d in enumerate([0, 2]):
        for j, v in enumerate(vals):
            z = base.clone()
            z[d] = v
            expect = model.decode(z.view(1, -1))[0]
            assert torch.allclose(imgs[row * 5 + j], expect, atol=1e-6)
    with pytest.raises(GenzooError, match="do not exist"):
        traversal_images(model, base, [3])


def test_plot_traversal_cli(tmp_path, capsys):
    cfg = tiny_config("vae", steps=2)
    train(cfg, tmp_path / "run")
    assert main(["plot", "traversal", str(tmp_path / "run"), "--dims", "0,1",
                 "--steps", "4"]) == 0
    from PIL import Image

    with Image.open(tmp_path / "run" / "traversal.png") as im:
        assert im.size[0] > im.size[1]  # 4 columns, 2 rows
    assert main(["plot", "traversal", str(tmp_path / "run"), "--dims", "x"]) == 1
    assert "comma-separated" in capsys.readouterr().err
