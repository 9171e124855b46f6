"""The feature-space picture of domain adaptation: source and target features in 2-D.

One panel per run: the test images of both domains go through the run's feature extractor
(`embed`, e.g. dann) and the features are projected to 2-D by t-SNE or PCA, source in blue and
target in red. Without adaptation the two domains form separate clouds; with it they overlap,
class by class (the picture of Ganin et al. 2016, arXiv 1505.07818, Fig. 2). Give a source-only
run and an adapted run to see "before" and "after".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.errors import GenzooError


def run_features(run: str | Path, n: int, batch_size: int = 250) -> dict:
    """Features, labels and predictions of the first n test images of each domain of a run."""
    from genzoo.data import TwoDomainData, load_dataset
    from genzoo.train.rundir import load_run

    model, cfg, info = load_run(run, ema=True)
    if not hasattr(model, "embed"):
        raise GenzooError(f"{run}: a {cfg.model} run has no feature extractor; plot features "
                          "takes domain-adaptation runs (dann)")
    data = load_dataset(cfg.data, "test")
    if not isinstance(data, TwoDomainData):
        raise GenzooError(f"{run}: its data has one domain; plot features needs a source and "
                          "a target (--set target=NAME at training)")
    out = {"info": info, "variant": getattr(model.cfg, "variant", ""),
           "domains": (data.a.name, data.b.name)}
    with torch.no_grad():
        for key, d in (("source", data.a), ("target", data.b)):
            x, y = d.to_float(d.x[:n]), d.y[:n]
            f = torch.cat([model.embed(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
            out[key] = f.double().numpy()  # (n, F)
            out[f"{key}_acc"] = float((model.classifier(f).argmax(1) == y).float().mean())
    return out


def project(feats: np.ndarray, method: str, seed: int) -> np.ndarray:
    """(N, F) -> (N, 2) by t-SNE (sklearn, PCA start) or PCA (the top two principal axes)."""
    if method == "pca":
        c = feats - feats.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        return c @ vt[:2].T
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, init="pca", random_state=seed, perplexity=30).fit_transform(feats)
    raise GenzooError(f"--method {method!r} is not valid; choose tsne or pca")


def feature_picture(runs: list[str], out: str | Path, *, n: int = 500, method: str = "tsne",
                    seed: int = 0) -> Path:
    """One panel per run; writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.viz.grid import save_figure

    if n < 10:
        raise GenzooError(f"--n {n} must be at least 10 images per domain")
    if method not in ("tsne", "pca"):
        raise GenzooError(f"--method {method!r} is not valid; choose tsne or pca")
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4.3), dpi=100, squeeze=False)
    for ax, run in zip(axes[0], runs):
        r = run_features(run, n)
        xy = project(np.concatenate([r["source"], r["target"]]), method, seed)  # (2n', 2)
        ns = len(r["source"])
        ax.scatter(xy[:ns, 0], xy[:ns, 1], s=4, c="#1f77b4", label=f"source ({r['domains'][0]})")
        ax.scatter(xy[ns:, 0], xy[ns:, 1], s=4, c="#d62728", label=f"target ({r['domains'][1]})")
        ax.set_title(f"{Path(run).name}: {r['variant']}\nsource acc {r['source_acc']:.2f}, "
                     f"target acc {r['target_acc']:.2f} (these {ns})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=3, loc="best")
    fig.suptitle(f"features of test images, {method.upper()}", fontsize=10)
    save_figure(fig, out)
    return Path(out)
