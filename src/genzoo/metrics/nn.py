"""Nearest-neighbour check for memorisation: is the model copying its training images?

For a grid of generated samples, the nearest training images in pixel space (L2 on [-1, 1]
pixels) and in feature space (the extractor of FID/KID), each row a sample followed by its
neighbours: RUN/eval/nn-pixel.png and RUN/eval/nn-features.png. The numbers put the distances in
context: the mean distance of generated samples to their nearest training image, beside the same
for the held-out test images (real images the model never saw). A ratio fake/test well below 1
means samples sit closer to training images than new real images do: a sign of memorisation.
"""

from __future__ import annotations

import torch

from genzoo.metrics import EvalContext, register_metric

ROWS, NEIGHBOURS = 8, 5
_CHUNK = 1024


def nearest(queries: torch.Tensor, refs: torch.Tensor, k: int = 1):
    """(distances (Q, k), indices (Q, k)) of the k nearest rows of refs, float64 L2."""
    q, r = queries.flatten(1).double(), refs.flatten(1).double()
    ds, idx = [], []
    for i in range(0, len(q), _CHUNK):
        d = torch.cdist(q[i:i + _CHUNK], r)
        v, j = d.topk(k, dim=1, largest=False)
        ds.append(v)
        idx.append(j)
    return torch.cat(ds), torch.cat(idx)


def _panel(fake, train, idx, path) -> None:
    from genzoo.viz.grid import image_grid, save_image

    rows = []
    for i in range(len(idx)):
        rows.append(fake[i:i + 1])
        rows.append(train[idx[i]])
    x = torch.cat(rows)  # (rows * (1 + k), C, H, W): a sample, then its neighbours
    save_image(image_grid(x, nrow=1 + idx.shape[1]), path)


@register_metric("nn", "nearest training images of samples, pixel and feature space "
                       "(memorisation check)", features=True)
def nn_check(ctx: EvalContext) -> dict:
    from genzoo.errors import GenzooError

    fake, train = ctx.fake(), ctx.real("train")
    if fake.dim() != 4:
        raise GenzooError("the nn check needs image data")
    test = ctx.real("test")
    out = {"n_fake": len(fake), "n_train": len(train), "n_test": len(test)}
    f_feat, t_feat = ctx.fake_features()["features"], ctx.real_features("train")["features"]
    test_feat = ctx.real_features("test")["features"]
    spaces = {"pixel": (fake, train, test), "features": (f_feat, t_feat, test_feat)}
    for space, (f, t, te) in spaces.items():
        d_fake, idx = nearest(f, t, NEIGHBOURS)
        d_test, _ = nearest(te, t, 1)
        mean_fake, mean_test = float(d_fake[:, 0].mean()), float(d_test[:, 0].mean())
        out[f"nn_{space}_fake"] = mean_fake
        out[f"nn_{space}_test"] = mean_test
        out[f"nn_{space}_ratio"] = mean_fake / mean_test if mean_test > 0 else float("nan")
        if ctx.out_dir is not None:
            ctx.out_dir.mkdir(parents=True, exist_ok=True)
            path = ctx.out_dir / f"nn-{space}.png"
            _panel(fake[:ROWS], train, idx[:ROWS], path)
            out[f"panel_{space}"] = str(path)
    out["features"] = ctx.extractor().name
    return out
