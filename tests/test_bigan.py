"""BiGAN/ALI: the discriminator judges (x, E(x)) against (G(z), z), and each phase's gradients
reach only its own networks."""

from __future__ import annotations

import torch
from conftest import only_phase_grads, tiny_config

from genzoo.data import load_dataset
from genzoo.models import build_model


def _model(**model):
    cfg = tiny_config("bigan")
    for k, v in model.items():
        setattr(cfg.model_cfg, k, v)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model(cfg.model, cfg.model_cfg, data.spec), data.batch(0, 8, 0)


def test_discriminator_sees_real_pairs_and_fake_pairs():
    model, batch = _model()
    model.eval()  # no dropout, batch norm by running statistics: the maps are deterministic
    seen = []
    model.discriminator.register_forward_hook(lambda m, args, out: seen.append(args))
    gen_in = []
    model.generator.register_forward_hook(lambda m, args, out: gen_in.append((args[0], out)))
    model.loss(batch, "D")
    (x_real, z_real), (x_fake, z_fake) = seen
    assert torch.equal(x_real, batch["x"])
    assert torch.allclose(z_real, model.encode(batch["x"]))  # the real pair: (x, E(x))
    z, gz = gen_in[0]
    assert torch.equal(z_fake, z) and torch.equal(x_fake, gz)  # the fake pair: (G(z), z)
    assert z_fake.shape == (8, model.cfg.nz)


def test_d_phase_gradients_reach_only_the_discriminator():
    model, batch = _model()
    model.loss(batch, "D")["loss"].backward()  # nothing frozen: E and G must be cut off inside
    assert all(p.grad is None for m in (model.encoder, model.generator) for p in m.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.discriminator.parameters())


def test_eg_phase_trains_encoder_and_generator_through_the_discriminator():
    model, batch = _model()
    phase = model.phases[1]
    assert phase.name == "EG"
    only_phase_grads(model, phase)
    try:
        model.loss(batch, "EG")["loss"].backward()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    assert all(p.grad is None for p in model.discriminator.parameters())
    for m in (model.encoder, model.generator):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_eg_labels_are_the_d_labels_swapped():
    import torch.nn.functional as F

    model, batch = _model()
    model.eval()
    logits = []
    model.discriminator.register_forward_hook(lambda m, args, out: logits.append(out))
    torch.manual_seed(1)
    d = model.loss(batch, "D")["loss"]
    torch.manual_seed(1)  # the same z: the same pairs
    eg = model.loss(batch, "EG")["loss"]
    lr, lf = logits[0], logits[1]
    assert torch.equal(lr, logits[2]) and torch.equal(lf, logits[3])
    # -log sigmoid(l) = softplus(-l); -log(1 - sigmoid(l)) = softplus(l)
    assert torch.allclose(d, F.softplus(-lr).mean() + F.softplus(lf).mean())
    assert torch.allclose(eg, F.softplus(lr).mean() + F.softplus(-lf).mean())


def test_ali_encoder_samples_in_training_and_encodes_the_mean():
    model, batch = _model(stochastic=True)
    model.eval()
    x = batch["x"]
    mu = model.encoder(x).chunk(2, 1)[0]
    assert torch.equal(model.encode(x), mu)
    assert not torch.equal(model._infer(x, sample=True), mu)
    assert model.reconstruct(x).shape == x.shape
