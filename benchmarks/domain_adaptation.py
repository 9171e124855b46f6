"""Domain-adaptation table: mnist5k -> mnist-m, every dann variant, several seeds.

Trains `genzoo train dann --set variant=V --seed S` for each variant and seed (the dann preset:
the paper's network, SGD with momentum 0.9, mu_0 = 0.01 annealed by lr_decay=inv, lambda_p
schedule over the whole run), scores each with `genzoo eval RUN --metrics target-accuracy` on
the test splits (500 + 500 images), and prints one markdown table of target (and source) test
accuracy, mean and sample standard deviation over the seeds.

    python benchmarks/domain_adaptation.py --steps 5000 --seeds 0,1,2 --out runs/da

A run directory that already holds a finished run is scored again, not retrained, so the
script can be stopped and started. The table is also written to OUT/table.md and the raw
numbers to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from genzoo.config import build_config
from genzoo.metrics import evaluate
from genzoo.train import train
from genzoo.train.checkpoint import latest_checkpoint

VARIANTS = ("source-only", "grl", "flip", "uniform", "target-only")
LABELS = {"source-only": "source only (lower bound)", "grl": "DANN (gradient reversal)",
          "flip": "flipped labels (ADDA-style)", "uniform": "domain confusion (uniform)",
          "target-only": "train on target (upper bound)"}


def run_one(out: Path, variant: str, seed: int, steps: int, threads: int,
            extra: list[tuple[str, str]]) -> dict:
    done = latest_checkpoint(out)
    if done is None or int(done.name.split("-")[1]) < steps:
        overrides = [("model.variant", variant), ("train.seed", seed), ("train.steps", steps),
                     ("model.schedule_steps", steps), ("train.threads", threads),
                     ("train.progress", "none"), ("train.log_every", 100),
                     ("train.checkpoint_every", steps), *extra]
        cfg = build_config("dann", overrides=overrides)
        t0 = time.perf_counter()
        train(cfg, out, resume=out.exists())
        print(f"trained {out} in {time.perf_counter() - t0:.0f}s", flush=True)
    rec = evaluate(out, ["target-accuracy"])["metrics"]["target-accuracy"]
    return {"variant": variant, "seed": seed, "source": rec["source_accuracy"],
            "target": rec["target_accuracy"], "run": str(out)}


def mean_sd(rows: list[dict], key: str) -> str:
    xs = [r[key] for r in rows]
    sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
    return f"{statistics.mean(xs):.3f} +- {sd:.3f}"


def table(results: list[dict], steps: int) -> str:
    lines = ["| method (variant) | target accuracy, mnist-m test | source accuracy, mnist5k "
             "test | seeds | steps |", "| --- | --- | --- | --- | --- |"]
    for v in VARIANTS:
        rows = [r for r in results if r["variant"] == v]
        if rows:
            lines.append(f"| {LABELS[v]} (`{v}`) | {mean_sd(rows, 'target')} | "
                         f"{mean_sd(rows, 'source')} | {len(rows)} | {steps} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/da")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every run, e.g. model.norm=none")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    extra = []
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. model.norm=none")
        extra.append(tuple(item.split("=", 1)))
    results = []
    for seed in seeds:  # seed-major: a stopped script leaves whole seeds of the table
        for v in variants:
            results.append(run_one(out / f"{v}-s{seed}", v, seed, args.steps, args.threads,
                                   extra))
            print(json.dumps(results[-1]), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results, args.steps)
    (out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
