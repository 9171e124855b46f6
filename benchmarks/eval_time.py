"""How long `genzoo eval --metrics fid,kid,pr` takes on 5,000 generated images (target: under a
minute on the 2-core development machine), with the real-data features computed (cold cache) and
read from the cache (warm), measured side by side in one run. The timed commands are the CLI's,
in fresh processes, so start-up and model loading count.

    python benchmarks/eval_time.py RUN --features CLASSIFIER_DIR [--n 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--features", required=True)
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--metrics", default="fid,kid,pr")
    a = p.parse_args()
    cli = [sys.executable, "-m", "genzoo.cli", "eval", a.run, "--metrics", a.metrics,
           "--n", str(a.n), "--features", a.features]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GENZOO_CACHE": cache}
        cold = timed(cli, env)
        warm = timed(cli, env)
    print(f"genzoo eval --metrics {a.metrics} --n {a.n} on {os.cpu_count()} CPUs")
    print(f"  cold cache (real features computed): {cold:6.1f} s")
    print(f"  warm cache (real features read):     {warm:6.1f} s")
    print(f"  cold / 60 s target: {cold / 60:.2f}   warm / cold: {warm / cold:.2f}")


if __name__ == "__main__":
    main()
