"""Domain adaptation: how well a classifier trained with source labels labels the target domain.

`target-accuracy` runs the model's classifier (`classify(x) -> logits`, e.g. dann) over the
*test* splits of both domains of the run's data (`--data A --set target=B`) and reports the
fraction labelled correctly in each: `source_accuracy` (the task it was trained on) and
`target_accuracy` (the point of adaptation; the target's labels are used only here, or in
training by variant=target-only).
"""

from __future__ import annotations

import torch

from genzoo.data import TwoDomainData, load_dataset
from genzoo.errors import GenzooError
from genzoo.metrics import EvalContext, register_metric


def accuracy(model, data, n: int | None, batch_size: int, device) -> tuple[float, int]:
    """Fraction of the first n examples of `data` (a TensorData) that `model` labels right."""
    if data.y is None:
        raise GenzooError(f"{data.name} has no labels to score against")
    n = len(data) if n is None else min(n, len(data))
    correct, seen = 0, 0
    with torch.no_grad():
        for batch in data.ordered(batch_size):
            x, y = batch["x"][: n - seen].to(device), batch["y"][: n - seen].to(device)
            if len(x) == 0:
                break
            correct += int((model.classify(x).argmax(1) == y).sum())
            seen += len(x)
    return correct / seen, seen


@register_metric("target-accuracy", "domain adaptation: label accuracy on the source and target "
                 "test splits (dann)")
def target_accuracy(ctx: EvalContext) -> dict:
    model = ctx.model
    if model is None or not hasattr(model, "classify"):
        raise GenzooError("target-accuracy scores a run's classifier (dann); it needs a run "
                          "directory of a model with classify(), not --samples")
    if ctx.batch_size < 1:
        raise GenzooError(f"--batch-size {ctx.batch_size} must be at least 1")
    data = load_dataset(ctx.data_cfg, "test")
    if not isinstance(data, TwoDomainData):
        raise GenzooError(f"the run's data ({ctx.data_cfg.name}) has one domain; "
                          "target-accuracy needs a target (--set target=NAME at training)")
    src, n_src = accuracy(model, data.a, ctx.n, ctx.batch_size, ctx.device)
    tgt, n_tgt = accuracy(model, data.b, ctx.n, ctx.batch_size, ctx.device)
    return {"source_accuracy": src, "target_accuracy": tgt, "n_source": n_src,
            "n_target": n_tgt, "domains": f"{data.a.name} -> {data.b.name}", "split": "test",
            "variant": getattr(model.cfg, "variant", "")}
