"""moving-digits (the Moving MNIST recipe), DrNet's adversarial target, the swap metrics, and the
analogy pictures."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import (
    check_loss_terms,
    check_phase_gradients,
    check_save_load,
    run_error,
    run_ok,
    tiny_config,
)

from genzoo.data import DataConfig, load_dataset
from genzoo.data.embedded import load_mnist5k
from genzoo.data.video import STEP, bounce_step, render, trajectories
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, run_metrics
from genzoo.metrics.video import centroids, digit_crops, prediction_error
from genzoo.models import build_model, load_model
from genzoo.models.drnet import DrNetConfig, uncertainty_loss


def _data(split="train", **kw):
    return load_dataset(DataConfig(name="moving-digits", **kw), split)


# ----------------------------------------------------------------------------- the recipe
def test_bounce_rule_by_hand():
    # room 10: 9 + 3 = 12 is 2 past the wall -> 8, velocity flips; then 8 - 3 = 5
    p, v = bounce_step(torch.tensor([9.0]), torch.tensor([3.0]), 10.0)
    assert p.item() == 8.0 and v.item() == -3.0
    p, v = bounce_step(p, v, 10.0)
    assert p.item() == 5.0 and v.item() == -3.0
    # the low wall: 1 - 3 = -2 -> 2, velocity flips; a component that hits no wall keeps its sign
    p, v = bounce_step(torch.tensor([1.0, 4.0]), torch.tensor([-3.0, 2.0]), 10.0)
    assert p.tolist() == [2.0, 6.0] and v.tolist() == [3.0, 2.0]


def test_trajectories_match_the_unfolded_straight_line():
    # a bouncing point is a straight line folded into [0, room] by a triangle wave
    room, n, t = 18.0, 200, 30
    pos = trajectories(n, t, 2, room, torch.Generator().manual_seed(0))  # (n, T, 2, 2)
    g = torch.Generator().manual_seed(0)  # the same draws: start, then direction
    p0 = torch.rand(n, 2, 2, generator=g).double() * room
    theta = torch.rand(n, 2, generator=g).double() * (2 * math.pi)
    v = STEP * room * torch.stack([theta.sin(), theta.cos()], -1)
    line = p0[:, None] + torch.arange(t, dtype=torch.float64).view(1, t, 1, 1) * v[:, None]
    u = torch.remainder(line, 2 * room)
    folded = torch.where(u <= room, u, 2 * room - u)
    assert torch.allclose(pos.double(), folded, atol=1e-3)
    assert pos.min() >= 0 and pos.max() <= room


def test_digits_stay_whole_inside_the_frame():
    data = _data(num_digits=1, frame_size=32, frames=12)
    b = data.batch(0, 16, seed=3)
    x = (b["x"] + 1) * 127.5  # (16, 12, 1, 32, 32) back to 0..255
    digit_mass = data.digit_images[b["index"][:, 0]].float().sum((1, 2))  # (16,)
    # nothing clipped at the borders: every frame holds the whole digit's ink
    assert torch.allclose(x.sum((2, 3, 4)), digit_mass[:, None].expand(16, 12), rtol=1e-4)
    assert b["pos"].min() >= 0 and b["pos"].max() <= 32 - data.digit_size


def test_frames_show_the_digit_at_its_position():
    data = _data("test", num_digits=1)  # 64x64: digits at their native 28x28
    f = data.fixed_set()
    r, c = f["pos"][5, 3, 0].round().long().tolist()
    digit = load_mnist5k(DataConfig(name="mnist5k"), "test").x[f["index"][5, 0], 0]
    assert torch.equal(f["x"][5, 3, 0, r:r + 28, c:c + 28], digit)


def test_batches_are_deterministic_by_seed_and_step():
    a, b = _data(frame_size=32, frames=4), _data(frame_size=32, frames=4)
    x1, x2 = a.batch(7, 8, seed=1), b.batch(7, 8, seed=1)
    assert all(torch.equal(x1[k], x2[k]) for k in x1)
    assert not torch.equal(x1["x"], a.batch(8, 8, seed=1)["x"])
    assert not torch.equal(x1["x"], a.batch(7, 8, seed=2)["x"])
    assert torch.equal(_data("test", frames=4).x, _data("test", frames=4).x)


def test_test_videos_use_test_digits():
    mnist_train = load_mnist5k(DataConfig(name="mnist5k"), "train")
    mnist_test = load_mnist5k(DataConfig(name="mnist5k"), "test")
    test, train = _data("test", frames=3), _data("train", frames=3)
    assert torch.equal(test.digit_images, mnist_test.x[:, 0])
    assert torch.equal(train.digit_images, mnist_train.x[:, 0])
    f = test.fixed_set()
    assert torch.equal(f["y"], mnist_test.y[f["index"]])
    assert test.batch(0, 4, 0)["index"].max() < len(mnist_test)


def test_shapes_labels_and_bad_settings():
    data = _data(num_digits=2, frame_size=32, frames=5)
    b = data.batch(0, 4, 0)
    assert b["x"].shape == (4, 5, 1, 32, 32) and data.spec.kind == "video"
    assert b["y"].shape == (4, 2) and b["pos"].shape == (4, 5, 2, 2)
    assert b["x"].min() >= -1 and b["x"].max() <= 1
    with pytest.raises(GenzooError, match="num_digits"):
        _data(num_digits=3)
    with pytest.raises(GenzooError, match="frames"):
        _data(frames=1)
    with pytest.raises(GenzooError, match="video datasets"):
        load_dataset(DataConfig(name="mnist5k", frames=4))


def test_render_combines_overlapping_digits_by_maximum():
    digits = torch.zeros(1, 2, 2, 2, dtype=torch.uint8)
    digits[0, 0] = torch.tensor([[10, 200], [30, 0]])
    digits[0, 1] = torch.tensor([[50, 60], [70, 80]])
    pos = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])  # (1, T=1, K=2, 2): second one column right
    f = render(digits, pos, 4)[0, 0, 0]
    assert f[:2, :3].tolist() == [[10, 200, 60], [30, 70, 80]]


# ----------------------------------------------------------------------------- DrNet
def test_pose_target_is_exactly_one_half():
    # BCE against 1/2: -1/2 log s(l) - 1/2 log(1 - s(l)), by hand at l = 1.3 and l = 0
    logit = torch.tensor([1.3], requires_grad=True)
    s = 1 / (1 + math.exp(-1.3))
    assert uncertainty_loss(logit).item() == pytest.approx(-0.5 * math.log(s)
                                                           - 0.5 * math.log(1 - s), rel=1e-6)
    uncertainty_loss(logit).backward()
    assert logit.grad.item() == pytest.approx(s - 0.5, rel=1e-6)  # pushes towards 0
    zero = torch.zeros(3, requires_grad=True)
    loss = uncertainty_loss(zero)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert torch.equal(zero.grad, torch.zeros(3))  # maximal uncertainty is the minimum


def _drnet(**model):
    cfg = tiny_config("drnet")
    for k, v in model.items():
        setattr(cfg.model_cfg, k, v)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    return build_model(cfg.model, cfg.model_cfg, data.spec), data


def test_scene_phase_trains_only_the_discriminator_on_same_vs_other_pairs():
    model, data = _drnet()
    batch = data.batch(0, 8, 0)
    model.loss(batch, "scene")["loss"].backward()  # every parameter may take a gradient
    assert all(p.grad is None for m in (model.pose, model.content, model.decoder)
               for p in m.parameters())
    assert all(p.grad is not None for p in model.scene.parameters())
    # the adversarial term of the main phase reaches the pose encoder through the scene net
    model.zero_grad(set_to_none=True)
    h = model.pose(batch["x"][:, 0])
    uncertainty_loss(model.scene(h, h.roll(1, 0))).backward()
    assert any(p.grad.abs().sum() > 0 for p in model.pose.parameters())


def test_remembering_codes_for_sampling_leaves_batch_norm_statistics_alone():
    """The main phase's own frames update the pose encoder's running statistics; the few
    videos it keeps for `sample` (run through the pose encoder again) do not."""
    model, data = _drnet()
    model.train()
    batch = data.batch(0, 8, 0)
    bn = [m for m in model.pose.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bn
    calls = []
    model.pose.register_forward_hook(lambda mod, inp, out: calls.append(
        ([b.running_mean.clone() for b in bn], mod.training)))
    model.loss(batch, "main")
    assert [training for _, training in calls] == [True, True, False]  # p, q; then the bank
    assert model.pose.training  # left as it was
    after = [b.running_mean for b in bn]
    # after the main phase's second pass the statistics are final: the bank's pass kept them
    assert all(torch.equal(a, b) for a, b in zip(calls[1][0], after))
    assert not all(torch.equal(a, b) for a, b in zip(calls[0][0], after))  # q's pass moved them


def test_analogy_and_samples_are_videos():
    model, data = _drnet()
    model.train()
    model.loss(data.batch(0, 8, 0), "main")  # fills the bank of codes used by `sample`
    assert int(model.bank_filled) == 4
    model.eval()
    v = data.batch(1, 3, 0)["x"]  # (3, T, 1, 16, 16)
    out = model.analogy(v[:, 0], v)
    assert out.shape == v.shape
    assert model.sample(2).shape == (2, *data.spec.shape)


def test_skip_maps_are_the_content_frames_and_the_pose_code_still_moves_the_digit():
    model, data = _drnet(skips=True)  # tiny: 16x16 frames, width 4, T = 3
    model.eval()
    v = data.batch(0, 3, 0)["x"]  # (3, 3, 1, 16, 16)
    h_c, maps = model.encode_content(v[:, 0])
    assert h_c.shape == (3, 4)
    assert [tuple(m.shape) for m in maps] == [(3, 4, 8, 8), (3, 8, 4, 4)]  # finest first
    # the maps are the content encoder's activations of the content frame: the code computed
    # from them by the encoder's last layers is the code itself
    assert torch.allclose(model.content.net[-2:](maps[-1]).flatten(1), h_c)
    h_p = model.pose_sequence(v)  # (3, T, 2)
    out = model.decode_sequence(h_c, h_p, maps)
    assert torch.allclose(model.analogy(v[:, 0], v), out)
    # the decoder uses every map and the pose code: changing either changes the frames
    for k in range(len(maps)):
        other = [m if i != k else torch.zeros_like(m) for i, m in enumerate(maps)]
        assert not torch.allclose(model.decode_sequence(h_c, h_p, other), out)
    assert not torch.allclose(model.decode_sequence(h_c, h_p.flip(0), maps), out)
    with pytest.raises(ValueError, match="skip connections"):
        model.decode(h_c, h_p[:, 0])  # a skip decoder without its maps
    model.train()  # the main phase decodes with the content frame's maps and fills the bank
    out = model.loss(data.batch(1, 4, 0), "main")
    out["loss"].backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert "bank_frames" in model.state_dict()
    assert model.sample(2).shape == (2, *data.spec.shape)


def test_default_drnet_keeps_the_first_runs_layout():
    # skips and code_norm off: the networks of the measured run (its checkpoint must load)
    model, _ = _drnet()
    keys = set(model.state_dict())
    assert "bank_frames" not in keys
    assert isinstance(model.content.net[-1], torch.nn.Tanh)
    assert isinstance(model.content.net[-2], torch.nn.Conv2d)
    first_up = [m for m in model.decoder.net if isinstance(m, torch.nn.ConvTranspose2d)][1]
    assert first_up.in_channels == 8  # width 4 * 2 at 4x4 (16-px frames), no map concatenated


def test_swap_cycle_trains_the_decoder_only_and_reads_the_content_back():
    model, data = _drnet(swap_weight=2.0)
    model.train()
    x = data.batch(0, 8, 0)["x"]
    x_c = x[:, 0]
    h_c = model.content(x_c).detach()
    h_p = model.pose(x[:, 1]).detach().roll(1, 0)  # the pose of another video
    stats = {k: v.clone() for k, v in model.content.state_dict().items()}
    model.zero_grad()
    term = model._swap_cycle(x_c, h_c, h_p)
    term.backward()  # every parameter may take a gradient
    assert all(p.grad is None for p in model.content.parameters())
    assert all(p.grad is None for p in model.pose.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    assert all(p.requires_grad for p in model.content.parameters())  # restored
    for k, v in model.content.state_dict().items():  # its running statistics did not move
        assert torch.equal(v, stats[k]), k
    assert model.content.training  # and its mode is back
    with torch.no_grad():  # by hand: eval-mode content codes of the swap and of the content frame
        gen = model.decode(h_c, h_p)
        model.content.eval()
        want = (model.content(gen) - model.content(x_c)).pow(2).sum(1).mean()
        model.content.train()
    assert torch.allclose(term.detach(), want)
    # in the main phase the term joins the loss from step swap_from on, with its weight
    model.cfg.swap_from = 5
    batch = data.batch(1, 8, 0)
    losses = {}
    for step in (4, 5):
        model.set_progress(step)
        torch.manual_seed(3)  # the same random frames both times
        losses[step] = model.loss(batch, "main")
    assert "swap" not in losses[4] and losses[5]["swap"] > 0
    assert torch.allclose(losses[5]["loss"] - losses[4]["loss"], 2.0 * losses[5]["swap"],
                          rtol=1e-4, atol=1e-5)
    for bad, msg in (("swap_weight", "swap_weight"), ("swap_from", "swap_from")):
        cfg = tiny_config("drnet")
        setattr(cfg.model_cfg, bad, -1)
        with pytest.raises(GenzooError, match=msg):
            cfg.model_cfg.check()
    skip, _ = _drnet(swap_weight=1.0, skips=True)  # with skips: the content frame's maps too
    out = skip.train().loss(batch, "main")
    out["loss"].backward()
    assert out["swap"] > 0 and all(p.grad is not None for p in skip.decoder.parameters())


def test_code_norm_standardises_the_codes_before_tanh():
    model, data = _drnet(code_norm=True)
    model.train()
    frames = data.batch(0, 16, 0)["x"].flatten(0, 1)  # (48, 1, 16, 16)
    for enc in (model.content, model.pose):
        pre = torch.atanh(enc(frames).clamp(-1 + 1e-6, 1 - 1e-6))  # (48, D) before the tanh
        # batch norm without affine parameters in training mode: per-dimension batch mean 0 and
        # biased variance 1 (up to its eps), whatever the scale of the conv's output
        assert torch.allclose(pre.mean(0), torch.zeros(pre.shape[1]), atol=1e-4)
        assert torch.allclose(pre.var(0, unbiased=False), torch.ones(pre.shape[1]), atol=1e-3)
        with torch.no_grad():  # shrinking the last conv cannot shrink the code
            conv = [m for m in enc.net if isinstance(m, torch.nn.Conv2d)][-1]
            conv.weight.mul_(0.3)
        assert torch.allclose(torch.atanh(enc(frames).clamp(-1 + 1e-6, 1 - 1e-6)).var(0),
                              pre.var(0), rtol=0.05)



def _recon_by_hand(model, batch, seed, l1):
    """The main phase's recon term recomputed from the same random frames: sum over a frame's
    pixels of |e| (l1) or e^2, averaged over the batch."""
    x = batch["x"]
    torch.manual_seed(seed)
    c1, _, p, _ = model._random_times(x, 4)
    with torch.no_grad():
        err = model.decode(model.content(model._frames(x, c1)), model.pose(model._frames(x, p))) \
            - model._frames(x, p)
    return (err.abs() if l1 else err.pow(2)).flatten(1).sum(1).mean().item()


def test_l1_from_switches_the_reconstruction_to_absolute_errors_at_its_step():
    model, data = _drnet(l1_from=5)
    model.train()
    batch = data.batch(0, 8, 0)
    for step, l1 in [(0, False), (4, False), (5, True), (9, True)]:
        model.set_progress(step)
        state = [t.clone() for t in model.state_dict().values()]  # batch norm moves per call
        torch.manual_seed(11)
        got = model.loss(batch, "main")["recon"].item()
        model.load_state_dict(dict(zip(model.state_dict(), state)))
        assert got == pytest.approx(_recon_by_hand(model, batch, 11, l1), rel=1e-5)
        assert got != pytest.approx(_recon_by_hand(model, batch, 11, not l1), rel=1e-2)
    never, _ = _drnet()  # the default: L2 at every step
    never.set_progress(10 ** 6)
    assert not never.l1
    with pytest.raises(GenzooError, match="l1_from"):
        DrNetConfig(l1_from=-1).check()

# ----------------------------------------------------------------------------- DrNet's pose LSTM
LSTM = {"lstm": True, "n_past": 2, "lstm_hidden": 8, "lstm_layers": 2}  # tiny: T = 3


def _bn_state(module):
    return [t.clone() for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for t in (m.running_mean, m.running_var)]


def test_lstm_phase_trains_only_the_predictor_on_eval_mode_codes():
    model, data = _drnet(**LSTM)
    model.train()
    batch = data.batch(0, 8, 0)
    bn = _bn_state(model.content) + _bn_state(model.pose)
    out = model.loss(batch, "lstm")  # every parameter may take a gradient
    out["loss"].backward()
    assert all(p.grad is None for m in (model.content, model.pose, model.decoder, model.scene)
               for p in m.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.predictor.parameters())
    # the encoders' batch-norm statistics did not move, and their mode is restored
    assert all(torch.equal(a, b) for a, b in zip(bn, _bn_state(model.content)
                                                 + _bn_state(model.pose)))
    assert model.content.training and model.pose.training
    # the loss by hand: eval-mode codes, content of frame n_past - 1, teacher forcing
    model.eval()
    x = batch["x"]
    with torch.no_grad():
        h_c = model.content(x[:, 1])
        h_p = torch.stack([model.pose(x[:, t]) for t in range(3)], 1)  # (8, 3, 2)
        pred, _ = model.predictor(h_c, h_p[:, :2])
    assert out["loss"].item() == pytest.approx((pred - h_p[:, 1:]).pow(2).mean().item(),
                                               rel=1e-5)
    assert out["still_mse"].item() == pytest.approx(
        (h_p[:, :2] - h_p[:, 1:]).pow(2).mean().item(), rel=1e-5)


def test_lstm_model_keeps_the_contract():
    model, data = _drnet(**LSTM)
    batch = data.batch(0, 8, 0)
    check_loss_terms(model, batch)
    check_phase_gradients(model, batch, step_optimizers=True)


def test_lstm_off_leaves_phases_and_weights_as_they_were():
    off, _ = _drnet()
    on, _ = _drnet(**LSTM)
    assert [p.name for p in off.phases] == ["scene", "main"]
    assert [p.name for p in on.phases] == ["scene", "main", "lstm"]
    assert not hasattr(off, "predictor")
    k_off, k_on = set(off.state_dict()), set(on.state_dict())
    assert k_off < k_on and all(k.startswith("predictor.") for k in k_on - k_off)
    # the same initial weights for the shared networks: the predictor is built after them
    assert all(torch.equal(off.state_dict()[k], on.state_dict()[k]) for k in k_off)
    assert [p.modules for p in off.phases] == [p.modules for p in on.phases[:2]]


def test_predict_rolls_its_own_predictions_forward(tmp_path):
    model, data = _drnet(**LSTM)
    model.eval()
    v = data.batch(0, 4, 0)["x"]  # (4, 3, 1, 16, 16)
    frames, poses = model.predict(v, 2, 4)
    assert frames.shape == (4, 4, 1, 16, 16) and poses.shape == (4, 4, 2)
    again = model.predict(v, 2, 4)
    assert torch.equal(frames, again[0]) and torch.equal(poses, again[1])
    with torch.no_grad():  # independently: the LSTM rerun from scratch on the poses so far
        h_c = model.content(v[:, 1])
        seq = model.pose_sequence(v[:, :2])  # (4, 2, 2)
        for k in range(4):
            nxt = model.predictor(h_c, seq)[0][:, -1]  # (4, 2)
            assert torch.allclose(nxt, poses[:, k], atol=1e-6)
            seq = torch.cat([seq, nxt[:, None]], 1)
        assert torch.allclose(frames, model.decode_sequence(h_c, poses), atol=1e-6)
    assert model.predict(v)[0].shape == (4, 1, 1, 16, 16)  # defaults: n_past, then T - n_past
    with pytest.raises(GenzooError, match="n_past"):
        model.predict(v, 4, 1)
    check_save_load(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")  # check_save_load moved the weights
    assert torch.equal(loaded.predict(v, 2, 4)[0], model.predict(v, 2, 4)[0])


def test_lstm_settings_are_checked():
    off, data = _drnet()
    with pytest.raises(GenzooError, match="without the pose LSTM"):
        off.predict(data.batch(0, 2, 0)["x"])
    with pytest.raises(GenzooError, match="n_past=3 leaves no frame"):
        _drnet(**{**LSTM, "n_past": 3})  # T = 3
    cfg = tiny_config("drnet")
    cfg.model_cfg.lstm_hidden = 0
    with pytest.raises(GenzooError, match="lstm_hidden=0"):
        cfg.model_cfg.check()


# ----------------------------------------------------------------------------- metrics
class _Oracle(torch.nn.Module):
    """A perfect analogy model: returns the ground truth (or the content frame held still)."""

    def __init__(self, data, still=False):
        super().__init__()
        self.data, self.still = data, still

    def analogy(self, content, pose_video):
        t = pose_video.shape[1]
        if self.still:
            return content[:, None].expand(-1, t, -1, -1, -1)
        f = self.data.fixed_set()
        # find the pose and content videos among the test set by their frames
        match_p = [int((self.data.to_float(self.data.x) == v).flatten(1).all(1)
                       .nonzero()[0]) for v in pose_video]
        match_c = [int((self.data.to_float(self.data.x[:, 0]) == c).flatten(1).all(1)
                       .nonzero()[0]) for c in content]
        return self.data.render_digits(f["index"][match_c], f["pos"][match_p])


def _ctx(model, cfg, n=12):
    return EvalContext(model, cfg, torch.device("cpu"), n=n, batch_size=5)


def test_pose_error_is_zero_for_the_truth_and_large_for_a_still_digit():
    cfg = tiny_config("drnet")
    data = load_dataset(cfg.data, "test")
    r = run_metrics(_ctx(_Oracle(data), cfg), ["pose-error"])["pose-error"]
    assert r["pose_error_px"] == pytest.approx(0.0, abs=1e-5)
    r2 = run_metrics(_ctx(_Oracle(data, still=True), cfg), ["pose-error"])["pose-error"]
    assert r2["pose_error_px"] == pytest.approx(r["content_frame_error_px"], rel=1e-5)
    assert r2["pose_error_px"] > 1.0


def test_analogy_accuracy_needs_single_digits_and_a_classifier(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    cfg = tiny_config("drnet")
    data = load_dataset(cfg.data, "test")
    with pytest.raises(GenzooError, match="mnist5k digit classifier"):
        run_metrics(_ctx(_Oracle(data), cfg), ["analogy-accuracy"])
    cfg.data.num_digits = 2
    with pytest.raises(GenzooError, match="num_digits=1"):
        run_metrics(_ctx(_Oracle(data), cfg), ["pose-error"])


def test_centroid_and_crop_by_hand():
    f = -torch.ones(2, 1, 9, 9)
    f[0, 0, 3, 5] = 1.0
    f[1, 0, 2, 2] = f[1, 0, 4, 6] = 1.0
    assert torch.allclose(centroids(f), torch.tensor([[3.0, 5.0], [3.0, 4.0]]))
    crops = digit_crops(f, centroids(f), 3, out=3)  # 3x3 around the centroid, -1 outside
    assert crops[0, 0, 1, 1] == 1 and crops[0].sum() == -7
    assert centroids(-torch.ones(1, 1, 9, 9)).tolist() == [[4.0, 4.0]]  # empty: the centre


class _Predictor(torch.nn.Module):
    """A fake pose-LSTM model: predicts the true future (or holds the last observed frame); its
    'pose codes' are the frames, so decoding the true poses gives the true frames back."""

    def __init__(self, still=False):
        super().__init__()
        self.cfg = type("Cfg", (), {"lstm": True, "n_past": 1})()
        self.still = still

    def predict(self, v, n_past, n_future):
        f = v[:, n_past - 1:n_past].expand(-1, n_future, -1, -1, -1) if self.still \
            else v[:, n_past:n_past + n_future]
        return f, None

    def encode_content(self, frames):
        return frames, None

    def pose_sequence(self, video):
        return video

    def decode_sequence(self, h_c, h_p, skips=None):
        return h_p


def test_prediction_error_by_hand():
    cfg = tiny_config("drnet")  # T = 3: observe frame 0, predict frames 1 and 2
    data = load_dataset(cfg.data, "test")
    r = run_metrics(_ctx(_Predictor(), cfg), ["prediction-error"])["prediction-error"]
    assert r["error_px"] == 0 and r["mse"] == 0 and r["true_pose_error_px"] == 0
    assert (r["n_past"], r["n_future"], r["n_videos"]) == (1, 2, 12)
    # repeating frame 0, by hand: centroid distances and per-pixel MSE frame by frame
    x = data.to_float(data.x[:12])
    d, m = torch.zeros(12, 2), torch.zeros(12, 2)
    for i in range(12):
        for k in (1, 2):
            a, b = x[i, 0], x[i, k]
            d[i, k - 1] = (centroids(a[None]) - centroids(b[None])).norm()
            m[i, k - 1] = ((a - b) ** 2).sum() / a.numel()
    assert r["repeat_last_error_px"] == pytest.approx(d.mean().item(), rel=1e-5)
    assert r["repeat_last_mse"] == pytest.approx(m.mean().item(), rel=1e-5)
    assert r["repeat_last_error_px_by_step"] == pytest.approx(d.mean(0).tolist(), abs=1e-4)
    assert r["repeat_last_error_px"] > 0.5  # the digits do move
    still = run_metrics(_ctx(_Predictor(still=True), cfg), ["prediction-error"])
    s = still["prediction-error"]
    assert s["error_px"] == pytest.approx(r["repeat_last_error_px"], rel=1e-6)
    assert s["mse"] == pytest.approx(r["repeat_last_mse"], rel=1e-6)


def test_prediction_error_refuses_runs_without_the_lstm():
    cfg = tiny_config("drnet")
    model, _ = _drnet()
    with pytest.raises(GenzooError, match="model.lstm=true"):
        prediction_error(_ctx(model.eval(), cfg))


# ----------------------------------------------------------------------------- CLI pictures
@pytest.mark.parametrize("switches", [(), ("model.skips=true", "model.code_norm=true")])
def test_train_sample_and_plots_on_video(tmp_path, capsys, switches):
    run = tmp_path / "run"
    sets = [a for k, v in tiny_config_items("drnet") for a in ("--set", f"{k}={v}")]
    sets += [a for s in switches for a in ("--set", s)]
    run_ok(capsys, "train", "drnet", "--out", run, "--steps", 2, "--batch-size", 4, *sets,
           "--set", "progress=none", "--set", "sample_every=1")
    assert (run / "samples" / "step-000002.png").is_file()
    run_ok(capsys, "sample", run, "--n", 3, "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file()
    run_ok(capsys, "plot", "analogy", run, "--rows", 2)
    run_ok(capsys, "plot", "pose-interpolation", run, "--rows", 2, "--steps", 4)
    from PIL import Image

    w, h = Image.open(run / "analogy.png").size
    assert (w, h) == (4 * 18 + 2, 3 * 18 + 2)  # (T + 1) x (rows + 1) tiles of 16 px + 2 pad
    assert Image.open(run / "pose-interpolation.png").size == (5 * 18 + 2, 2 * 18 + 2)
    assert "--pose" in run_error(capsys, "plot", "analogy", run, "--pose", 9999)
    assert "model.lstm=true" in run_error(capsys, "plot", "prediction", run)
    assert "model.lstm=true" in run_error(capsys, "eval", run, "--metrics", "prediction-error")


def test_train_evaluate_and_plot_prediction_with_the_lstm(tmp_path, capsys):
    import json

    from PIL import Image

    run = tmp_path / "run"
    sets = [a for k, v in tiny_config_items("drnet") for a in ("--set", f"{k}={v}")]
    sets += [a for k, v in LSTM.items() for a in ("--set", f"model.{k}={v}")]
    run_ok(capsys, "train", "drnet", "--out", run, "--steps", 2, "--batch-size", 4, *sets,
           "--set", "progress=none", "--set", "log_every=1")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("lstm/loss" in r for r in rows)
    run_ok(capsys, "plot", "prediction", run, "--rows", 2)
    img = Image.open(run / "prediction.png").convert("RGB")
    assert img.size == (3 * 18 + 2, 4 * 18 + 2)  # T tiles of 16 px + 2 pad; 2 rows per video
    assert img.getpixel((2 * 18, 30)) == (255, 0, 0)  # the bar before the predicted column
    assert img.getpixel((1 * 18, 30)) == (255, 255, 255)  # other padding stays white
    out = run_ok(capsys, "eval", run, "--metrics", "prediction-error", "--n", 6)
    assert "repeat_last_error_px" in out
    doc = json.loads((run / "eval" / "metrics.json").read_text())
    assert doc["metrics"]["prediction-error"]["n_future"] == 1
    assert "--rows" in run_error(capsys, "plot", "prediction", run, "--rows", 0)


def tiny_config_items(name):
    from conftest import TINY

    return list(TINY[name].items())
