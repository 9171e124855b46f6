"""DANN: gradient reversal, the paper's schedules, the variants' objectives, target accuracy."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, cli, run_error, run_ok, tiny_config
from PIL import Image

from genzoo.config import TrainConfig
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import build_model
from genzoo.models.dann import adaptation_lambda, grad_reverse
from genzoo.train.loop import lr_factor

TINY_SET = [a for k, v in TINY["dann"].items() for a in ("--set", f"{k}={v}")]


def _model(variant="grl", **train):
    cfg = tiny_config("dann", **train)
    cfg.model_cfg.variant = variant
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model("dann", cfg.model_cfg, data.spec), data.batch(0, 16, 0)


def _grads(model, loss, module):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [p.grad.clone() for p in getattr(model, module).parameters()]


def test_gradient_reversal_layer():
    x = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(4, 5)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.3 * w)  # d/dx of sum(w * x) is w; reversed and scaled
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(w))


def test_lambda_and_lr_schedules_match_hand_computed_values():
    assert adaptation_lambda(0.0) == 0.0
    # 2 / (1 + e^-x) - 1 = tanh(x / 2): p = 0.1 -> tanh(0.5), p = 0.5 -> tanh(2.5)
    assert adaptation_lambda(0.1) == pytest.approx(0.46211715726, abs=1e-10)
    assert adaptation_lambda(0.5) == pytest.approx(0.98661429815, abs=1e-10)
    assert adaptation_lambda(1.0) == pytest.approx(0.99990920426, abs=1e-10)
    model, _ = _model()  # schedule_steps=10 in the tiny config
    model.set_progress(1)
    assert model.lam == pytest.approx(0.46211715726)
    model.set_progress(50)  # past the end: p is clamped to 1
    assert model.lam == pytest.approx(0.99990920426)
    # the annealed learning rate mu_0 / (1 + 10 p)^0.75
    tc = TrainConfig(steps=100, lr_decay="inv")
    assert lr_factor(0, tc) == 1.0
    assert lr_factor(10, tc) == pytest.approx(2 ** -0.75)  # 0.5946...
    assert lr_factor(100, tc) == pytest.approx(11 ** -0.75)


def test_grl_gradients_equal_classification_minus_lambda_domain():
    """DANN's one backward pass: the encoder gets dL_y - lambda dL_d, the domain classifier
    +dL_d (checked against the two losses computed separately, without the reversal layer)."""
    model, batch = _model("grl")
    model.set_progress(2)
    lam = model.lam
    assert 0 < lam < 1
    g_total = _grads(model, model.loss(batch, "main")["loss"], "encoder")
    d_total = [p.grad.clone() for p in model.discriminator.parameters()]
    cls = F.cross_entropy(model.classify(batch["x"]), batch["y"])
    g_cls = _grads(model, cls, "encoder")
    dom, _, _ = model._domain_loss(model.embed(batch["x"]), model.embed(batch["x_b"]))
    g_dom = _grads(model, dom, "encoder")
    d_dom = [p.grad.clone() for p in model.discriminator.parameters()]
    for a, b, c in zip(g_total, g_cls, g_dom):
        assert torch.allclose(a, b - lam * c, atol=1e-6)
        assert c.abs().sum() > 0
    for a, b in zip(d_total, d_dom):
        assert torch.allclose(a, b, atol=1e-6)


def test_flip_and_uniform_adversarial_terms():
    for variant in ("flip", "uniform"):
        model, batch = _model(variant)
        assert [p.name for p in model.phases] == ["D", "main"]
        with torch.no_grad():  # D outputs logit 0 everywhere: both terms are log 2
            model.discriminator[-1].weight.zero_()
            model.discriminator[-1].bias.zero_()
        out = model.loss(batch, "main")
        assert out["adv"].item() == pytest.approx(math.log(2))
    model, batch = _model("flip")
    torch.nn.init.normal_(model.discriminator[-1].bias)
    fs, ft = model.embed(batch["x"]), model.embed(batch["x_b"])
    # flip: the target's features labelled "source" (0); source features do not enter the term
    expect = F.binary_cross_entropy_with_logits(model.discriminator(ft).squeeze(1),
                                                torch.zeros(len(ft)))
    assert model.loss(batch, "main")["adv"].item() == pytest.approx(expect.item(), rel=1e-5)
    # the D phase: source 0, target 1, on features that pass no gradient to the encoder
    d = model.loss(batch, "D")
    logits = model.discriminator(torch.cat([fs, ft])).squeeze(1)
    target = torch.cat([torch.zeros(len(fs)), torch.ones(len(ft))])
    assert d["loss"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, target).item(), rel=1e-5)
    d["loss"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())


def test_source_only_and_target_only():
    model, batch = _model("source-only")
    assert model.phases[0].modules == ("encoder", "classifier")
    expect = F.cross_entropy(model.classify(batch["x"]), batch["y"])
    assert model.loss(batch, "main")["loss"].item() == pytest.approx(expect.item(), rel=1e-6)
    model, batch = _model("target-only")
    expect = F.cross_entropy(model.classify(batch["x_b"]), batch["y_b"])
    assert model.loss(batch, "main")["loss"].item() == pytest.approx(expect.item(), rel=1e-6)


def test_errors():
    model, batch = _model()
    with pytest.raises(GenzooError, match="does not generate"):
        model.sample(2)
    with pytest.raises(GenzooError, match="two domains.*target=NAME"):
        model.loss({"x": batch["x"], "y": batch["y"]}, "main")


def test_tiny_run_target_accuracy_and_feature_picture(tmp_path, capsys):
    run = tmp_path / "run"
    # the tiny config's net with a little more width, so that 60 steps learn something
    wider = ["--set", "conv=8,16", "--set", "hidden=32", "--set", "domain_hidden=16"]
    run_ok(capsys, "train", "dann", "--out", run, "--steps", 60, "--batch-size", 32, *TINY_SET,
           *wider, "--set", "schedule_steps=60", "--set", "progress=none", "--set",
           "log_every=20", "--set", "optimizer=adam", "--set", "lr=0.01", "--set", "beta1=0.9",
           "--set", "lr_decay=none")
    assert not list((run / "samples").glob("*.png"))  # a classifier draws no sample grids
    out = run_ok(capsys, "eval", run, "--metrics", "target-accuracy")
    assert "target_accuracy" in out
    rec = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]["target-accuracy"]
    assert rec["n_source"] == 300 and rec["n_target"] == 300
    assert rec["domains"] == "digits -> digits-m"
    # the same numbers computed here from the checkpoint
    from genzoo.train.rundir import load_run

    model, cfg, _ = load_run(run)
    test = load_dataset(cfg.data, "test")
    with torch.no_grad():
        src = (model.classify(test.a.to_float(test.a.x)).argmax(1) == test.a.y).float().mean()
        tgt = (model.classify(test.b.to_float(test.b.x)).argmax(1) == test.b.y).float().mean()
    assert rec["source_accuracy"] == pytest.approx(src.item())
    assert rec["target_accuracy"] == pytest.approx(tgt.item())
    assert rec["source_accuracy"] > 0.5  # 60 steps are well above chance (0.1)
    pic = tmp_path / "f.png"
    run_ok(capsys, "plot", "features", run, run, "--method", "pca", "--n", 40, "--out", pic)
    w, h = Image.open(pic).size
    assert w > h > 100  # two panels side by side
    assert "does not generate" in run_error(capsys, "sample", run, "--out", tmp_path / "s.png")
    assert "tsne or pca" in run_error(capsys, "plot", "features", run, "--method", "umap",
                                      "--out", pic)
    assert cli("eval", run, "--metrics", "target-accuracy", "--n", 0) != 0
    capsys.readouterr()
    assert cli("report", run, "--out", tmp_path / "r.html") == 0  # says why there are no samples
    page = (tmp_path / "r.html").read_text()
    assert "dann is not a generative model, so training draws no samples" in page
    assert "no sample pictures yet" not in page and "target_accuracy" in page


def test_batch_norm_normalises_each_domain_by_its_own_statistics():
    """norm=batch: source and target pass through F as separate batches in training, so a target
    batch that is the source batch plus a constant gives the same features (a conv turns a constant
    input shift into a constant per-channel shift, which batch norm removes); without norm it
    does not. Checkpoints of norm=none keep the layer names they had before the switch."""
    model, batch = _model()
    plain = sorted(model.state_dict())
    cfg = tiny_config("dann")
    cfg.model_cfg.conv, cfg.model_cfg.padding = (4,), 0  # no zero padding: the shift stays uniform
    model = build_model("dann", cfg.model_cfg, model.spec)
    assert "classifier.4.weight" in plain and "discriminator.2.weight" in plain
    x = batch["x"]
    shifted = x + 0.5
    model.train()
    assert not torch.allclose(model.embed(x), model.embed(shifted), atol=1e-3)
    cfg.model_cfg.norm = "batch"
    torch.manual_seed(0)
    bn = build_model("dann", cfg.model_cfg, model.spec)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.encoder.modules()) == 1
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in bn.modules()) == 3  # 2 in C, 1 in D
    bn.train()
    assert torch.allclose(bn.embed(x), bn.embed(shifted), atol=1e-4)
    out = bn.loss(batch, "main")  # the whole objective runs with the norms in place
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in bn.encoder.parameters())
    cfg.model_cfg.norm = "layer"
    with pytest.raises(GenzooError, match="norm='layer' is not valid"):
        build_model("dann", cfg.model_cfg, model.spec)


def test_schedule_steps_follows_train_steps_unless_set():
    """The lambda_p schedule spans the run: build_config fills an unset schedule_steps with
    train.steps (so --steps moves it), an explicit value wins, and a config that skipped
    build_config is refused with a clear error instead of a wrong schedule."""
    from genzoo.config import build_config
    assert build_config("dann").model_cfg.schedule_steps == 5000  # the preset's steps
    cfg = build_config("dann", overrides=[("train.steps", 321)])
    assert cfg.model_cfg.schedule_steps == 321
    cfg = build_config("dann", overrides=[("train.steps", 321), ("model.schedule_steps", 50)])
    assert cfg.model_cfg.schedule_steps == 50
    raw = type(cfg.model_cfg)()
    assert raw.schedule_steps is None
    with pytest.raises(GenzooError, match="schedule_steps is unset"):
        raw.check()


def test_one_domain_model_refuses_a_target_domain(tmp_path, capsys):
    """A target given to a model that trains on one dataset would be ignored: refused, one line,
    before any run directory exists; the two-domain models are named."""
    run = tmp_path / "vae"
    err = run_error(capsys, "train", "vae", "--out", run, "--data", "digits", "--steps", 2,
                    "--set", "target=digits-m")
    assert "vae trains on one dataset, but target=digits-m" in err
    assert "cyclegan, dann, pix2pix" in err
    assert not run.exists()
