"""Command line: argument parsing only; every command is a thin call into the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genzoo.cli_plot import add_plot, cmd_plot
from genzoo.errors import GenzooError


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model into a run directory")
    p.add_argument("model", help="model or preset name (see `genzoo list`)")
    p.add_argument("--data", help="dataset name (default: the preset's)")
    p.add_argument("--out", required=True, help="run directory (must be new or empty)")
    p.add_argument("--steps", type=int, help="optimisation steps")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--config", help="YAML file with model/data/train sections")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set lr=1e-4 --set latent_dim=2")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest complete checkpoint")
    p.add_argument("--nproc", type=int, help="train data-parallel in N processes on this "
                   "machine (one per GPU, or CPU processes with gloo), as torchrun does")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a run's latest checkpoint")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--out", required=True, help=".png for a picture, .npy for raw samples, "
                   ".wav for audio (X.wav writes X-000.wav, ... and X.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="use EMA weights when the run has them (default: yes)")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a run (writes RUN/eval/metrics.json) or given "
                       "samples (--samples PATH --data DATASET)")
    p.add_argument("run", nargs="?", help="run directory (or use --samples)")
    p.add_argument("--metrics", default="nll",
                   help="comma-separated metric names, e.g. fid,kid,pr (all of them: "
                   "genzoo list)")
    p.add_argument("--n", type=int, help="generated samples for image metrics (default 5000) "
                   "or test examples for nll (default: the whole test split)")
    p.add_argument("--features", help="feature extractor of fid/kid/is/pr/nn: a classifier "
                   "directory (genzoo train classifier) or 'inception' (default: the dataset's "
                   "registered classifier)")
    p.add_argument("--inception-weights", help="local file of the FID Inception weights "
                   "(pt_inception-2015-12-05)")
    p.add_argument("--samples", help="evaluate these images instead of a run: a .npy array "
                   "in [-1, 1] or [0, 255], or a folder of images (needs --data)")
    p.add_argument("--data", help="dataset the --samples are compared with (its train split)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --samples: dataset settings, e.g. --set image_size=32")
    p.add_argument("--out", help="with --samples: directory for metrics.json and pictures")
    p.add_argument("--k", type=int, default=500, help="importance samples for VAE likelihoods")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--checkpoint", type=int, metavar="STEP",
                   help="evaluate the kept checkpoint of this step instead of the latest "
                   "(writes RUN/eval/step-NNNNNN/metrics.json)")
    p.add_argument("--modes-sigma", type=float, default=3.0,
                   help="modes: a sample is high quality within this many std of a mode")
    p.add_argument("--modes-min-count", type=int, default=1,
                   help="modes: high-quality samples a mode needs to count as covered")


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page for a run, or several compared")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (several: a comparison)")
    p.add_argument("--out", help="HTML file (default for one run: RUN/report.html)")
    p.add_argument("--interp", help="interpolation mode for every run: lerp or slerp (default: "
                   "lerp for the VAE, slerp for GANs)")


def _add_translate(sub) -> None:
    p = sub.add_parser("translate", help="translate an image or a folder of images with a "
                       "translation run (cyclegan, pix2pix)")
    p.add_argument("run", help="run directory")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--direction", default="AtoB", help="AtoB (default) or BtoA (cyclegan)")
    p.add_argument("--out", required=True, help="a .png file for one image, a folder for a "
                   "folder")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="use EMA weights when the run has them (default: yes)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genzoo", description="Train, sample, evaluate and compare "
                                "deep generative models.")
    from genzoo import __version__

    p.add_argument("--version", action="version", version=f"genzoo {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="models, presets, datasets and metrics")
    _add_train(sub)
    _add_sample(sub)
    _add_eval(sub)
    add_plot(sub)
    _add_report(sub)
    _add_translate(sub)
    from genzoo.report.compare import add_parser as add_compare

    add_compare(sub)
    return p


# ----------------------------------------------------------------------------- commands

def cmd_list(args) -> None:
    from genzoo.config import load_preset, preset_names
    from genzoo.data import DATASETS, _ensure_loaded
    from genzoo.metrics import all_metrics
    from genzoo.models import MODELS, get_model_class

    get_model_class("vae")
    _ensure_loaded()
    print("models:")
    for name, cls in sorted(MODELS.items()):
        print(f"  {name:16s} {cls.description}")
    print("presets (genzoo train NAME):")
    for name in preset_names():
        print(f"  {name:16s} {load_preset(name).get('description', '')}")
    print("datasets (--data NAME):")
    for name, e in sorted(DATASETS.items()):
        print(f"  {name:16s} {e.description}")
    print("metrics (genzoo eval --metrics NAME):")
    for name, m in sorted(all_metrics().items()):
        print(f"  {name:16s} {m.description}")


def cmd_train(args) -> int:
    from genzoo.config import build_config, parse_set
    from genzoo.train import train
    from genzoo.train.rundir import read_run_config

    if args.model == "classifier":
        return cmd_train_classifier(args)
    if args.resume:
        if args.set or args.config or args.data or args.batch_size is not None \
                or args.seed is not None:
            raise GenzooError("--resume continues a run with its own config; only --steps may "
                              "change (to extend it)")
        cfg = read_run_config(Path(args.out))
        if cfg.model != args.model and args.model not in _preset_models(cfg.model):
            raise GenzooError(f"{args.out!r} holds a {cfg.model!r} run, not {args.model!r}")
        if args.steps is not None:
            from genzoo.train.checkpoint import latest_checkpoint

            ckpt = latest_checkpoint(Path(args.out))
            done = int(ckpt.name.split("-")[1]) if ckpt else 0
            if args.steps < done:
                raise GenzooError(f"--steps {args.steps} is below the run's latest checkpoint "
                                  f"(step {done}); give a larger number to extend the run")
            cfg.train.steps = args.steps
        cfg.check()
    else:
        overrides = [(k, v) for k, v in [("data.name", args.data), ("train.steps", args.steps),
                                          ("train.batch_size", args.batch_size),
                                          ("train.seed", args.seed)] if v is not None]
        cfg = build_config(args.model, config_file=args.config,
                           overrides=overrides + parse_set(args.set))
    if args.nproc is not None:
        return _launch_train(args, cfg)
    result = train(cfg, args.out, resume=args.resume)
    if result["rank"]:  # under torchrun only rank 0 reports
        return 130 if result["stopped"] else 0
    out = Path(result["run_dir"])
    last = {k: round(v, 4) for k, v in result["last"].items() if isinstance(v, float)}
    state = "stopped early at" if result["stopped"] else "finished at"
    print(f"{cfg.model} {state} step {result['step']} in {result['seconds']:.1f}s: {last}")
    print(f"run directory: {out}")
    samples = sorted((out / "samples").glob("*.png"))
    if samples:
        print(f"latest samples: {samples[-1]}")
    if result["stopped"]:
        import os

        if "GENZOO_NPROC" in os.environ:  # started by --nproc, which says how to continue
            return 130
        how = ("the same torchrun command with --resume" if "WORLD_SIZE" in os.environ else
               f"genzoo train {args.model} --out {args.out} --resume")
        print(f"genzoo: interrupted; continue with: {how}", file=sys.stderr)
        return 130
    return 0


def _launch_train(args, cfg) -> int:
    """--nproc N: check what can be checked here, then start N ranks with torchrun's launcher."""
    import os

    from genzoo.train.dist import launch
    from genzoo.train.rundir import check_new_run_dir

    n = args.nproc
    if "WORLD_SIZE" in os.environ:
        raise GenzooError("--nproc starts torchrun itself; under torchrun leave --nproc out")
    if n < 1:
        raise GenzooError(f"--nproc {n}: give 1 or more processes")
    if cfg.train.batch_size % n:
        raise GenzooError(f"batch_size={cfg.train.batch_size} (the global batch) must be "
                          f"divisible by --nproc {n}")
    if not args.resume:
        check_new_run_dir(Path(args.out))
    argv = list(args.argv)
    # argparse also took an abbreviation (--np 2, --nproc=2)
    i = next(i for i, a in enumerate(argv) if len(a) > 3 and "--nproc".startswith(a.split("=")[0]))
    del argv[i:i + (1 if "=" in argv[i] else 2)]
    rc = launch(n, argv)
    if rc == 130:
        print(f"genzoo: interrupted; continue with: genzoo train {args.model} --out {args.out} "
              f"--resume --nproc {n}", file=sys.stderr)
    return rc


def cmd_train_classifier(args) -> int:
    """`genzoo train classifier --data DATASET --out DIR`: the domain feature extractor."""
    from genzoo.metrics.classifier import train_classifier
    from genzoo.metrics.features import register_classifier

    if args.resume or args.config or args.nproc:
        raise GenzooError("a classifier trains in one process in one go: --resume, --config "
                          "and --nproc do not apply")
    if args.data is None:
        raise GenzooError("genzoo train classifier needs --data DATASET (a labelled image set)")
    from genzoo.config import coerce, parse_set

    types = {"steps": int, "batch_size": int, "seed": int, "lr": float}  # training settings
    kw = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                            ("seed", args.seed)) if v is not None}
    data_items = []
    for k, v in parse_set(args.set):
        if k in types:
            kw[k] = coerce(v, types[k], k)
        else:
            data_items.append(f"{k}={v}")
    data_cfg = _data_config(args.data, data_items)
    rec = train_classifier(data_cfg, args.out, **kw)
    register_classifier(data_cfg.name, args.out)
    print(f"classifier {rec['name']}: test accuracy {100 * rec['test_accuracy']:.2f}% on "
          f"{rec['n_test']} test images (train {100 * rec['train_accuracy']:.2f}%), "
          f"{rec['seconds']}s")
    print(f"wrote {args.out}; it is now the default --features for {data_cfg.name}")
    return 0


def _preset_models(model: str) -> set[str]:
    from genzoo.config import load_preset, preset_names

    return {n for n in preset_names() if load_preset(n).get("model", {}).get("name") == model}


def cmd_sample(args) -> None:
    from genzoo.train.rundir import load_run
    from genzoo.viz.grid import write_samples_file

    if args.n < 1:
        raise GenzooError(f"--n {args.n} must be at least 1")
    if Path(args.out).suffix.lower() not in (".png", ".npy", ".wav"):
        raise GenzooError(f"--out {args.out!r} must end in .png (picture), .npy (raw samples) "
                          "or .wav (audio runs)")
    model, cfg, info = load_run(args.run, ema=args.ema)
    path = write_samples_file(model, cfg, args.out, n=args.n, seed=args.seed)
    if Path(args.out).suffix.lower() == ".wav":  # X.wav -> X-000.wav ... and the picture X.png
        stem = Path(args.out).with_suffix("")
        print(f"wrote {args.n} samples from {info} to {stem}-000.wav .. "
              f"{stem.name}-{args.n - 1:03d}.wav and {path}")
    else:
        print(f"wrote {args.n} samples from {info} to {path}")


def cmd_eval(args) -> None:
    from genzoo.metrics import evaluate, evaluate_samples

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    options = {"k": args.k, "modes_sigma": args.modes_sigma,
               "modes_min_count": args.modes_min_count, "features": args.features,
               "inception_weights": args.inception_weights}
    common = dict(n=args.n, seed=args.seed, batch_size=args.batch_size, options=options)
    if args.samples is not None:
        if args.run is not None:
            raise GenzooError("give a run directory or --samples, not both")
        if args.data is None:
            raise GenzooError("--samples needs --data DATASET (the reference images)")
        if args.checkpoint is not None:
            raise GenzooError("--checkpoint applies to a run directory, not to --samples")
        data_cfg = _data_config(args.data, args.set)
        results = evaluate_samples(args.samples, data_cfg, names, out=args.out, **common)
    else:
        if args.run is None:
            raise GenzooError("give a run directory, or --samples PATH --data DATASET")
        for flag, value in (("--data", args.data), ("--out", args.out), ("--set", args.set)):
            if value:
                raise GenzooError(f"{flag} applies to --samples only; a run evaluates against "
                                  "its own dataset and writes RUN/eval/metrics.json")
        results = evaluate(args.run, names, ema=args.ema, step=args.checkpoint, **common)
    print(format_metrics(results["metrics"]))
    if results["path"]:
        print(f"wrote {results['path']}")


def format_metrics(metrics: dict) -> str:
    """A plain table, one line per number: metric, key, value."""
    lines = []
    for name, vals in metrics.items():
        for k, v in vals.items():
            if k in ("checkpoint",) or (isinstance(v, str) and k.startswith("panel_")):
                continue
            lines.append(f"{name:8s} {k:28s} {v:.6g}" if isinstance(v, float) else
                         f"{name:8s} {k:28s} {v}")
    return "\n".join(lines)


def _data_config(name: str, items: list[str]):
    from genzoo.config import coerce_dataclass, parse_set
    from genzoo.data import DataConfig

    values = {k.removeprefix("data."): v for k, v in parse_set(items)}
    return coerce_dataclass(DataConfig, {"name": name, **values}, "--set")


def cmd_report(args) -> None:
    from genzoo.report.run import write_report

    print(f"wrote {write_report(args.runs, args.out, interp=args.interp)}")


def cmd_translate(args) -> None:
    from genzoo.translate import translate_files

    res = translate_files(args.run, args.input, args.direction, args.out, ema=args.ema)
    skipped = f" ({res['skipped']} unreadable files skipped)" if res["skipped"] else ""
    where = res["written"][0] if len(res["written"]) == 1 else args.out
    n = len(res["written"])
    print(f"translated {n} image{'s' if n != 1 else ''} {args.direction} with {res['info']} to "
          f"{where}{skipped}")


def cmd_compare(args) -> None:
    from genzoo.report.compare import cmd_compare as run

    run(args)


COMMANDS = {"list": cmd_list, "train": cmd_train, "sample": cmd_sample, "eval": cmd_eval,
            "plot": cmd_plot, "compare": cmd_compare, "report": cmd_report,
            "translate": cmd_translate}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc passes on
    try:
        rc = COMMANDS[args.command](args)
    except GenzooError as e:
        print(f"genzoo: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genzoo: interrupted", file=sys.stderr)
        return 130
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
