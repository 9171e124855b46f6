"""Shared fixtures: tiny configurations of every registered model, so the suite stays fast."""

from __future__ import annotations

import pytest
import torch

from genzoo.cli import main
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
    "vqvae": {"data.name": "digits", "model.stages": "8", "model.res_blocks": 1,
              "model.res_channels": 4, "model.codebook_size": 8, "model.code_dim": 3,
              "model.restart_after": 2},
    "pixelcnn": {"data.name": "digits", "model.channels": 4, "model.layers": 1,
                 "model.kernel": 3, "model.head": 8},
    "wavenet": {"data.name": "tones", "data.clip_length": 64, "model.residual_channels": 4,
                "model.skip_channels": 8, "model.dilations": "1,2,4"},
    # full-resolution networks: every parameter is in use (test_progan covers the growing)
    "progan": {"data.name": "digits", "data.image_size": 8, "model.nz": 4,
               "model.channels": "8,4", "model.progressive": "false"},
    "stylegan": {"data.name": "digits", "data.image_size": 8, "model.nz": 4, "model.w_dim": 4,
                 "model.mapping_layers": 2, "model.channels": "8,4",
                 "model.progressive": "false"},
    "cyclegan": {"data.name": "digits", "data.target": "digits-m", "model.ngf": 4,
                 "model.ndf": 4, "model.blocks": 1, "model.downs": 1, "model.d_layers": 1,
                 "model.pool_size": 4},
    "pix2pix": {"data.name": "digits", "data.target": "digits-m", "data.paired": True,
                "model.ngf": 4, "model.ndf": 4, "model.depth": 2, "model.d_layers": 1},
    "dann": {"data.name": "digits", "data.target": "digits-m", "model.conv": "4,6",
             "model.padding": 2, "model.hidden": 8, "model.domain_hidden": 8,
             "model.schedule_steps": 10},
    "factorvae": {"data.name": "shapes2d", "data.image_size": 16, "data.factor_grid": "3,2,4,4,4",
                  "model.channels": "4,8", "model.fc": 16, "model.latent_dim": 3,
                  "model.d_hidden": 8, "model.d_layers": 2},
    "aae": {"data.name": "digits", "model.channels": "4,8", "model.fc": 16, "model.latent_dim": 2,
            "model.d_hidden": "8", "model.prior": "categorical", "model.labelled": 0.5},
    "drnet": {"data.name": "moving-digits", "data.frames": 3, "data.num_digits": 1,
              "data.frame_size": 16, "model.channels": 4, "model.content_dim": 4,
              "model.pose_dim": 2, "model.scene_hidden": 8, "model.bank": 4},
    "bigan": {"data.name": "digits", "data.image_size": 8, "model.nz": 4, "model.ngf": 4,
              "model.ndf": 4, "model.hidden": 8},
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


def growing_progan_config(steps: int, **train) -> RunConfig:
    """digits 8x8 grown from 4x4: 4x4 for 3 steps (48 images), 8x8 fading in over steps 3-5,
    then stabilising; checkpoints every 4 steps and an EMA, for resume tests across growth."""
    cfg = tiny_config("progan", steps=steps, checkpoint_every=4, ema_decay=0.9, **train)
    apply_overrides(cfg, [("model.progressive", "true"), ("model.fade_kimg", "0.048"),
                          ("model.stab_kimg", "0.048")])
    return cfg


@pytest.fixture(autouse=True)
def _few_threads():
    # the test machine has 2 cores; one thread per test process keeps timings predictable
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- contract checks
# shared by test_contract (every registered model) and test_gan (every GAN variant)

def only_phase_grads(model, phase) -> set[int]:
    """What the trainer does before a phase: only that phase's parameters collect gradients."""
    mine = {id(p) for p in model.phase_parameters(phase)}
    for p in model.parameters():
        p.requires_grad_(id(p) in mine)
        p.grad = None
    return mine


def check_loss_terms(model, batch) -> None:
    """Every phase returns a scalar 'loss' with a graph and detached, finite scalar logs."""
    assert model.phases, "a model needs at least one phase"
    try:
        for phase in model.phases:
            only_phase_grads(model, phase)
            terms = model.loss(batch, phase.name)
            assert "loss" in terms, f"phase {phase.name} returned no 'loss'"
            assert terms["loss"].dim() == 0 and terms["loss"].requires_grad
            for k, v in terms.items():
                assert v.dim() == 0, f"{phase.name}/{k} is not a scalar"
                assert torch.isfinite(v), f"{phase.name}/{k} is not finite"
                if k != "loss":
                    assert not v.requires_grad, f"logging term {phase.name}/{k} is not detached"
    finally:
        for p in model.parameters():
            p.requires_grad_(True)


def check_phase_gradients(model, batch, step_optimizers: bool = False) -> None:
    """In its phase every parameter of that phase gets a non-zero gradient and no other one
    any; with step_optimizers, the phase's optimizer moves exactly its parameters."""
    from genzoo.train.loop import make_optimizer

    names = {id(p): n for n, p in model.named_parameters()}
    covered: set[int] = set()
    try:
        for phase in model.phases:
            mine = only_phase_grads(model, phase)
            assert mine, f"phase {phase.name} has no parameters"
            covered |= mine
            model.loss(batch, phase.name)["loss"].backward()
            for p in model.parameters():
                n = names[id(p)]
                if id(p) in mine:
                    assert p.grad is not None, f"{n} got no gradient in phase {phase.name}"
                    assert p.grad.abs().sum() > 0, f"{n} has a zero gradient in {phase.name}"
                else:
                    assert p.grad is None, f"{n} got a gradient in phase {phase.name}"
            if step_optimizers:
                before = {id(p): p.detach().clone() for p in model.parameters()}
                make_optimizer(phase, list(model.phase_parameters(phase)),
                               TrainConfig(lr=1e-2)).step()
                for p in model.parameters():
                    moved = not torch.equal(before[id(p)], p.detach())
                    assert moved == (id(p) in mine), f"{names[id(p)]} moved={moved} in " \
                                                     f"phase {phase.name}"
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    assert covered == set(names), "some parameters are in no phase"


def check_save_load(model, path) -> None:
    """safetensors save -> load_model rebuilds the same model: state and samples identical."""
    from genzoo.models import load_model

    with torch.no_grad():  # away from the initial values, so the check means something
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.cfg == model.cfg
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    model.eval()
    loaded.eval()
    if not model.generates:  # a classifier (dann): the same outputs on the same inputs
        x = torch.rand(3, *model.spec.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
        assert torch.equal(model.classify(x), loaded.classify(x))
        return
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(model.sample(3, generator=g1), loaded.sample(3, generator=g2))


# ----------------------------------------------------------------------------- the CLI in-process

def cli(*args) -> int:
    """Run `genzoo ARGS` in-process; argparse's exits come back as their exit code."""
    try:
        return main([str(a) for a in args])
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1


def run_ok(capsys, *args) -> str:
    rc = cli(*args)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err
    return out


def run_error(capsys, *args) -> str:
    """The command fails with exactly one line `genzoo: error: ...` on stderr; returns it."""
    rc = cli(*args)
    out, err = capsys.readouterr()
    assert rc != 0
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("genzoo: error: "), err
    return lines[0]
