"""Content/pose swap metrics for video models with an `analogy` method (DrNet) on single-digit
`moving-digits` (DrNet's own evaluation, arXiv 1705.10915 sec. 5.1, made quantitative).

For test video i the model decodes the content of i's first frame along the pose sequence of
test video j, the next video whose digit has another label (so copying the pose video cannot
pass). The ground truth of that analogy is known exactly: video i's digit image pasted on video
j's trajectory (`VideoData.render_digits`).

    analogy-accuracy  a digit classifier on every generated frame must name video i's digit.
                      The classifier is an mnist5k domain CNN (`genzoo train classifier --data
                      mnist5k`, with --set image_size=D for digits scaled to D pixels, i.e.
                      frame_size / 64 * 28; pass it with --features DIR). It sees a digit-sized
                      crop centred on the frame's intensity centroid (MNIST digits are centred
                      by centre of mass, so the crop is the digit's own box), resized to the
                      classifier's input size only if that differs. Also reported: how often it
                      names video j's digit instead (pose leaking content), and its accuracy on
                      the same crops of real test frames (the ceiling).
    pose-error        distance in pixels between the intensity centroids of each generated
                      frame and of the ground-truth frame, averaged over frames and videos;
                      beside it the error of the content frame itself (a model that ignores
                      pose), for scale.

One metric for DrNet's future-frame prediction (sec. 3.2; runs with model.lstm=true), on any
`moving-digits` test videos:

    prediction-error  observe the first n_past frames of each test video (model.n_past), predict
                      the remaining T - n_past; the centroid distance (px, as pose-error) and the
                      per-pixel MSE of every predicted frame against the true one, averaged and per
                      step ahead. For scale: repeating the last observed frame, and decoding the
                      true future poses (Ep of the true frames) with the same content code, the
                      best the decoder can do with a perfect predictor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

MNIST_SIZE = 28


def centroids(frames: torch.Tensor) -> torch.Tensor:
    """Intensity centroids (row, col) in pixels of frames (N, C, H, W) in [-1, 1]; the frame
    centre for an empty frame. Intensities below 10% of full scale are ignored (background)."""
    n, _, h, w = frames.shape
    wt = (((frames + 1) / 2).mean(1) - 0.1).clamp(min=0)  # (N, H, W)
    total = wt.sum((1, 2))  # (N,)
    rows = torch.arange(h, dtype=wt.dtype, device=wt.device).view(1, h, 1)
    cols = torch.arange(w, dtype=wt.dtype, device=wt.device).view(1, 1, w)
    r = (wt * rows).sum((1, 2)) / total.clamp(min=1e-8)
    c = (wt * cols).sum((1, 2)) / total.clamp(min=1e-8)
    empty = total <= 1e-8
    r = torch.where(empty, torch.full_like(r, (h - 1) / 2), r)
    c = torch.where(empty, torch.full_like(c, (w - 1) / 2), c)
    return torch.stack([r, c], 1)  # (N, 2)


def digit_crops(frames: torch.Tensor, centres: torch.Tensor, d: int,
                out: int = MNIST_SIZE) -> torch.Tensor:
    """d x d crops of frames (N, 1, H, W) centred on `centres` (N, 2), background -1 outside the
    frame, resized to (N, 1, out, out) for a digit classifier."""
    n, c, h, w = frames.shape
    padded = F.pad(frames, (d, d, d, d), value=-1.0)
    top = (centres - (d - 1) / 2).round().long() + d  # (N, 2) in padded coordinates
    ar = torch.arange(d, device=frames.device)
    rows = (top[:, 0:1] + ar).view(n, d, 1)  # (N, d, 1)
    cols = (top[:, 1:2] + ar).view(n, 1, d)  # (N, 1, d)
    crops = padded.permute(0, 2, 3, 1)[torch.arange(n).view(n, 1, 1), rows, cols]  # (N, d, d, C)
    crops = crops.permute(0, 3, 1, 2)  # (N, C, d, d)
    if d != out:
        crops = F.interpolate(crops, size=(out, out), mode="bilinear",
                              antialias=True, align_corners=False)
    return crops


def _setup(ctx: EvalContext, metric: str):
    """The test videos and their analogies: {"gen", "real", "truth", "i", "j", ...}."""
    if "analogy" in ctx.cache:
        return ctx.cache["analogy"]
    model = ctx.model
    if model is None or not hasattr(model, "analogy"):
        raise GenzooError(f"{metric} needs a run of a model with content/pose analogies "
                          "(drnet), not --samples")
    data = load_dataset(ctx.data_cfg, "test")
    if data.spec.kind != "video" or data.spec.extras.get("num_digits") != 1:
        raise GenzooError(f"{metric} measures single-digit videos: train on moving-digits with "
                          "--set num_digits=1")
    n = len(data) if ctx.n is None else min(ctx.n, len(data))
    if n < 2:
        raise GenzooError(f"--n {n} must be at least 2 videos")
    real = data.to_float(data.x[:n]).cpu()  # (n, T, 1, S, S)
    y = data.y[:n, 0].cpu()
    # j: the next video (cyclically) whose digit differs from video i's
    j = torch.empty(n, dtype=torch.long)
    for i in range(n):
        k = (i + 1) % n
        while y[k] == y[i] and k != i:
            k = (k + 1) % n
        j[i] = k
    i = torch.arange(n)
    parts = []
    with torch.no_grad():
        for s in range(0, n, ctx.batch_size):
            sl = slice(s, s + ctx.batch_size)
            content = real[i[sl], 0].to(ctx.device)  # (b, 1, S, S): first frame of video i
            parts.append(model.analogy(content, real[j[sl]].to(ctx.device)).float().cpu())
    fixed = data.fixed_set()
    truth = data.render_digits(fixed["index"][:n][i], fixed["pos"][:n][j])  # (n, T, 1, S, S)
    out = {"gen": torch.cat(parts), "real": real, "truth": truth, "y": y, "i": i, "j": j,
           "digit_size": data.spec.extras["digit_size"]}
    ctx.cache["analogy"] = out
    return out


def _classifier(ctx: EvalContext):
    from genzoo.metrics.classifier import load_classifier
    from genzoo.metrics.features import default_classifier

    path = ctx.options.get("features") or default_classifier("mnist5k")
    if path is None or path == "inception":
        raise GenzooError("analogy-accuracy needs the mnist5k digit classifier: train it with "
                          "`genzoo train classifier --data mnist5k --out DIR` or pass "
                          "--features DIR")
    net, meta = load_classifier(path)
    c, h, w = meta["shape"]
    if c != 1 or h != w or meta["num_classes"] != 10:
        raise GenzooError(f"the classifier in {str(path)!r} is not a grey square digit "
                          f"classifier (shape {meta['shape']}, {meta['num_classes']} classes)")
    return net.to(ctx.device), meta


def _predict(net, frames: torch.Tensor, d: int, size: int, device,
             batch_size: int) -> torch.Tensor:
    """Predicted digit of every frame (N, T, 1, S, S) -> (N, T); crops resized to `size`."""
    n, t = frames.shape[:2]
    flat = frames.flatten(0, 1)  # (N*T, 1, S, S)
    crops = digit_crops(flat, centroids(flat), d, size)
    preds = []
    with torch.no_grad():
        for s in range(0, len(crops), batch_size):
            preds.append(net(crops[s:s + batch_size].to(device))[1].argmax(1).cpu())
    return torch.cat(preds).view(n, t)


@register_metric("analogy-accuracy", "digit classifier on content/pose analogy frames names the "
                 "content video's digit (single-digit moving-digits)")
def analogy_accuracy(ctx: EvalContext) -> dict:
    a = _setup(ctx, "analogy-accuracy")
    net, meta = _classifier(ctx)
    d, bs, size = a["digit_size"], max(1, ctx.batch_size), meta["shape"][1]
    pred = _predict(net, a["gen"], d, size, ctx.device, bs)  # (n, T)
    real_pred = _predict(net, a["real"], d, size, ctx.device, bs)
    y_content, y_pose = a["y"][a["i"]], a["y"][a["j"]]
    return {"analogy_accuracy": float((pred == y_content[:, None]).float().mean()),
            "pose_digit_rate": float((pred == y_pose[:, None]).float().mean()),
            "real_frame_accuracy": float((real_pred == a["y"][:, None]).float().mean()),
            "n_videos": len(pred), "frames": pred.shape[1], "classifier": meta["name"],
            "protocol": "content: frame 0 of test video i; pose: test video j (next video with "
                        "another digit); classifier on a digit-size crop at the intensity "
                        "centroid (resized to the classifier's size if it differs)"}


@register_metric("pose-error", "pixel distance of the digit in content/pose analogy frames from "
                 "where the pose video puts it (single-digit moving-digits)")
def pose_error(ctx: EvalContext) -> dict:
    a = _setup(ctx, "pose-error")
    gen, truth = a["gen"].flatten(0, 1), a["truth"].flatten(0, 1)  # (n*T, 1, S, S)
    c_true = centroids(truth)
    err = (centroids(gen) - c_true).norm(dim=1)
    t = a["gen"].shape[1]
    content = a["real"][a["i"], 0].repeat_interleave(t, 0)  # the content frame, held still
    still = (centroids(content) - c_true).norm(dim=1)
    return {"pose_error_px": float(err.mean()), "pose_error_median_px": float(err.median()),
            "content_frame_error_px": float(still.mean()), "frame_size": truth.shape[-1],
            "n_videos": len(a["gen"]), "frames": t,
            "protocol": "intensity centroid of each generated frame vs the ground-truth frame "
                        "(content digit rendered on the pose video's path)"}


def _frame_errors(frames: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroid distance (px) and per-pixel MSE of every frame (N, T, C, H, W): both (N, T)."""
    n, t = truth.shape[:2]
    dist = (centroids(frames.flatten(0, 1)) - centroids(truth.flatten(0, 1))).norm(dim=1)
    mse = (frames - truth).pow(2).flatten(2).mean(2)  # (N, T)
    return dist.view(n, t), mse


@register_metric("prediction-error", "future frames of a drnet run with the pose LSTM against "
                 "the true ones (centroid px, MSE), beside repeating the last observed frame")
def prediction_error(ctx: EvalContext) -> dict:
    model = ctx.model
    if not callable(getattr(model, "predict", None)):  # a drnet without the LSTM: predict refuses
        raise GenzooError("prediction-error needs a drnet run trained with the pose LSTM "
                          "(--set model.lstm=true); this run has none")
    data = load_dataset(ctx.data_cfg, "test")
    if data.spec.kind != "video":
        raise GenzooError("prediction-error measures videos (moving-digits)")
    n_past = model.cfg.n_past
    t = data.spec.shape[0]
    n = len(data) if ctx.n is None else min(ctx.n, len(data))
    real = data.to_float(data.x[:n]).cpu()  # (n, T, C, S, S)
    truth = real[:, n_past:]  # (n, F, C, S, S): F = T - n_past frames to predict
    pred, oracle = [], []
    with torch.no_grad():
        for s in range(0, n, ctx.batch_size):
            v = real[s:s + ctx.batch_size].to(ctx.device)
            pred.append(model.predict(v, n_past, t - n_past)[0].float().cpu())
            h_c, skips = model.encode_content(v[:, n_past - 1])  # the content predict uses
            true_poses = model.pose_sequence(v[:, n_past:])  # (b, F, Dp)
            oracle.append(model.decode_sequence(h_c, true_poses, skips).float().cpu())
    last = real[:, n_past - 1:n_past].expand_as(truth)  # the last observed frame, held still
    out = {}
    for name, frames in (("", torch.cat(pred)), ("repeat_last_", last),
                         ("true_pose_", torch.cat(oracle))):
        dist, mse = _frame_errors(frames, truth)
        out[f"{name}error_px"] = float(dist.mean())
        out[f"{name}mse"] = float(mse.mean())
        out[f"{name}error_px_by_step"] = [round(float(d), 4) for d in dist.mean(0)]
    return {**out, "n_past": n_past, "n_future": t - n_past, "n_videos": n,
            "frame_size": truth.shape[-1],
            "protocol": "the first n_past frames of each test video observed, the rest predicted "
                        "by the pose LSTM fed its own predictions; intensity-centroid distance "
                        "and per-pixel MSE ([-1, 1] scale) against the true frames; repeat_last: "
                        "the last observed frame held still; true_pose: the true future frames' "
                        "encoded poses decoded with the same content code"}
