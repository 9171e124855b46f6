"""VAE maths: closed-form KL, the ELBO, and the importance-sampled likelihood."""

from __future__ import annotations

import math

import torch

from genzoo.data.base import DataSpec
from genzoo.models.vae import VAE, VAEConfig


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.2, -0.7, 1.1]])
    analytic = VAE.kl_divergence(mu, logvar).item()
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(400_000, 3)
    q = torch.distributions.Normal(mu, std)
    p = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(1).mean().item()
    assert abs(analytic - mc) < 0.01
    # by hand for one dimension: 0.5 * (mu^2 + e^lv - 1 - lv)
    by_hand = sum(0.5 * (m * m + math.exp(lv) - 1 - lv) for m, lv in
                  zip(mu[0].tolist(), logvar[0].tolist()))
    assert abs(analytic - by_hand) < 1e-5
    assert VAE.kl_divergence(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


def _tiny_binary_vae():
    """A VAE over 2-pixel binary images with a 1-D latent: p(x) can be integrated exactly."""
    torch.manual_seed(1)
    cfg = VAEConfig(arch="mlp", latent_dim=1, hidden=(8,))
    model = VAE(cfg, DataSpec("image", (1, 1, 2)))
    for p in model.decoder.parameters():
        p.data.mul_(3.0)  # a decoder that depends strongly on z makes the test meaningful
    # proposal q(z|x) = N(0, 1.5^2) for every x: wider than the prior, so the importance
    # weights have finite variance and k = 20,000 samples pin log p(x) down to ~0.01 nats
    last = model.encoder[-1][-1]
    last.weight.data.zero_()
    last.bias.data.copy_(torch.tensor([0.0, 2 * math.log(1.5)]))
    return model.eval()


def _exact_log_px(model, x):
    import copy

    model = copy.deepcopy(model).double()  # float64 quadrature: the check is to 1e-4
    z = torch.linspace(-9, 9, 20001, dtype=torch.float64).unsqueeze(1)  # grid over the prior
    logits = model.decoder_out(z).view(-1, 2)
    t = (x.double().view(1, 2) + 1) / 2
    log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, t.expand_as(logits), reduction="none").sum(1)
    log_pz = -0.5 * (z[:, 0] ** 2 + math.log(2 * math.pi))
    dz = (z[1, 0] - z[0, 0]).item()
    return (torch.logsumexp(log_px_z + log_pz, 0) + math.log(dz)).item()


def test_likelihood_of_all_binary_images_sums_to_one_and_is_matches():
    model = _tiny_binary_vae()
    xs = torch.tensor([[a, b] for a in (-1.0, 1.0) for b in (-1.0, 1.0)]).view(4, 1, 1, 2)
    exact = [_exact_log_px(model, x) for x in xs]
    assert abs(sum(math.exp(e) for e in exact) - 1.0) < 1e-4
    g = torch.Generator().manual_seed(0)
    est = model.log_prob(xs, k=20000, chunk=5000, generator=g)
    for e, s in zip(exact, est.tolist()):
        assert abs(e - s) < 0.02, (e, s)


def test_importance_sampling_bound_tightens_with_k():
    model = _tiny_binary_vae()
    x = torch.tensor([1.0, -1.0]).view(1, 1, 1, 2).repeat(10000, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    one = model.log_prob(x, k=1, generator=g).mean().item()
    many = model.log_prob(x, k=200, generator=g).mean().item()
    exact = _exact_log_px(model, x[0])
    assert one < many <= exact + 1e-3
    # with k = 1 the estimate is an unbiased estimate of the ELBO
    with torch.no_grad():
        mu, logvar = model.encode(x[:1])
        zs = mu + (0.5 * logvar).exp() * torch.randn(100_000, 1)
        elbo = (model.log_px_z(x[:1].expand(100_000, 1, 1, 2), model.decoder_out(zs)).mean()
                - VAE.kl_divergence(mu, logvar)).item()
    assert abs(one - elbo) < 0.05


def test_kl_warmup_schedule():
    model = VAE(VAEConfig(arch="mlp", hidden=(4,), latent_dim=2, beta=4.0, kl_warmup=100,
                          decoder="gaussian"),
                DataSpec("points", (2,)))
    model.set_progress(0)
    assert model.kl_weight == 0.0
    model.set_progress(25)
    assert model.kl_weight == 1.0
    model.set_progress(500)
    assert model.kl_weight == 4.0
