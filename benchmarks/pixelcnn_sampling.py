"""PixelCNN sampling: the naive sampler (the whole network on the whole image for every
sub-pixel) against the default one (the network on the window of rows r-R..r and columns
c-R..c+R that the output at (r, c) can see), side by side, at equal output: both draw from the
same generator and the script asserts that their samples are identical.

    python benchmarks/pixelcnn_sampling.py                       # both presets, untrained
    python benchmarks/pixelcnn_sampling.py --run runs/pixelcnn   # a trained run
    python benchmarks/pixelcnn_sampling.py --n 16 --threads 1

Times are wall-clock and CPU (process) seconds; on a shared machine the CPU seconds of a
one-thread process are the steadier number, and the speed-up is given for both.
"""

from __future__ import annotations

import argparse
import time

import torch

from genzoo.config import build_config
from genzoo.data import load_dataset
from genzoo.models import build_model


def timed(model, n: int, seed: int, naive: bool):
    """Samples, wall seconds, CPU seconds."""
    w, c = time.perf_counter(), time.process_time()
    out = model.sample(n, generator=torch.Generator().manual_seed(seed), naive=naive)
    return out, time.perf_counter() - w, time.process_time() - c


def models(args):
    if args.runs:
        from genzoo.train.rundir import load_run

        for run in args.runs:
            model, _, info = load_run(run)
            yield info, model
        return
    for preset in args.presets.split(","):
        cfg = build_config(preset)
        torch.manual_seed(0)
        spec = load_dataset(cfg.data, "test").spec
        yield f"{preset} (untrained)", build_model(cfg.model, cfg.model_cfg, spec).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", dest="runs", action="append", default=[], help="trained run(s)")
    p.add_argument("--presets", default="pixelcnn,gated-pixelcnn")
    p.add_argument("--n", type=int, default=16, help="samples drawn together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{'model':44s} {'n':>3s} {'naive s (cpu)':>14s} {'fast s (cpu)':>13s} "
          f"{'speed-up wall':>13s} {'cpu':>5s}  equal")
    for name, model in models(a):
        fast, fw, fc = timed(model, a.n, a.seed, naive=False)
        naive, nw, nc = timed(model, a.n, a.seed, naive=True)
        same = torch.equal(fast, naive)
        assert same, f"{name}: the fast sampler's samples differ from the naive sampler's"
        print(f"{name:44s} {a.n:3d} {nw:7.1f} ({nc:5.1f}) {fw:6.1f} ({fc:5.1f}) "
              f"{nw / fw:12.2f}x {nc / fc:4.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
