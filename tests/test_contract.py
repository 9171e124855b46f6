"""The model contract, tested once for every registered model (tiny configurations)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, tiny_config

from genzoo.config import TrainConfig
from genzoo.data import load_dataset
from genzoo.models import MODELS, build_model, get_model_class, load_model
from genzoo.train.loop import make_optimizer

get_model_class("vae")  # fill the registry
NAMES = sorted(MODELS)


def _setup(name):
    cfg = tiny_config(name)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.model_cfg, data.spec)
    return cfg, data, model


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_loss_terms(name):
    cfg, data, model = _setup(name)
    batch = data.batch(0, 16, 0)
    assert model.phases, "a model needs at least one phase"
    for phase in model.phases:
        terms = model.loss(batch, phase.name)
        assert "loss" in terms, f"{name}/{phase.name} returned no 'loss'"
        assert terms["loss"].dim() == 0 and terms["loss"].requires_grad
        for k, v in terms.items():
            assert v.dim() == 0, f"{k} is not a scalar"
            assert torch.isfinite(v), f"{k} is not finite"
            if k != "loss":
                assert not v.requires_grad, f"logging term {k} must be detached"


@pytest.mark.parametrize("name", NAMES)
def test_phase_gradients_and_steps(name):
    """In its phase every parameter of that phase gets a gradient; its optimizer moves only it."""
    cfg, data, model = _setup(name)
    batch = data.batch(0, 16, 0)
    all_params = dict(model.named_parameters())
    names_of = {id(p): n for n, p in all_params.items()}
    covered = set()
    for phase in model.phases:
        mine = {id(p) for p in model.phase_parameters(phase)}
        assert mine, f"phase {phase.name} has no parameters"
        covered |= mine
        for p in all_params.values():
            p.requires_grad_(id(p) in mine)
            p.grad = None
        model.loss(batch, phase.name)["loss"].backward()
        for p in all_params.values():
            if id(p) in mine:
                assert p.grad is not None, f"{names_of[id(p)]} got no gradient in {phase.name}"
                assert p.grad.abs().sum() > 0, f"{names_of[id(p)]} has a zero gradient"
            else:
                assert p.grad is None, f"{names_of[id(p)]} got a gradient in {phase.name}"
        before = {n: p.detach().clone() for n, p in all_params.items()}
        opt = make_optimizer(phase, list(model.phase_parameters(phase)), TrainConfig(lr=1e-2))
        opt.step()
        for n, p in all_params.items():
            moved = not torch.equal(before[n], p.detach())
            assert moved == (id(p) in mine), f"{n} moved={moved} in phase {phase.name}"
    assert covered == {id(p) for p in all_params.values()}, "some parameters are in no phase"


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_range_and_determinism(name):
    cfg, data, model = _setup(name)
    model.eval()
    x = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert tuple(x.shape) == (5, *data.spec.shape)
    assert torch.isfinite(x).all()
    if data.spec.kind == "image":
        assert x.min() >= -1 and x.max() <= 1
    y = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, y), "the same generator must give the same samples"


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    cfg, data, model = _setup(name)
    # move the weights away from their initial values so the check means something
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    model.save(tmp_path / "model.safetensors")
    loaded = load_model(tmp_path / "model.safetensors")
    assert type(loaded) is type(model) and loaded.cfg == model.cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    model.eval()
    loaded.eval()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.sample(3, generator=g1), loaded.sample(3, generator=g2))
