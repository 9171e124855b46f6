"""The model contract, tested once for every registered model (tiny configurations)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY, check_loss_terms, check_phase_gradients, check_save_load, tiny_config

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import MODELS, build_model, get_model_class

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
    check_loss_terms(model, data.batch(0, 16, 0))


@pytest.mark.parametrize("name", NAMES)
def test_phase_gradients_and_steps(name):
    """In its phase every parameter of that phase gets a gradient; its optimizer moves only it."""
    cfg, data, model = _setup(name)
    check_phase_gradients(model, data.batch(0, 16, 0), step_optimizers=True)


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_range_and_determinism(name):
    cfg, data, model = _setup(name)
    model.eval()
    if not model.generates:  # a classifier (dann): sampling is a clear error, not garbage
        with pytest.raises(GenzooError, match="does not generate"):
            model.sample(5, generator=torch.Generator().manual_seed(3))
        return
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
    check_save_load(model, tmp_path / "model.safetensors")


def test_a_model_missing_part_of_the_contract_cannot_be_built():
    from genzoo.data.base import DataSpec
    from genzoo.models.base import GenerativeModel

    class NoSample(GenerativeModel):
        phases = ()

        def loss(self, batch, phase):
            return {}

    with pytest.raises(TypeError, match="sample"):
        NoSample(None, DataSpec("points", (2,)))


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_keeps_the_maths(name):
    """train.channels_last: every model computes the same losses and samples in NHWC layout."""
    import copy

    cfg, data, model = _setup(name)
    nhwc = copy.deepcopy(model).to(memory_format=torch.channels_last)
    if not any(p.dim() == 4 and not p.is_contiguous() for p in nhwc.parameters()):
        pytest.skip(f"{name} has no 4-D weights")
    batch = data.batch(0, 8, 0)
    for phase in model.phases:
        model.set_progress(0), nhwc.set_progress(0)
        torch.manual_seed(1)
        a = model.loss(batch, phase.name)
        torch.manual_seed(1)
        b = nhwc.loss(batch, phase.name)
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-4, msg=f"{phase.name}/{k}")
    if not getattr(model, "generates", True):  # a classifier (dann): nothing to sample
        return
    model.eval(), nhwc.eval()
    g = torch.Generator
    torch.testing.assert_close(nhwc.sample(3, generator=g().manual_seed(0)),
                               model.sample(3, generator=g().manual_seed(0)),
                               rtol=1e-4, atol=1e-4)
