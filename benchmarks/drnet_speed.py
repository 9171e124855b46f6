"""DrNet training speed on a CPU: videos per second at several batch sizes and thread counts, with
and without channels_last (NHWC) convolutions, measured side by side in one run.

Every measurement is `genzoo train drnet` (the preset's networks and data: 32x32 single-digit
videos of 10 frames) in a fresh subprocess for `--steps` steps; the speed is the videos/s that the
loop logs over its second half (`images_per_s` of metrics.jsonl counts batch items, here videos),
so building the model and the first steps are not counted. The settings alternate `--repeats`
times and the medians are printed, with each setting's ratio to the first one of its batch size.

    python benchmarks/drnet_speed.py [--batches 32,256] [--threads 1,2] [--steps 60] [--repeats 2]

Measured (docs/disentangling-video.md): on the 2-core development machine channels_last made
batch 32 on one thread 1.18x faster and batch 256 on two threads 1.10x (two repeats each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def measure(batch: int, threads: int, channels_last: bool, steps: int) -> float:
    """Videos/s over the second half of a fresh `steps`-step run."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "genzoo", "train", "drnet", "--out", f"{d}/run",
               "--steps", str(steps), "--set", f"batch_size={batch}",
               "--set", f"threads={threads}",
               "--set", f"channels_last={str(channels_last).lower()}",
               "--set", f"log_every={steps // 2}", "--set", "progress=none",
               "--set", f"sample_every={10 * steps}", "--set", f"checkpoint_every={10 * steps}",
               "--set", "device=cpu"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        rows = [json.loads(line) for line in open(f"{d}/run/metrics.jsonl")]
    return float(rows[-1]["images_per_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    if a.steps < 4 or a.repeats < 1:
        ap.error("--steps must be at least 4 and --repeats at least 1")
    grid = [(b, t, cl) for b in map(int, a.batches.split(","))
            for t in map(int, a.threads.split(",")) for cl in (False, True)]
    speeds: dict[tuple, list[float]] = {g: [] for g in grid}
    for r in range(a.repeats):
        for g in grid:  # alternate the settings so that machine noise hits them all
            speeds[g].append(measure(*g, a.steps))
            print(f"repeat {r + 1}: batch {g[0]} threads {g[1]} channels_last {g[2]}: "
                  f"{speeds[g][-1]:.0f} videos/s", flush=True)
    print("\n| batch | threads | channels_last | videos/s (median) | vs. batch's first row |")
    print("| --- | --- | --- | --- | --- |")
    first: dict[int, float] = {}
    for (b, t, cl), v in speeds.items():
        med = statistics.median(v)
        first.setdefault(b, med)
        print(f"| {b} | {t} | {str(cl).lower()} | {med:.0f} | {med / first[b]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
