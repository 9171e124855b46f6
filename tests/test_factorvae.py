"""FactorVAE: the dimension-wise permutation, the TC term and which networks each phase trains."""

from __future__ import annotations

import torch
from conftest import tiny_config

from genzoo.data import load_dataset
from genzoo.models import build_model
from genzoo.models.factorvae import permute_dims


def _model(**over):
    cfg = tiny_config("factorvae")
    for k, v in over.items():
        setattr(cfg.model_cfg, k, v)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model("factorvae", cfg.model_cfg, data.spec), data.batch(0, 16, 0)


def test_permutation_keeps_every_marginal_exactly():
    z = torch.randn(257, 6)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(6):  # each column is the same multiset of values
        assert torch.equal(p[:, j].sort().values, z[:, j].sort().values)
    assert not torch.equal(p, z)


def test_permutation_breaks_dependence_between_dimensions():
    """z1 = z0 exactly (correlation 1); after permuting, their correlation is about 0."""
    z0 = torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))
    z = torch.cat([z0, z0, -z0], 1)
    p = permute_dims(z, torch.Generator().manual_seed(2))
    c = torch.corrcoef(p.T)
    assert c[0, 1].abs() < 0.06 and c[0, 2].abs() < 0.06 and c[1, 2].abs() < 0.06
    rows_kept = (p[:, 0] == p[:, 1]).float().mean()  # a row survives by chance ~ 1/4000
    assert rows_kept < 0.01


def test_d_phase_trains_only_the_discriminator_even_with_all_gradients_on():
    """The codes enter the D phase detached: the encoder gets no gradient from D's loss."""
    model, batch = _model()
    model.loss(batch, "D")["loss"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.discriminator.parameters())


def test_main_phase_tc_gradient_reaches_the_encoder_through_d():
    """gamma * TC changes the encoder's gradient (through D) and leaves the decoder's alone."""
    grads = {}
    for gamma in (0.0, 50.0):
        model, batch = _model(gamma=gamma)
        for p in model.discriminator.parameters():  # what the trainer does in the main phase
            p.requires_grad_(False)
        torch.manual_seed(5)  # the same reparameterisation noise for both
        model.loss(batch, "main")["loss"].backward()
        grads[gamma] = ([p.grad.clone() for p in model.encoder.parameters()],
                        [p.grad.clone() for p in model.decoder.parameters()])
        assert all(p.grad is None for p in model.discriminator.parameters())
    assert any(not torch.allclose(a, b) for a, b in zip(grads[0.0][0], grads[50.0][0]))
    assert all(torch.allclose(a, b) for a, b in zip(grads[0.0][1], grads[50.0][1]))


def test_tc_term_is_the_mean_discriminator_logit():
    model, batch = _model(gamma=3.0)
    torch.manual_seed(7)
    terms = model.loss(batch, "main")
    torch.manual_seed(7)
    mu, logvar = model.encode(batch["x"])
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    expected = model.discriminator(z).mean()
    assert torch.allclose(terms["tc"], expected.detach(), atol=1e-6)
    assert torch.allclose(terms["loss"], terms["nelbo"] + 3.0 * terms["tc"], atol=1e-4)
