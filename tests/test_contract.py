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
