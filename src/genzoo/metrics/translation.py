"""Metrics of image-to-image translation (cyclegan, pix2pix), on the test split of both domains.

- `translation-accuracy`: does a translation keep the content? A classifier trained on the target
  domain labels the translated test images; the score is how often it gives the source image's
  label (the idea of CycleGAN's FCN score, arXiv:1703.10593 sec. 5.1.1, with the domain
  classifiers of `genzoo train classifier` in place of the FCN). Reported per direction beside
  the same classifier on the untranslated inputs (what translation adds) and its accuracy on
  its own domain (the ceiling).
- `cycle-error`: mean |F(G(a)) - a| and |G(F(b)) - b| per pixel in data units ([-1, 1]), the
  cycle-consistency the model was trained for, measured on held-out images.
- `psnr`: paired data only (pix2pix): L1 and PSNR of G(a) to its ground truth b, PSNR per image
  over the data range 2 ([-1, 1]) and averaged, beside the same numbers for the input itself.

Each also writes `translations.png` to eval/: 8 test images of each domain, evenly spaced
through the split (which the embedded sets hold in class order), in rows: input, translation,
and for two-way models the translation back.
"""

from __future__ import annotations

import math

import torch

from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric

PANEL = 8  # test images per domain in translations.png


def _test_domains(ctx: EvalContext):
    """The two-domain test split of the run's data, and the model's directions."""
    from genzoo.data import TwoDomainData, load_dataset

    model = ctx.model
    if model is None or not hasattr(model, "translate"):
        raise GenzooError("translation metrics need a translation run (cyclegan, pix2pix)")
    data = load_dataset(ctx.data_cfg, "test")
    if not isinstance(data, TwoDomainData):
        raise GenzooError(f"translation metrics need two domains; {ctx.data_cfg.name!r} has "
                          "one (give the second with --set target=DATASET)")
    return data, model.directions


def _cached(ctx: EvalContext, key: str, fn):
    if key not in ctx.cache:
        ctx.cache[key] = fn()
    return ctx.cache[key]


def _images(ctx: EvalContext, data, domain: str):
    """(x, y) of one domain's test split, the first ctx.n of them: float32 CPU, labels or None."""
    d = data.a if domain == "A" else data.b
    n = len(d) if ctx.n is None else min(ctx.n, len(d))
    return d.to_float(d.x[:n]).cpu(), None if d.y is None else d.y[:n].cpu()


@torch.no_grad()
def translate_all(model, x: torch.Tensor, direction: str, batch_size: int = 250) -> torch.Tensor:
    """Translations of (N, C, H, W) images in batches, back on the CPU."""
    dev = model.device
    return torch.cat([model.translate(x[i:i + batch_size].to(dev), direction).float().cpu()
                      for i in range(0, len(x), batch_size)])


def _translated(ctx, data, direction: str) -> torch.Tensor:
    src = "A" if direction == "AtoB" else "B"
    return _cached(ctx, f"translated-{direction}", lambda: translate_all(
        ctx.model, _images(ctx, data, src)[0], direction, ctx.batch_size))


def _panel(ctx: EvalContext, data, directions) -> dict:
    """translations.png in eval/: rows input / translation / back, for each direction."""
    if ctx.out_dir is None:
        return {}
    from genzoo.viz.grid import image_grid, save_image

    rows = []
    for direction in directions:
        src = "A" if direction == "AtoB" else "B"
        x = _images(ctx, data, src)[0]
        x = x[torch.linspace(0, len(x) - 1, min(PANEL, len(x))).long()]  # spread over the split
        t = translate_all(ctx.model, x, direction)
        rows += [x, t]
        if len(directions) == 2:
            rows.append(translate_all(ctx.model, t, "BtoA" if direction == "AtoB" else "AtoB"))
    path = ctx.out_dir / "translations.png"
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    save_image(image_grid(torch.cat(rows), nrow=len(rows[0])), path)
    return {"panel_translations": str(path)}


def _classifier(name: str, device):
    from genzoo.metrics.features import ClassifierExtractor, default_classifier

    path = default_classifier(name)
    if path is None:
        raise GenzooError(f"translation-accuracy needs a classifier of {name!r}: train one "
                          f"with `genzoo train classifier --data {name} --out DIR`")
    return ClassifierExtractor(path, device)


@torch.no_grad()
def _accuracy(clf, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = clf(x[i:i + batch_size])["logits"].cpu()
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)


@register_metric("translation-accuracy", "a target-domain classifier's accuracy on translated "
                 "test images against the source labels (content kept; FCN-score idea)")
def translation_accuracy(ctx: EvalContext) -> dict:
    data, directions = _test_domains(ctx)
    names = data.spec.extras["domains"]  # (A's name, B's name)
    out: dict = {}
    for direction in directions:
        src, dst = ("A", 1) if direction == "AtoB" else ("B", 0)
        x, y = _images(ctx, data, src)
        if y is None:
            raise GenzooError(f"translation-accuracy needs labels in domain {src} "
                              f"({names[1 - dst]} has none)")
        clf = _classifier(names[dst], ctx.device)
        out[f"acc_{direction}"] = _accuracy(clf, _translated(ctx, data, direction), y,
                                            ctx.batch_size)
        out[f"acc_{direction}_untranslated"] = _accuracy(clf, x, y, ctx.batch_size)
        out[f"classifier_{direction}"] = clf.name
        out[f"classifier_{direction}_own_test_accuracy"] = float(clf.meta["test_accuracy"])
        out[f"n_{direction}"] = len(x)
    out["protocol"] = ("argmax of the target domain's classifier (genzoo train classifier) on "
                       "the translated test split == the source label")
    return {**out, **_panel(ctx, data, directions)}


@register_metric("cycle-error", "mean |F(G(a)) - a| and |G(F(b)) - b| per pixel on the test "
                 "split (cycle reconstruction, data units)")
def cycle_error(ctx: EvalContext) -> dict:
    data, directions = _test_domains(ctx)
    if len(directions) < 2:
        raise GenzooError(f"cycle-error needs a model that translates both ways; "
                          f"{ctx.model.name} goes {directions[0]} only")
    out: dict = {}
    for direction, back in (("AtoB", "BtoA"), ("BtoA", "AtoB")):
        x = _images(ctx, data, "A" if direction == "AtoB" else "B")[0]
        rec = translate_all(ctx.model, _translated(ctx, data, direction), back, ctx.batch_size)
        key = "cycle_A" if direction == "AtoB" else "cycle_B"
        out[key] = float((rec - x).abs().mean())
        out[f"n_{key}"] = len(x)
    out["protocol"] = "mean absolute error per pixel in [-1, 1] units (range 2)"
    return {**out, **_panel(ctx, data, directions)}


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB: 10 log10(range^2 / MSE); (N,) for (N, ...) images."""
    mse = (x.double() - ref.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse.clamp_min(1e-12))


@register_metric("psnr", "paired data: L1 and PSNR of the translations to the ground truth on "
                 "the test split (pix2pix)")
def psnr_metric(ctx: EvalContext) -> dict:
    data, directions = _test_domains(ctx)
    if not data.paired:
        raise GenzooError(f"psnr needs paired data (each input with its ground truth); "
                          f"{data.name} is unpaired")
    a, _ = _images(ctx, data, "A")
    b, _ = _images(ctx, data, "B")
    fake = _translated(ctx, data, "AtoB")
    out = {"l1": float((fake - b).abs().mean()), "psnr": float(psnr(fake, b).mean()),
           "n": len(b)}
    if a.shape == b.shape:  # the input itself as the translation: the floor
        out["l1_input"] = float((a - b).abs().mean())
        out["psnr_input"] = float(psnr(a, b).mean())
    if not math.isfinite(out["psnr"]):
        raise GenzooError("psnr is not finite: the translations hold NaN or Inf values")
    out["protocol"] = "G(a) vs ground truth b in [-1, 1]; PSNR per image (range 2), averaged"
    return {**out, **_panel(ctx, data, directions)}
