"""WaveNet sampling: the naive loop against Fast WaveNet's queues (Paine et al. 2016,
arXiv:1611.09482), at equal output.

    python benchmarks/wavenet_sampling.py                      # the preset's network, 16k samples
    python benchmarks/wavenet_sampling.py --naive-length 0     # naive measured over all 16k too
    python benchmarks/wavenet_sampling.py --small              # a small net, both at 16k
    python benchmarks/wavenet_sampling.py --run RUN            # a trained run's network

The naive loop recomputes every layer over the receptive field (R inputs) for each new sample,
so once t >= R each of its steps costs the same. When it is too slow to run to the full length,
it runs to --naive-length P (> R) and to R; the steady per-step cost is (time(P) - time(R)) /
(P - R), and the full length is extrapolated as time(P) + (length - P) * that cost. The fast
sampler always runs the full length. Both draw from the same generator; their outputs are
compared sample for sample over the prefix both computed (the uniforms are drawn time-major, so
a shorter run is a prefix of a longer one).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from genzoo.data.base import DataSpec
from genzoo.models.wavenet import WaveNet, WaveNetConfig


def _timed(fn, **kw):
    t = time.perf_counter()
    out = fn(**kw)
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=16000, help="samples to generate")
    p.add_argument("--naive-length", type=int, default=1024,
                   help="samples the naive loop runs (0: the full length); must exceed R")
    p.add_argument("--n", type=int, default=1, help="sequences generated together (batch)")
    p.add_argument("--small", action="store_true",
                   help="a small net (8/16 channels, dilations 1..32, R=64)")
    p.add_argument("--run", help="use this run's network instead of a random one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    if args.run:
        from genzoo.train.rundir import load_run

        model = load_run(args.run)[0]
    else:
        from genzoo.config import load_preset

        cfg = WaveNetConfig(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in load_preset("wavenet")["model"].items() if k != "name"})
        if args.small:
            cfg.residual_channels, cfg.skip_channels, cfg.dilations = 8, 16, (1, 2, 4, 8, 16, 32)
        torch.manual_seed(args.seed)
        model = WaveNet(cfg, DataSpec("audio", (1, args.length), num_classes=4)).eval()
    R, L = model.receptive_field, args.length
    P = L if args.naive_length <= 0 else min(args.naive_length, L)
    if P < L and P <= R:
        raise SystemExit(f"--naive-length {P} must exceed the receptive field R={R}")
    c = model.cfg
    print(f"wavenet: residual {c.residual_channels}, skip {c.skip_channels}, "
          f"{len(model.layers)} layers (dilations {list(c.dilations)} x {c.cycles}), R={R}, "
          f"{c.quant_levels} levels, conditional={bool(model.num_classes)}")
    print(f"batch {args.n}, length {L}, {args.threads} thread(s), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")

    def gen():
        return torch.Generator().manual_seed(args.seed)

    fast, t_fast = _timed(model.sample, n=args.n, generator=gen(), length=L)
    naive, t_naive = _timed(model.sample_naive, n=args.n, generator=gen(), length=P)
    equal = torch.equal(fast[..., :P], naive)
    print(f"fast  (queues, O(layers)/sample):   {L:6d} samples in {t_fast:8.2f} s "
          f"= {1e3 * t_fast / L:7.3f} ms/sample  (measured)")
    if P == L:
        t_full, how = t_naive, "measured"
        print(f"naive (window R, O(R*layers)):      {L:6d} samples in {t_naive:8.2f} s "
              f"= {1e3 * t_naive / L:7.3f} ms/sample  (measured)")
    else:
        _, t_r = _timed(model.sample_naive, n=args.n, generator=gen(), length=R)
        per_step = (t_naive - t_r) / (P - R)
        t_full = t_naive + (L - P) * per_step
        how = f"extrapolated from {P} measured"
        print(f"naive (window R, O(R*layers)):      {P:6d} samples in {t_naive:8.2f} s "
              f"(measured; the first {R} took {t_r:.2f} s, then {1e3 * per_step:.3f} ms/sample)")
        print(f"naive at {L} samples: {t_naive:.2f} + {L - P} x {1e3 * per_step:.3f} ms "
              f"= {t_full:.1f} s  (extrapolated)")
    print(f"speed-up at {L} samples: {t_full / t_fast:.1f}x  (naive {how}, fast measured)")
    print(f"outputs identical over the first {P} samples: {equal}")
    if not equal:
        raise SystemExit("the two samplers disagree")


if __name__ == "__main__":
    main()
