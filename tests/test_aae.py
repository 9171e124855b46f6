"""Adversarial autoencoder: priors, which networks each phase trains, labels, the latent plot."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY, run_ok, tiny_config

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.aae import labelled_mask, mixture_prior


def _model(**over):
    cfg = tiny_config("aae")
    for k, v in over.items():
        setattr(cfg.model_cfg, k, v)
    cfg.model_cfg.check()
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model("aae", cfg.model_cfg, data.spec), data.batch(0, 32, 0)


def test_mixture_prior_arms_have_the_stated_means_and_spreads():
    labels = torch.arange(10).repeat_interleave(4000)
    z, comp = mixture_prior(len(labels), 10, labels, torch.Generator().manual_seed(0))
    assert torch.equal(comp, labels)
    for k in (0, 3, 7):
        a = 2 * math.pi * k / 10
        radial, tangent = torch.tensor([math.cos(a), math.sin(a)]), \
            torch.tensor([-math.sin(a), math.cos(a)])
        zk = z[labels == k]
        assert zk.mean(0).tolist() == pytest.approx((4 * radial).tolist(), abs=0.05)
        assert float((zk @ radial).std()) == pytest.approx(1.0, rel=0.05)
        assert float((zk @ tangent).std()) == pytest.approx(0.25, rel=0.05)


def test_d_phase_trains_only_the_discriminators_even_with_all_gradients_on():
    model, batch = _model()  # prior=categorical: two discriminators
    model.loss(batch, "D")["loss"].backward()
    for net in (model.encoder, model.decoder):
        assert all(p.grad is None for p in net.parameters())
    for net in (model.discriminator, model.cat_discriminator):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_main_phase_adversarial_gradient_reaches_the_encoder_only():
    grads = {}
    for w in (0.0, 1.0):
        model, batch = _model(adv_weight=w, labelled=0.0)
        for net in (model.discriminator, model.cat_discriminator):  # as the trainer does
            for p in net.parameters():
                p.requires_grad_(False)
        model.loss(batch, "main")["loss"].backward()
        grads[w] = ([p.grad.clone() for p in model.encoder.parameters()],
                    [p.grad.clone() for p in model.decoder.parameters()])
    assert any(not torch.allclose(a, b) for a, b in zip(grads[0.0][0], grads[1.0][0]))
    assert all(torch.allclose(a, b) for a, b in zip(grads[0.0][1], grads[1.0][1]))


def test_supervised_mixture_feeds_the_label_to_d_and_draws_the_labels_arm():
    model, batch = _model(prior="mixture", supervised=True, labelled=0.0)
    assert model.discriminator[0].in_features == 2 + 10  # code + one-hot label
    y = torch.full((500,), 2)
    z = model.prior_sample(500, y, torch.Generator().manual_seed(0))
    angle = torch.atan2(z[:, 1], z[:, 0]).mean()
    assert float(angle) == pytest.approx(2 * math.pi * 2 / 10, abs=0.05)
    model.loss(batch, "D")  # runs with labels
    with pytest.raises(GenzooError, match="labelled"):
        _model(prior="mixture", labelled=0.1)


def test_labelled_subset_is_a_fixed_fraction_of_images():
    x = load_dataset(tiny_config("aae").data, "train").to_float(
        load_dataset(tiny_config("aae").data, "train").x)
    m = labelled_mask(x, 0.1)
    assert 0.07 < float(m.float().mean()) < 0.13
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    assert torch.equal(labelled_mask(x[perm], 0.1), m[perm])  # a property of the image


def test_categorical_code_and_classifier():
    model, batch = _model()
    code = model.encode(batch["x"])
    assert code.shape == (32, 10 + 2)
    assert torch.allclose(code[:, :10].sum(1), torch.ones(32), atol=1e-5)  # q(y|x) sums to 1
    assert model.classify(batch["x"]).shape == (32, 10)
    assert model.decode(code).shape == batch["x"].shape
    assert model.latent_dim == 12  # what decode takes: interpolation and traversal use it
    assert model.decode(torch.randn(3, model.latent_dim)).shape == (3, *batch["x"].shape[1:])


def test_latent_plot_of_a_trained_run(tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in TINY["aae"].items() if k != "data.name"]
    run_ok(capsys, "train", "aae", "--data", "digits", "--out", tmp_path / "r", "--steps", 2,
           "--set", "progress=none", "--set", "device=cpu", *sets)
    out = run_ok(capsys, "plot", "latent", tmp_path / "r", "--n", 100)
    assert (tmp_path / "r" / "latent.png").stat().st_size > 1000 and "latent.png" in out
