"""`genzoo compare`: comparisons without cherry-picking.

Every configuration runs on one dataset with the same budget of steps and the same seeds; every
seed is reported (mean ± sample std, ddof=1), and divergences are rows, never dropped. Sample
pictures come from each row's first seed (EMA weights when the run has them) with one fixed noise
generator, so rows are comparable and nobody picks good samples.

    genzoo compare vae:latent_dim=2 vae:latent_dim=20 --data digits --out cmp --seeds 0,1,2

    OUT/runs/<label>/seed-<s>/   one run directory per configuration and seed (a finished run
                                 with the same config is reused, an unfinished one resumed)
    OUT/compare.md               the table; OUT/compare.html the table, command, configs, pictures
    OUT/compare.json             every per-seed number; OUT/grids.png the pictures side by side

A CONFIG is `PRESET` or `PRESET:key=value,key=value` (a piece without `=` continues the previous
value: `hidden=64,64`). Settings are applied in this order, later ones winning: the preset,
--data/--steps/seed, the common --set items, then the config's own overrides.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from genzoo.config import RunConfig, build_config, parse_set
from genzoo.errors import GenzooError, TrainingDiverged
from genzoo.report import page as P

Log = Callable[[str], None]
# the comparison itself fixes these; a config or --set may not change them
_FIXED = {"seed": "--seeds", "train.seed": "--seeds", "steps": "--steps",
          "train.steps": "--steps", "name": "--data", "data.name": "--data"}
N_PICTURE = 64  # samples in each row's picture


def parse_config_spec(spec: str) -> tuple[str, str, list[tuple[str, str]]]:
    """'vae:beta=4,hidden=64,64' -> (label, 'vae', [('beta', '4'), ('hidden', '64,64')]).

    The label is the spec itself (stripped); a piece without '=' continues the previous value."""
    label = spec.strip()
    preset, colon, rest = label.partition(":")
    if not preset.strip():
        raise GenzooError(f"config {spec!r} names no preset; write PRESET or PRESET:key=value,...")
    if colon and not rest.strip():
        raise GenzooError(f"config {spec!r} has nothing after ':'; write PRESET:key=value,...")
    pairs: list[list[str]] = []
    for piece in rest.split(",") if colon else []:
        if "=" in piece:
            key, value = piece.split("=", 1)
            if not key.strip():
                raise GenzooError(f"config {spec!r}: {piece!r} has an empty key")
            pairs.append([key.strip(), value.strip()])
        elif pairs and piece.strip():  # a list value: hidden=64,64
            pairs[-1][1] += "," + piece.strip()
        else:
            raise GenzooError(f"config {spec!r}: {piece!r} is not key=value "
                              "(write PRESET:key=value,key=value)")
    return label, preset.strip(), [(k, v) for k, v in pairs]


def _refuse_fixed(overrides: list[tuple[str, str]], where: str) -> None:
    for key, _ in overrides:
        if key in _FIXED:
            raise GenzooError(f"{where} sets {key!r}, which a comparison keeps equal for every "
                              f"config; use {_FIXED[key]} instead")


def _dir_name(label: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", label).strip("._") or "config"
    base, i = name, 2
    while name in taken:  # two labels that differ only in unsafe characters
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def _comparable(cfg: RunConfig, *, seed: bool = True) -> dict[str, object]:
    """The config as flat `section.key` values, without display-only settings."""
    flat = {f"{s}.{k}": v for s, body in cfg.to_dict().items() for k, v in body.items()}
    flat.pop("train.progress")
    if not seed:
        flat.pop("train.seed")
    return json.loads(json.dumps(flat))  # tuples -> lists, as read back from config.yaml


def _check_common(out, names, n_eval: int | None) -> Path:
    from genzoo.metrics import get_metric

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GenzooError(f"--out {str(out)!r} is a file; give a directory")
    for m in names:
        get_metric(m)  # unknown metric: GenzooError listing the valid ones
    if n_eval is not None and n_eval < 1:
        raise GenzooError(f"--n {n_eval} must be at least 1")
    return out


def _dry_check(label: str, cfg: RunConfig, cache: dict) -> None:
    """What would fail at step 0 of training (dataset, device, model/data fit, batch size)."""
    from genzoo.data import load_dataset
    from genzoo.models import build_model
    from genzoo.train.loop import resolve_device

    resolve_device(cfg.train.device)
    try:
        key = repr(cfg.data)
        if key not in cache:
            cache[key] = load_dataset(cfg.data, "train")
        cache[key].batch(0, cfg.train.batch_size, cfg.train.seed)
        build_model(cfg.model, cfg.model_cfg, cache[key].spec)
    except GenzooError as e:
        raise GenzooError(f"config {label!r}: {e}") from None


def _run_state(run_dir: Path, cfg: RunConfig) -> str:
    """'new', 'resume' (unfinished, same config) or 'done' (finished, same config)."""
    from genzoo.train.checkpoint import latest_checkpoint
    from genzoo.train.rundir import read_run_config

    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return "new"
    if not (run_dir / "config.yaml").is_file():
        raise GenzooError(f"{str(run_dir)!r} exists but is no run directory; remove it or choose "
                          "another --out")
    old, new = _comparable(read_run_config(run_dir)), _comparable(cfg)
    if old != new:
        key = next(k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))
        raise GenzooError(f"{str(run_dir)!r} holds a run with another config ({key}: "
                          f"{old.get(key)!r} there, {new.get(key)!r} now); remove it or choose "
                          "another --out")
    ckpt = latest_checkpoint(run_dir)
    return "done" if ckpt is not None and int(ckpt.name[5:]) == cfg.train.steps else "resume"


def _log_timing(run_dir: Path, batch_size: int) -> tuple[float | None, float | None]:
    """(training wall seconds, images/s of the last row) from metrics.jsonl.

    Each row's images_per_s covers the window since the previous row, so the windows add up to
    the training time, across resumes too (a reused run has its time as well as a fresh one).
    """
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(s) for s in path.read_text().splitlines()] if path.is_file() else []
    wall, prev = 0.0, 0
    for r in rows:
        if r.get("images_per_s"):
            wall += batch_size * (r["step"] - prev) / r["images_per_s"]
        prev = r["step"]
    return (wall, rows[-1].get("images_per_s")) if rows else (None, None)


def _record(run_dir: Path, cfg: RunConfig, status: str, message: str, step: int,
            metrics, n_eval, options) -> dict:
    """One run's numbers; metrics are evaluated unless the run diverged or has no checkpoint."""
    from genzoo.metrics import evaluate
    from genzoo.train.checkpoint import latest_checkpoint

    wall, ips = _log_timing(run_dir, cfg.train.batch_size)
    rec = {"seed": cfg.train.seed, "run_dir": str(run_dir), "status": status, "message": message,
           "step": step, "wall_s": wall, "images_per_s": ips, "metrics": {}, "eval_error": None}
    if metrics and status != "diverged" and latest_checkpoint(run_dir) is not None:
        try:
            rec["metrics"] = evaluate(run_dir, list(metrics), n=n_eval, options=options)["metrics"]
        except GenzooError as e:  # e.g. nll of a model without likelihood: a result, noted
            rec["eval_error"] = str(e)
    return rec


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else None,
            "n": len(a)}


# metric outputs that describe how a number was measured rather than what was measured
# facts of a metric's protocol (sample counts, settings), not scores: kept out of the columns
PROTOCOL_KEYS = {"n", "dims", "importance_samples", "n_sigma", "min_count", "modes_total",
                 "n_real", "n_fake", "n_train", "n_test", "n_pairs", "n_images", "subsets",
                 "subset_size", "splits", "k_pr", "k_dc", "scales", "kernel_size", "sigma"}


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["status"] != "diverged"]
    vals: dict[str, list[float]] = {}
    for r in ok:
        for m, d in r["metrics"].items():
            for k, v in d.items():
                # results are numbers; the protocol (n, dims, k, thresholds) and strings are not
                if isinstance(v, (int, float)) and not isinstance(v, bool) \
                        and k not in PROTOCOL_KEYS:
                    vals.setdefault(f"{m}.{k}", []).append(float(v))
    return {"seeds": len(runs), "diverged": len(runs) - len(ok),
            "metrics": {k: _stats(v) for k, v in vals.items()},
            "wall_s": _stats([r["wall_s"] for r in ok if r["wall_s"] is not None]),
            "images_per_s": _stats([r["images_per_s"] for r in ok if r["images_per_s"]])}


_num = P.num


def _fmt(s: dict | None) -> str:
    if s is None:
        return "n/a"
    return _num(s["mean"]) if s["std"] is None else f"{_num(s['mean'])} ± {_num(s['std'])}"


@torch.no_grad()
def _picture(row: dict, path: Path) -> torch.Tensor | None:
    """(C, H, W) picture in [0, 1] of the first seed's model, fixed noise; None if it has none."""
    from genzoo.data import load_dataset
    from genzoo.train.rundir import load_run
    from genzoo.viz.grid import save_samples

    first = row["runs"][0]
    if first["status"] == "diverged" or first["step"] == 0:
        row["picture_note"] = f"seed {first['seed']}: {first['status']}, no samples"
        return None
    model, cfg, info = load_run(first["run_dir"], ema=True)
    x = model.sample(N_PICTURE, generator=torch.Generator().manual_seed(0)).cpu()
    ref = load_dataset(cfg.data, "train").x[:2000] if model.spec.kind == "points" else None
    try:
        pic = save_samples(x, model.spec.kind, path, reference=ref)  # titled by caller
    except ValueError:  # no picture for this kind of data yet
        row["picture_note"] = f"no picture for {model.spec.kind} data"
        return None
    row["picture"], row["picture_note"] = path.name, f"{N_PICTURE} samples, {info}, noise seed 0"
    return pic


def _write_grids(rows: list[dict], pics: list[torch.Tensor | None], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # lines broken after commas (or underscores: labels of --runs are directory names)
    titles = [textwrap.fill(re.sub(r"([,_])", r"\1 ", row["label"]), 30).replace(", ", ",")
              .replace("_ ", "_") for row in rows]
    lines = max(t.count("\n") + 1 for t in titles)  # room above the pictures for every line
    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3.0 + 0.3 * lines), dpi=120,
                             squeeze=False)
    for ax, title, row, pic in zip(axes[0], titles, rows, pics):
        ax.axis("off")
        ax.set_title(title, fontsize=8)
        if pic is None:
            ax.text(0.5, 0.5, textwrap.fill(row["picture_note"], 25), ha="center", va="center")
        else:
            img = pic.permute(1, 2, 0).numpy()  # (H, W, C)
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray",
                      interpolation="nearest")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    cols = list(dict.fromkeys(k for r in rows for k in r["summary"]["metrics"]))
    head = ["config", "seeds", "diverged", *cols, "wall s", "images/s"]
    body = [[r["label"], str(s["seeds"]), str(s["diverged"]), *(_fmt(s["metrics"].get(c))
             for c in cols), _fmt(s["wall_s"]), _fmt(s["images_per_s"])]
            for r in rows for s in [r["summary"]]]
    return head, body


def _notes(rows: list[dict]) -> list[str]:
    return [f"{r['label']} seed {run['seed']}: {run['message'] or run['eval_error']}"
            for r in rows for run in r["runs"] if run["message"] or run["eval_error"]]


def _markdown(rows: list[dict]) -> str:
    head, body = _table(rows)
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
             for line in [head, ["---"] * len(head), *body]]
    notes = _notes(rows)
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"


def _html(rows: list[dict], meta: dict, out: Path) -> str:
    """The comparison page, through the same page code as `genzoo report`."""
    head, body = _table(rows)
    figs = []
    for r in rows:
        cap = f"<b>{P.esc(r['label'])}</b><br>{P.esc(r['picture_note'])}"
        figs.append(P.figure((out / "samples" / r["picture"]).read_bytes(), "image/png", cap,
                             alt=r["label"]) if r.get("picture") else
                    f"<figure><p>(no picture)</p><figcaption>{cap}</figcaption></figure>")
    notes = _notes(rows)
    parts = [P.pre(f"{meta['command'] or '(called from Python)'}\n"
                   + json.dumps({k: v for k, v in meta.items() if k != "command"})),
             P.table(head, body, id="metric-table"),
             *(["<ul>" + "".join(f"<li>{P.esc(n)}</li>" for n in notes) + "</ul>"] if notes
               else []),
             P.heading("Samples (first seed, fixed noise)"), "<div>" + "".join(figs) + "</div>",
             P.heading("Configurations"),
             *(P.details(r["label"], P.pre(json.dumps(r["config"], indent=1))) for r in rows)]
    return P.document("genzoo compare", parts)


def _write(rows: list[dict], out: Path, meta: dict) -> dict:
    (out / "samples").mkdir(parents=True, exist_ok=True)
    for r in rows:
        r["summary"] = _summary(r["runs"])
    pics = [_picture(r, out / "samples" / f"{r['dir']}.png") for r in rows]
    paths = {k: out / n for k, n in [("md", "compare.md"), ("html", "compare.html"),
                                     ("json", "compare.json"), ("grids", "grids.png")]}
    _write_grids(rows, pics, paths["grids"])
    table = _markdown(rows)
    paths["md"].write_text(table)
    paths["html"].write_text(_html(rows, meta, out), encoding="utf-8")
    paths["json"].write_text(json.dumps({**meta, "rows": rows}, indent=1))
    return {"rows": rows, "table": table, "paths": {k: str(p) for k, p in paths.items()}}


def run_comparison(specs: list[str], *, data: str | None, out, steps: int, seeds: list[int],
                   sets: list[str] = (), metrics: list[str] = (), n_eval: int | None = None,
                   options: dict | None = None, command: str | None = None,
                   log: Log | None = None) -> dict:
    """Train every spec with every seed into OUT/runs/<label>/seed-<s>, then write the comparison.

    Every config is built and dry-checked before any training. data=None keeps the presets'
    dataset (it must be the same for all). Returns {"rows", "table" (Markdown), "paths"}.
    """
    from genzoo.train import train

    log = log or (lambda msg: None)
    seeds = list(seeds)
    if not specs:
        raise GenzooError("no configurations given; e.g. genzoo compare vae vae:beta=4 --out cmp")
    if not seeds or len(set(seeds)) != len(seeds):
        raise GenzooError(f"--seeds {','.join(map(str, seeds)) or '(none)'} must name at least "
                          "one seed, each once")
    out = _check_common(out, metrics, n_eval)
    common = parse_set(list(sets))
    _refuse_fixed(common, "--set")
    base = [("train.steps", steps), ("train.progress", "none")] + ([("data.name", data)]
                                                                  if data else [])
    plan, taken, cache = [], set(), {}  # plan: (label, dir, [(seed, cfg, run_dir, state)])
    for spec in specs:
        label, preset, over = parse_config_spec(spec)
        _refuse_fixed(over, f"config {label!r}")
        if any(p[0] == label for p in plan):
            raise GenzooError(f"config {label!r} is given twice")
        name, runs = _dir_name(label, taken), []
        for s in seeds:
            try:
                cfg = build_config(preset, overrides=base + [("train.seed", s)] + common + over)
            except GenzooError as e:
                raise GenzooError(f"config {label!r}: {e}") from None
            runs.append((s, cfg, out / "runs" / name / f"seed-{s}"))
        _dry_check(label, runs[0][1], cache)
        plan.append((label, name, [(*r, _run_state(r[2], r[1])) for r in runs]))
    names = {p[2][0][1].data.name for p in plan}
    if len(names) > 1:
        raise GenzooError(f"the configs use different datasets ({', '.join(sorted(names))}); "
                          "choose one with --data")
    del cache
    rows, total, i = [], len(plan) * len(seeds), 0
    for label, name, runs in plan:
        recs = []
        for s, cfg, run_dir, state in runs:
            i += 1
            status, message, step = "ok", "", steps
            if state == "done":
                log(f"[{i}/{total}] {label} seed {s}: finished run reused ({run_dir})")
            else:
                log(f"[{i}/{total}] {label} seed {s}: "
                    + ("resuming" if state == "resume" else "training"))
                try:
                    if train(cfg, run_dir, resume=state == "resume")["stopped"]:
                        raise KeyboardInterrupt  # rerunning the same command resumes
                except TrainingDiverged as e:
                    step = e.step or 0
                    status, message = "diverged", (f"diverged at step {step}: loss term "
                                                   f"{e.term!r} is not finite")
                    log(f"  {message}")
            recs.append(_record(run_dir, cfg, status, message, step, metrics, n_eval, options))
        rows.append({"label": label, "dir": name, "config": _comparable(runs[0][1], seed=False),
                     "runs": recs})
    meta = {"command": command, "data": next(iter(names)), "steps": steps, "seeds": seeds,
            "sets": list(sets), "metrics": list(metrics), "n_eval": n_eval, "options": options}
    return _write(rows, out, meta)


def compare_runs(run_dirs: list[str], *, out, metrics: list[str] = (), n_eval: int | None = None,
                 options: dict | None = None, command: str | None = None) -> dict:
    """The same comparison for existing runs: runs whose configs differ only in train.seed form
    one row (label: the directory name, or its parent's for `seed-N` directories)."""
    from genzoo.train.checkpoint import latest_checkpoint
    from genzoo.train.rundir import read_run_config

    if not run_dirs:
        raise GenzooError("no run directories given to --runs")
    dirs = [Path(d) for d in run_dirs]
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise GenzooError("a run directory is given twice to --runs")
    out = _check_common(out, metrics, n_eval)
    groups: dict[str, list[tuple[Path, RunConfig]]] = {}
    for d in dirs:
        cfg = read_run_config(d)  # a missing or foreign directory fails here, before any work
        groups.setdefault(json.dumps(_comparable(cfg, seed=False), sort_keys=True), []).append(
            (d, cfg))
    rows, taken = [], set()
    for members in groups.values():
        members.sort(key=lambda m: m[1].train.seed)
        d = members[0][0]
        label = _dir_name(d.parent.name if re.fullmatch(r"seed-\d+", d.name) else d.name, taken)
        recs = []
        for d, cfg in members:
            ckpt = latest_checkpoint(d)
            step = int(ckpt.name[5:]) if ckpt else 0
            status, message = "ok", ""
            if step != cfg.train.steps:
                status = "unfinished"
                message = f"latest checkpoint at step {step} of {cfg.train.steps}"
            recs.append(_record(d, cfg, status, message, step, metrics, n_eval, options))
        rows.append({"label": label, "dir": label,
                     "config": _comparable(members[0][1], seed=False), "runs": recs})
    meta = {"command": command, "run_dirs": [str(d) for d in dirs], "metrics": list(metrics),
            "n_eval": n_eval, "options": options}
    return _write(rows, out, meta)


# ----------------------------------------------------------------------------- command line

def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="run configs with equal budget and seeds; one comparison")
    p.add_argument("configs", nargs="*", help="PRESET or PRESET:key=value,key=value (each a row)")
    p.add_argument("--runs", nargs="+", metavar="DIR", help="compare existing run directories")
    p.add_argument("--data", help="dataset for every config (default: the presets' own)")
    p.add_argument("--out", required=True, help="comparison directory (runs go in OUT/runs)")
    p.add_argument("--steps", type=int, help="optimisation steps of every run (default 2000)")
    p.add_argument("--seeds", help="comma-separated seeds, each run for every config (default 0)")
    p.add_argument("--metrics", default="", help="comma-separated metric names (default: none)")
    p.add_argument("--n", type=int, help="examples per evaluation (default: the metric's)")
    p.add_argument("--k", type=int, default=500, help="importance samples for VAE likelihoods")
    p.add_argument("--features", help="feature extractor of fid/kid/is/pr: a classifier "
                   "directory or 'inception' (default: the dataset's registered classifier)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every config (a config's own settings win)")


def cmd_compare(args) -> None:
    import shlex

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    tail = ["--out", args.out] + (["--metrics", ",".join(metrics)] if metrics else []) \
        + (["--n", str(args.n)] if args.n is not None else []) + ["--k", str(args.k)]
    if args.runs:
        if args.configs or args.data or args.steps is not None or args.seeds or args.set:
            raise GenzooError("--runs compares existing runs as they are; CONFIGS, --data, "
                              "--steps, --seeds and --set are for training new ones")
        command = shlex.join(["genzoo", "compare", "--runs", *args.runs, *tail])
        result = compare_runs(args.runs, out=args.out, metrics=metrics, n_eval=args.n,
                              options={"k": args.k, "features": args.features}, command=command)
    else:
        steps = 2000 if args.steps is None else args.steps
        try:
            seeds = [int(s) for s in (args.seeds or "0").split(",") if s.strip()]
        except ValueError:
            raise GenzooError(f"--seeds {args.seeds!r} must be comma-separated integers, "
                              "e.g. 0,1,2") from None
        command = shlex.join(["genzoo", "compare", *args.configs, "--steps", str(steps), "--seeds",
                              ",".join(map(str, seeds)), *(["--data", args.data] if args.data
                                                           else []),
                              *(x for s in args.set for x in ("--set", s)), *tail])
        result = run_comparison(args.configs, data=args.data, out=args.out, steps=steps,
                                seeds=seeds, sets=args.set, metrics=metrics, n_eval=args.n,
                                options={"k": args.k, "features": args.features}, command=command,
                                log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(result["table"], end="")
    for name, path in result["paths"].items():
        print(f"{name:6s} {path}")
