"""DrNet on moving digits, several full runs side by side on one GPU, in a fixed time.

The `drnet` preset (batch 32, 40,000 steps) needs about 100 minutes on one CPU thread. On a GPU
its small networks leave the card mostly idle, so this script trains several variants at once
(one process each) and scores every finished run with the issue's metrics (analogy-accuracy,
pose-error, all 500 test videos). Every run is the preset with the settings named in RUNS; the
schedule's absolute steps (`l1_from`, `swap_from`) move with `steps` so that the last tenth of
every run is its L1 + content-cycle phase, as in the preset.

A run still training at the deadline is stopped (it keeps its checkpoint, resumable with
`genzoo train drnet --out RUN --resume`) and reported without scores. Measured on an H200
(docs/disentangling-video.md): runs at batch 128 made 45 steps a second each with four side
by side, 52 with two, held up by their own CPU threads launching small kernels; six runs at
batches 128-512 shared the card and made 22-27 each: 10,000 steps took about 400 s.
Usage, from the repository root:

    python3 benchmarks/drnet_gpu.py --features runs/clf-mnist5k-14 --out $OUT/drnet \\
        --budget 600 [--only NAME,...] [--device cuda]

`--features`: the 14-px digit classifier of the CPU tables (`genzoo train classifier --data
mnist5k --set image_size=14`); the table goes to OUT/drnet_gpu.md and OUT/drnet_gpu.json.
`--device cpu --scale 0.005` is a smoke run of the script itself on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# name, seed, settings (besides the preset's); --only picks some
WIDE = {"model.channels": 64, "model.content_dim": 128, "lr": 0.001}  # the paper's sizes
RUNS = [
    ("b128-10k", 0, {"batch_size": 128, "steps": 10000}),  # the preset's videos in 1/4 steps
    ("b128-10k-s1", 1, {"batch_size": 128, "steps": 10000}),
    ("b256-10k", 0, {"batch_size": 256, "steps": 10000}),  # twice the videos
    ("b256-10k-s1", 1, {"batch_size": 256, "steps": 10000}),
    ("b128-16k", 0, {"batch_size": 128, "steps": 16000}),  # 1.6 times, in more steps
    ("b512-10k", 0, {"batch_size": 512, "steps": 10000}),  # four times
    ("b512-10k-s1", 1, {"batch_size": 512, "steps": 10000}),
    ("b512-10k-s2", 2, {"batch_size": 512, "steps": 10000}),
    ("b256-10k-s2", 2, {"batch_size": 256, "steps": 10000}),
    ("b256-10k-wide", 0, {"batch_size": 256, "steps": 10000, **WIDE}),
    ("b128-20k", 0, {"batch_size": 128, "steps": 20000}),
    ("b128-20k-s1", 1, {"batch_size": 128, "steps": 20000}),
    ("b128-30k", 0, {"batch_size": 128, "steps": 30000}),
    ("b128-20k-wide", 0, {"batch_size": 128, "steps": 20000, **WIDE}),
]

# what is still to be measured: batch 512 to the end, three seeds (docs/disentangling-video.md)
DEFAULT = ["b512-10k", "b512-10k-s1", "b512-10k-s2"]


def settings(extra: dict, scale: float) -> dict:
    """The preset's schedule moved with `steps`: L1 and the content cycle in the last tenth."""
    s = dict(extra)
    steps = max(20, int(s.get("steps", 40000) * scale))
    s["steps"] = steps
    s["model.l1_from"] = s["model.swap_from"] = int(steps * 0.9)
    return s


def last_step(run: Path) -> int:
    """The last logged step (metrics.jsonl: every 100 steps), or the last checkpoint's."""
    from genzoo.train.checkpoint import list_checkpoints

    ckpts = [step for step, _ in list_checkpoints(run / "checkpoints")]
    try:
        with open(run / "metrics.jsonl", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return max([int(json.loads(line)["step"])] + ckpts)
        except (ValueError, KeyError):
            continue
    return max([0] + ckpts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=400, help="seconds for all training")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", type=float, default=1.0, help="steps x this (smoke runs)")
    ap.add_argument("--only", default=",".join(DEFAULT),
                    help=f"comma-separated run names of RUNS (default {','.join(DEFAULT)})")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads per run")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    names = args.only.split(",")
    unknown = sorted(set(names) - {r[0] for r in RUNS})
    if unknown:
        ap.error(f"unknown run(s) {', '.join(unknown)}; RUNS has {', '.join(r[0] for r in RUNS)}")
    runs = [r for r in RUNS if r[0] in names]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.time()
    deadline = t0 + args.budget
    procs = {}
    for name, seed, extra in runs:
        s = settings(extra, args.scale)
        cmd = [sys.executable, "-m", "genzoo", "train", "drnet", "--out", str(out / "runs" / name),
               "--seed", str(seed), "--set", f"device={args.device}", "--set",
               f"threads={args.threads}", "--set", "progress=none", "--set", "keep_last=2"]
        for k, v in s.items():
            cmd += ["--set", f"{k}={v}"]
        log = open(out / f"{name}.log", "w")
        procs[name] = {"p": subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                       "steps": s["steps"], "settings": s, "seed": seed, "seen": [],
                       "start": time.time()}
        print(f"started {name}: {' '.join(cmd[3:])}", flush=True)
    last_note = t0
    while any(r["p"].poll() is None for r in procs.values()):
        time.sleep(5)
        now = time.time()
        alive = [n for n, r in procs.items() if r["p"].poll() is None]
        for r in procs.values():
            if r.get("end") is None and r["p"].poll() is not None:
                r["end"] = now  # within the 5-s poll
        for n in alive:
            procs[n]["seen"].append((now, last_step(out / "runs" / n)))
        if now >= deadline:
            for n in alive:
                procs[n]["p"].send_signal(signal.SIGTERM)  # it checkpoints and stops
                print(f"{now - t0:.0f}s: deadline, stopped {n}", flush=True)
            break
        if now - last_note >= 60:  # speeds, for the log (steps a second over the last minute)
            last_note = now
            speed = []
            for n in alive:
                seen = [(t, st) for t, st in procs[n]["seen"] if t >= now - 60]
                (ta, sa), (tb, sb) = seen[0], seen[-1]
                speed.append(f"{n} {sb} ({(sb - sa) / max(tb - ta, 1e-9):.0f}/s)")
            print(f"{now - t0:.0f}s: " + ", ".join(speed), flush=True)
    for r in procs.values():
        r["p"].wait()
        r["wall"] = (r.get("end") or time.time()) - r["start"]
    print(f"training done after {time.time() - t0:.0f}s", flush=True)

    evals = {}
    for name, r in procs.items():
        reached = last_step(out / "runs" / name)
        r["reached"] = reached
        if reached < r["steps"]:
            continue
        cmd = [sys.executable, "-m", "genzoo", "eval", str(out / "runs" / name), "--metrics",
               "analogy-accuracy,pose-error", "--features", args.features]
        evals[name] = subprocess.Popen(cmd, stdout=open(out / f"{name}.eval.log", "w"),
                                       stderr=subprocess.STDOUT, env=env)
    rows = []
    for name, r in procs.items():
        row = {"run": name, "seed": r["seed"], "settings": r["settings"], "steps": r["steps"],
               "reached": r["reached"], "stopped": r["reached"] < r["steps"]}
        if name in evals:
            evals[name].wait()
            path = out / "runs" / name / "eval" / "metrics.json"
            if path.is_file():
                row["metrics"] = json.loads(path.read_text())
        train_log = (out / f"{name}.log").read_text().splitlines()
        row["train_tail"], row["wall_s"] = train_log[-3:], round(r["wall"], 1)
        rows.append(row)
    (out / "drnet_gpu.json").write_text(json.dumps(rows, indent=1))
    lines = ["| run | seed | settings | steps reached | analogy_accuracy | pose_digit_rate | "
             "pose_error_px | wall |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        m = row.get("metrics", {})
        flat = {k.split("/")[-1]: v for k, v in _flat(m).items()}
        s = ", ".join(f"{k}={v}" for k, v in row["settings"].items())
        acc, leak = _cell(flat, "analogy_accuracy", True), _cell(flat, "pose_digit_rate", True)
        err = _cell(flat, "pose_error_px")
        lines.append(f"| {row['run']} | {row['seed']} | {s} | {row['reached']}/{row['steps']} | "
                     f"{acc} | {leak} | {err} | {row['wall_s']:.0f} s |")
    (out / "drnet_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _cell(flat: dict, key: str, pct: bool = False) -> str:
    if key not in flat:
        return "-"
    return f"{100 * flat[key]:.1f}%" if pct else f"{flat[key]:.2f}"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
