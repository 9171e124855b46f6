"""`genzoo report`: one self-contained HTML page for a run directory, or a comparison of several.

    genzoo report RUN                      -> RUN/report.html
    genzoo report RUN_A RUN_B --out cmp.html

A page shows what the run directory holds and nothing is recomputed except the interpolation
animation (which needs the model): the evaluation (`eval/metrics.json`), the last logged losses,
loss curves of every number in `metrics.jsonl`, the fixed-noise sample grids over training, an
interpolation GIF, the evaluation pictures (`eval/*.png`, e.g. the nearest-neighbour panels), the
figures `genzoo plot` left in the run directory, and `config.yaml`. A missing piece (no eval yet,
no checkpoint yet, 2-D points that have no images to walk through) is a sentence saying why.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genzoo.config import RunConfig
from genzoo.errors import GenzooError
from genzoo.report import page as P

INTERP_PAIRS = 16  # walks in the animation, shown as a 4 x 4 grid
INTERP_STEPS = 16  # frames from one end to the other
INTERP_SEED = 0
MAX_TRAINING_PICTURES = 12  # sample grids over training shown per run (evenly spaced)
# lerp for the VAE, slerp (White 2016, arXiv:1609.04468) for every other model. slerp's case
# rests on Gaussian latents of many dimensions concentrating on a sphere, so that straight lines
# cut through improbable low-norm points: true for a GAN's nz=100, not for the 2- to 20-D VAE
# latents of this zoo, whose decoder has seen the posterior's codes near the origin as well.
DEFAULT_INTERP = {"vae": "lerp"}
PICTURE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg")


@dataclass
class RunInfo:
    """What a page shows of one run directory (read once, before any HTML)."""

    path: Path
    cfg: RunConfig
    config_text: str
    kind: str  # the data kind in config.yaml's spec: image, points, ...
    label: str = ""
    log: list[dict] = field(default_factory=list)  # metrics.jsonl rows
    log_note: str = ""
    evaluation: dict | None = None  # eval/metrics.json
    eval_note: str = ""
    checkpoint: Path | None = None
    samples: list[tuple[int, Path]] = field(default_factory=list)  # (step, picture)
    eval_pictures: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)  # pictures `genzoo plot` wrote in RUN/

    @property
    def step(self) -> int:
        return int(self.checkpoint.name[5:]) if self.checkpoint else 0


# ----------------------------------------------------------------------------- reading a run

def read_run(path: Path) -> RunInfo:
    import yaml

    from genzoo.train.checkpoint import latest_checkpoint
    from genzoo.train.rundir import read_run_config

    cfg = read_run_config(path)  # a missing or foreign directory fails here, with its reason
    text = (path / "config.yaml").read_text()
    spec = (yaml.safe_load(text) or {}).get("spec") or {}
    run = RunInfo(path=path, cfg=cfg, config_text=text, kind=str(spec.get("kind", "unknown")),
                  checkpoint=latest_checkpoint(path))
    log = path / "metrics.jsonl"
    if log.is_file():
        bad = 0
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # e.g. a line cut short by a crash
                bad += 1
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                run.log.append(row)
        if bad:
            run.log_note = f"{bad} line(s) of metrics.jsonl could not be read and are left out."
    else:
        run.log_note = "No metrics.jsonl: the run has logged nothing yet."
    ev = path / "eval" / "metrics.json"
    if ev.is_file():
        try:
            run.evaluation = json.loads(ev.read_text())
        except json.JSONDecodeError:
            run.eval_note = f"{ev} is not valid JSON; run genzoo eval again."
        if run.evaluation is not None and not isinstance(run.evaluation.get("metrics"), dict):
            run.evaluation, run.eval_note = None, f"{ev} holds no 'metrics' object."
    else:
        run.eval_note = (f"No evaluation yet: `genzoo eval {path} --metrics NAMES` writes "
                         "eval/metrics.json (`genzoo list` shows the metrics).")
    for p in (path / "samples").glob("step-*.png"):
        if re.fullmatch(r"step-\d+\.png", p.name):
            run.samples.append((int(p.stem[5:]), p))
    run.samples.sort()
    if (path / "eval").is_dir():
        run.eval_pictures = sorted(p for p in (path / "eval").iterdir()
                                   if p.suffix.lower() in PICTURE_SUFFIXES and p.is_file())
    run.figures = sorted(p for p in path.iterdir()
                         if p.suffix.lower() in PICTURE_SUFFIXES and p.is_file())
    return run


def _labels(paths: list[Path]) -> list[str]:
    """Short unique names: the directory name, with parents added only where names clash."""
    parts = [p.resolve().parts for p in paths]
    for n in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def check_args(run_dirs, out, interp: str | None) -> tuple[list[Path], Path]:
    """Every argument checked before any work; returns the run paths and the output file."""
    if not run_dirs:
        raise GenzooError("no run directories given; e.g. genzoo report runs/vae")
    if interp is not None and interp not in ("lerp", "slerp"):
        raise GenzooError(f"--interp {interp!r} is not valid; choose lerp or slerp")
    from genzoo.train.rundir import read_run_config

    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        read_run_config(d)  # not a directory, no config.yaml, bad YAML: says which
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise GenzooError("a run directory is given twice")
    if out is None:
        if len(dirs) > 1:
            raise GenzooError("several runs need --out FILE.html (one run's page defaults to "
                              "RUN/report.html)")
        out = dirs[0] / "report.html"
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise GenzooError(f"--out {str(out)!r} must be an .html file")
    if out.is_dir():
        raise GenzooError(f"--out {str(out)!r} is a directory; give a file name ending in .html")
    if not out.parent.is_dir():
        raise GenzooError(f"directory {str(out.parent)!r} does not exist")
    return dirs, out


# ----------------------------------------------------------------------------- pictures

def _numeric_keys(rows: list[dict]) -> list[str]:
    keys = dict.fromkeys(k for r in rows for k, v in r.items()
                         if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool))
    # losses first, then the learning rates and the speed
    return sorted(keys, key=lambda k: (k == "images_per_s", k.split("/")[0] == "lr"))


def _group(key: str) -> str:
    """Panel of a key: its phase or prefix (`D/loss`, `D/d_real` -> D; `lr/G` -> lr)."""
    return key.split("/", 1)[0]


def loss_curves(runs: list[RunInfo]) -> bytes | None:
    """A PNG of every number in metrics.jsonl against the step. One run: a panel per key group
    (a phase's terms together); several runs: a panel per key with a line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _numeric_keys([r for run in runs for r in run.log])
    if not keys:
        return None
    if len(runs) == 1:
        panels: dict[str, list[tuple[str, str]]] = {}
        for k in keys:
            panels.setdefault(_group(k), []).append((k, k))  # (key, legend)
    else:
        panels = {k: [(k, run.label) for run in runs] for k in keys}
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows), dpi=100,
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, lines) in zip(axes.flat, panels.items()):
        for i, (key, legend) in enumerate(lines):
            run = runs[i] if len(runs) > 1 else runs[0]
            pts = [(r["step"], r[key]) for r in run.log if isinstance(r.get(key), (int, float))]
            if pts:  # colour i: with several runs a run keeps its colour in every panel
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="." if len(pts) < 30 else None, lw=1.2, label=legend,
                        color=f"C{i % 10}")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("step", fontsize=7)
        if len(lines) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return P.figure_png(fig)


def _gif(frames: list[torch.Tensor], grey: bool) -> bytes:
    """(C, H, W) frames in [0, 1] -> a looping GIF that walks there and back, pausing at the
    ends."""
    from PIL import Image

    imgs = []
    for f in frames:
        arr = (f.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, C)
        imgs.append(Image.fromarray(arr[:, :, 0] if grey else arr))
    t = len(imgs)
    order = list(range(t)) + list(range(t - 2, 0, -1))
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=[imgs[i] for i in order[1:]],
                 duration=[600 if i in (0, t - 1) else 80 for i in order], loop=0)
    return buf.getvalue()


def interpolation(run: RunInfo, interp: str | None) -> tuple[str, str]:
    """(figure HTML or a note, the mode used or '') for one run."""
    from genzoo.train.rundir import load_run
    from genzoo.viz.grid import image_grid
    from genzoo.viz.interp import interpolation_images

    if run.kind != "image":  # 2-D points (8gaussians, ...): samples are scatter plots
        return P.note(f"{run.label}: this run models {run.kind} data, not images, so a walk "
                      "through its latent space has no pictures to animate (its samples are "
                      "shown in the samples section)."), ""
    if run.checkpoint is None:
        return P.note(f"{run.label}: no complete checkpoint yet, so no model to walk "
                      "through."), ""
    model, _, info = load_run(run.path, ema=True)
    if not hasattr(model, "decode") or not hasattr(model, "latent_dim"):
        return P.note(f"{run.label}: model {model.name!r} has no latent space to walk "
                      "through."), ""
    mode = interp or DEFAULT_INTERP.get(model.name, "slerp")
    x = interpolation_images(model, INTERP_PAIRS, INTERP_STEPS, mode, INTERP_SEED).cpu()
    x = x.view(INTERP_PAIRS, INTERP_STEPS, *x.shape[1:])  # (pairs, steps, C, H, W)
    frames = [image_grid(x[:, t], nrow=4) for t in range(INTERP_STEPS)]
    data = _gif(frames, grey=x.shape[2] == 1)
    cap = (f"<b>{P.esc(mode)}</b>: {INTERP_PAIRS} walks between random latents (seed "
           f"{INTERP_SEED}), {INTERP_STEPS} steps there and back<br>{P.esc(info)}")
    return P.figure(data, "image/gif", cap, alt=f"{run.label} interpolation ({mode})"), mode


def _spread(items: list, k: int) -> list:
    """At most k items evenly spaced, always with the first and the last."""
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


# ----------------------------------------------------------------------------- sections

def _final_losses(run: RunInfo) -> dict[str, float]:
    last = run.log[-1] if run.log else {}
    return {k: v for k, v in last.items() if k != "step" and k != "images_per_s"
            and _group(k) != "lr" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _eval_caption(run: RunInfo) -> str:
    ev = run.evaluation or {}
    text = (f"From {run.path / 'eval' / 'metrics.json'}: checkpoint {ev.get('checkpoint')}, "
            f"seed {ev.get('seed')}, genzoo {ev.get('genzoo_version')}.")
    latest = run.checkpoint.name if run.checkpoint else None
    if latest and ev.get("checkpoint") and not str(ev["checkpoint"]).endswith(latest):
        text += f" The latest checkpoint is {latest}: run genzoo eval again to update it."
    return text


def _metrics_section(run: RunInfo) -> list[str]:
    out = [P.heading("Metrics", id="metrics")]
    if run.evaluation is not None:
        rows = [[name, k, P.cell(v)] for name, d in run.evaluation["metrics"].items()
                if isinstance(d, dict) for k, v in d.items()]
        out += [P.para(_eval_caption(run)),
                P.table(["metric", "key", "value"], rows, id="metric-table")]
    else:
        out.append(P.note(run.eval_note))
    final = _final_losses(run)
    if final:
        out += [P.para(f"Training, last logged (step {run.log[-1]['step']}; each value is "
                       "averaged over the steps since the line before):"),
                P.table(["term", "value"], [[k, P.num(v)] for k, v in final.items()],
                        id="final-losses")]
    return out


def _curves_section(runs: list[RunInfo]) -> list[str]:
    out = [P.heading("Loss curves", id="curves")]
    out += [P.note(f"{r.label}: {r.log_note}") for r in runs if r.log_note]
    png = loss_curves(runs)
    if png is None:
        return out + [P.note("Nothing logged yet.")]
    cap = ("every number in metrics.jsonl against the step"
           + ("; one panel per phase or prefix" if len(runs) == 1 else "; one line per run"))
    return out + [P.figure(png, "image/png", P.esc(cap), alt="loss curves", pixel=False)]


def _training_samples(run: RunInfo, level: int = 2) -> list[str]:
    from genzoo.models import get_model_class

    out = [P.heading("Samples over training" if level == 2 else run.label, level,
                     id="samples" if level == 2 else None)]
    cls = get_model_class(run.cfg.model)
    if not cls.generates:
        return out + [P.note(f"{run.label}: {run.cfg.model} is not a generative model, so "
                             "training draws no samples; its results are the metrics above "
                             "(genzoo eval RUN --metrics target-accuracy) and genzoo plot "
                             "features RUN.")]
    if not run.samples:
        return out + [P.note(f"{run.label}: no sample pictures yet (samples/step-NNNNNN.png "
                             "is written every sample_every steps and at the last step).")]
    shown = _spread(run.samples, MAX_TRAINING_PICTURES)
    if len(shown) < len(run.samples):
        out.append(P.para(f"{len(shown)} of {len(run.samples)} pictures, evenly spaced."))
    if level == 2 and getattr(cls, "directions", None):  # translation: fixed inputs, no noise
        out.append(P.para("The same stored inputs every time, each beside its translation "
                          f"({', '.join(cls.directions)}), so each picture shows how the "
                          "translations change as training goes on."))
    elif level == 2:
        out.append(P.para("The same noise every time, so each picture shows the same latent "
                          "points as training goes on."))
    return out + ["<div>" + "".join(P.file_figure(p, f"step {s}") for s, p in shown) + "</div>"]


def _interp_section(runs: list[RunInfo], interp: str | None) -> list[str]:
    out = [P.heading("Interpolation", id="interpolation"),
           P.para("Each cell walks from one random latent to another and back. lerp is the "
                  "straight line; slerp the great circle, which keeps the norm that Gaussian "
                  "latents of many dimensions concentrate on (White 2016, arXiv:1609.04468). "
                  + ("Chosen with --interp." if interp else
                     "Default: lerp for the VAE, slerp for GANs (--interp overrides)."))]
    figs, notes = [], []
    for r in runs:
        html, _ = interpolation(r, interp)
        (figs if html.startswith("<figure") else notes).append(
            html.replace("<figcaption>", f"<figcaption>{P.esc(r.label)}<br>", 1)
            if len(runs) > 1 else html)
    return out + (["<div>" + "".join(figs) + "</div>"] if figs else []) + notes


def _pictures_section(runs: list[RunInfo]) -> list[str]:
    out = []
    if any(r.eval_pictures for r in runs):
        out += [P.heading("Evaluation pictures", id="eval-pictures"),
                P.para("Every picture in eval/ (the nearest-neighbour panels of the nn metric, "
                       "nn-pixel.png and nn-features.png, are written there), by file name.")]
        pics = [(r, p) for name in sorted({p.name for r in runs for p in r.eval_pictures})
                for r in runs for p in r.eval_pictures if p.name == name]
        out.append("<div>" + "".join(P.file_figure(
            p, p.name if len(runs) == 1 else f"{r.label}: {p.name}") for r, p in pics) + "</div>")
    if any(r.figures for r in runs):
        out += [P.heading("Other figures", id="figures"),
                P.para("Pictures in the run directory itself, e.g. from genzoo plot.")]
        out.append("<div>" + "".join(P.file_figure(
            p, p.name if len(runs) == 1 else f"{r.label}: {p.name}")
            for r in runs for p in r.figures) + "</div>")
    return out


def _config_section(runs: list[RunInfo]) -> list[str]:
    out = [P.heading("Configuration", id="config")]
    if len(runs) == 1:
        return out + [P.para(str(runs[0].path / "config.yaml")), P.pre(runs[0].config_text)]
    return out + [P.details(f"{r.label}: {r.path / 'config.yaml'}", P.pre(r.config_text))
                  for r in runs]


def _flat_config(run: RunInfo) -> dict[str, str]:
    """`section.key` -> the value as text (strings bare, the rest as JSON: null, [16], 1.0)."""
    return {f"{s}.{k}": v if isinstance(v, str) else json.dumps(v)
            for s, body in run.cfg.to_dict().items() for k, v in body.items()}


def _comparison_section(runs: list[RunInfo]) -> list[str]:
    from genzoo.report.compare import PROTOCOL_KEYS

    metric_cols: dict[str, None] = {}
    values: list[dict[str, object]] = []
    for r in runs:
        v: dict[str, object] = {}
        for name, d in ((r.evaluation or {}).get("metrics") or {}).items():
            for k, x in (d.items() if isinstance(d, dict) else ()):
                if isinstance(x, (int, float)) and not isinstance(x, bool) \
                        and k not in PROTOCOL_KEYS:
                    v[f"{name}.{k}"] = x
                    metric_cols[f"{name}.{k}"] = None
        values.append(v)
    loss_cols = list(dict.fromkeys(k for r in runs for k in _final_losses(r)))
    head = ["run", "model", "data", "step", *metric_cols, *(f"final {k}" for k in loss_cols)]
    body = []
    for r, v in zip(runs, values):
        final = _final_losses(r)
        body.append([r.label, r.cfg.model, r.cfg.data.name, f"{r.step}/{r.cfg.train.steps}",
                     *(P.cell(v[c]) if c in v else "n/a" for c in metric_cols),
                     *(P.num(final[c]) if c in final else "n/a" for c in loss_cols)])
    out = [P.heading("Comparison", id="metrics"),
           P.para("step: the latest checkpoint / the configured steps. Then the metrics from "
                  "each run's eval/metrics.json (n/a: not evaluated) and the last logged "
                  "training losses."),
           P.table(head, body, id="metric-table")]
    out += [P.note(f"{r.label}: {r.eval_note}") for r in runs if r.eval_note]
    flats = [_flat_config(r) for r in runs]
    every = [k for k in dict.fromkeys(k for f in flats for k in f) if all(k in f for f in flats)]
    keys = [k for k in every if len({f[k] for f in flats}) > 1 and k != "train.progress"]
    some = len({k for f in flats for k in f}) - len(every)
    out.append(P.heading("Settings that differ", 3))
    out.append(P.table(["setting", *(r.label for r in runs)], [[k, *(f[k] for f in flats)]
                                                                for k in keys], id="config-diff")
               if keys else P.note("The settings the runs share are the same."))
    if some:  # different models: their own settings are not comparable row by row
        out.append(P.para(f"{some} more settings belong to only some of the models; see "
                          "Configuration below."))
    out += [P.heading("Final samples", id="final-samples"),
            P.para("Each run's latest picture in samples/ (its own fixed noise).")]
    out.append("<div>" + "".join(
        P.file_figure(r.samples[-1][1], f"{r.label}, step {r.samples[-1][0]}") if r.samples
        else P.note(f"{r.label}: no sample pictures yet.") for r in runs) + "</div>")
    return out


# ----------------------------------------------------------------------------- the page

def render(runs: list[RunInfo], interp: str | None = None) -> str:
    """The HTML of the page for these runs (one: its report; several: the comparison)."""
    if len(runs) == 1:
        r = runs[0]
        title = f"genzoo report: {r.label}"
        sub = (f"{r.cfg.model} on {r.cfg.data.name}, {r.path.resolve()}, "
               + (f"latest checkpoint {r.checkpoint.name} of {r.cfg.train.steps} steps"
                  if r.checkpoint else "no complete checkpoint yet"))
        body = (_metrics_section(r) + _curves_section(runs) + _training_samples(r)
                + _interp_section(runs, interp) + _pictures_section(runs) + _config_section(runs))
    else:
        title = f"genzoo report: {len(runs)} runs"
        sub = ", ".join(str(r.path) for r in runs)
        body = (_comparison_section(runs) + _curves_section(runs)
                + _interp_section(runs, interp) + _pictures_section(runs)
                + [P.heading("Samples over training", id="samples")]
                + [x for r in runs for x in _training_samples(r, level=3)]
                + _config_section(runs))
    return P.document(title, body, sub)


def write_report(run_dirs, out=None, *, interp: str | None = None) -> Path:
    """Write the page for one run (default RUN/report.html) or several (out required).

    interp: 'lerp' or 'slerp' for every run; None picks per model (lerp for the VAE, slerp
    otherwise). Returns the path written."""
    dirs, out = check_args(run_dirs, out, interp)
    runs = [read_run(d) for d in dirs]
    for r, label in zip(runs, _labels(dirs)):
        r.label = label
    text = render(runs, interp)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
