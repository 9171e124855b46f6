"""Shared fixtures: tiny configurations of every registered model, so the suite stays fast."""

from __future__ import annotations

import pytest
import torch

from genzoo.config import RunConfig, TrainConfig, apply_overrides
from genzoo.data import DataConfig
from genzoo.models import MODELS, get_model_class

# model name -> overrides (section.key -> value) for a configuration that runs in milliseconds.
# Every registered model must appear here; test_contract checks that.
TINY: dict[str, dict] = {
    "vae": {"data.name": "digits", "model.channels": "4,8", "model.fc": 16,
            "model.latent_dim": 3},
    "gan": {"data.name": "digits", "data.image_size": 8, "model.nz": 4, "model.ngf": 4,
            "model.ndf": 4},
}


def tiny_config(model: str, **train) -> RunConfig:
    get_model_class(model)
    cfg = RunConfig(model=model, model_cfg=MODELS[model].Config(), data=DataConfig(),
                    train=TrainConfig(batch_size=16, log_every=2, sample_every=1000,
                                      checkpoint_every=1000, n_samples=4, progress="none",
                                      device="cpu"))
    apply_overrides(cfg, list(TINY[model].items()))
    apply_overrides(cfg, [(f"train.{k}", v) for k, v in train.items()])
    cfg.check()
    return cfg


@pytest.fixture(autouse=True)
def _few_threads():
    # the test machine has 2 cores; one thread per test process keeps timings predictable
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
