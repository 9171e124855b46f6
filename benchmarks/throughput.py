"""genzoo's DCGAN training against the plain PyTorch loop people would write, side by side.

Both loops train the *same* networks (genzoo's DCGAN generator and discriminator, built from one
config and one seed), with the same loss (non-saturating BCE), optimizers (Adam 2e-4, 0.5,
0.999), batch (64) and data (mnist5k padded to 32x32x1, or resized to 64x64x3). The plain loop is
the well-known DCGAN reference loop: a DataLoader over the images, D on real and on detached
fakes, then G through D on the same fakes. genzoo's loop is `genzoo.train.train` with logging,
sampling and checkpoints pushed past the end (pure training), and once more at the default
intervals to measure their overhead. Each measurement runs in a fresh subprocess, so peak memory
(max RSS) belongs to one loop. It also prints the achieved GFLOP/s (FLOPs of one training step
counted by torch.utils.flop_counter) as a fraction of this machine's fp32 matmul peak, measured
in the same run.

    python benchmarks/throughput.py [--steps 40] [--sizes 32,64] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

DEFAULTS = {"log_every": 50, "sample_every": 250, "checkpoint_every": 1000}  # dcgan preset


def _dcgan_cfg(size: int, steps: int, *, event: str | None = None):
    from genzoo.config import build_config

    over = [("data.name", "mnist5k"), ("train.steps", steps), ("train.batch_size", 64),
            ("data.image_size", size), ("data.resize", "pad" if size == 32 else "bilinear"),
            ("train.progress", "none")]
    if size == 64:
        over.append(("data.channels", 3))
    # pure training: no log line, picture or checkpoint before the end; with `event`, that one
    # happens at every step (to measure its cost)
    over += [(f"train.{k}", 1 if k == event else 10**9) for k in DEFAULTS]
    return build_config("dcgan", overrides=over)


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_genzoo(size: int, steps: int, warmup: int, event: str | None = None) -> dict:
    from genzoo.train import train

    cfg = _dcgan_cfg(size, warmup + steps, event=event)
    with tempfile.TemporaryDirectory() as d:
        # warm-up run (allocator, kernels), then the timed one in the same process
        train(_dcgan_cfg(size, warmup), f"{d}/warm")
        t = time.perf_counter()
        train(cfg, f"{d}/run")
        dt = time.perf_counter() - t
    return {"images_per_s": 64 * (warmup + steps) / dt, "seconds": dt}


def _networks(size: int):
    import torch

    from genzoo.data import load_dataset
    from genzoo.models import build_model

    cfg = _dcgan_cfg(size, 1)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    model = build_model("gan", cfg.model_cfg, data.spec)
    return model.generator, model.discriminator, data, cfg.model_cfg.nz


def run_plain(size: int, steps: int, warmup: int) -> dict:
    import torch
    from torch import nn

    G, D, data, nz = _networks(size)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.to_float(data.x)),
                                         batch_size=64, shuffle=True, drop_last=True)
    crit = nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real):
        b = real.size(0)
        ones, zeros = torch.ones(b), torch.zeros(b)
        D.zero_grad()
        err_real = crit(D(real).view(-1), ones)
        fake = G(torch.randn(b, nz))
        err_fake = crit(D(fake.detach()).view(-1), zeros)
        (err_real + err_fake).backward()
        opt_d.step()
        G.zero_grad()
        crit(D(fake).view(-1), ones).backward()
        opt_g.step()

    it = iter(loader)

    def batch():
        nonlocal it
        try:
            return next(it)[0]
        except StopIteration:
            it = iter(loader)
            return next(it)[0]

    for _ in range(warmup):
        step(batch())
    t = time.perf_counter()
    for _ in range(steps):
        step(batch())
    dt = time.perf_counter() - t
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step(batch())
    return {"images_per_s": 64 * steps / dt, "seconds": dt, "flops_per_step": fc.get_total_flops()}


def matmul_peak() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t))
    return best / 1e9


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.what == "plain":
        out = run_plain(args.size, args.steps, args.warmup)
    elif args.what == "peak":
        out = {"gflops": matmul_peak()}
    elif args.what == "genzoo":
        out = run_genzoo(args.size, args.steps, args.warmup)
    else:  # one of DEFAULTS at every step
        out = run_genzoo(args.size, args.steps, args.warmup, event=args.what)
    out["max_rss_mib"] = _rss_mib()
    print("RESULT " + json.dumps(out))


def measure(what: str, size: int, a) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--size", str(size), "--steps",
           str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("RESULT ", 1)[1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--sizes", default="32,64")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--child")
    p.add_argument("--size", type=int, default=32)
    a = p.parse_args()
    if a.child:
        a.what = a.child
        return child(a)
    peak = measure("peak", 32, a)["gflops"]
    print(f"fp32 matmul peak (2048^2, {a.threads} threads): {peak:.1f} GFLOP/s")
    for size in (int(s) for s in a.sizes.split(",")):
        plain = measure("plain", size, a)
        gz = measure("genzoo", size, a)
        t_step = 64 / gz["images_per_s"]  # seconds per step, pure training
        cost = {k: 64 / measure(k, size, a)["images_per_s"] - t_step for k in DEFAULTS}
        shape = f"{size}x{size}x{1 if size == 32 else 3}"
        gflops = plain["flops_per_step"] * plain["images_per_s"] / 64 / 1e9
        print(f"DCGAN {shape}, batch 64, {a.steps} timed steps:")
        print(f"  plain loop   {plain['images_per_s']:8.1f} img/s  max RSS "
              f"{plain['max_rss_mib']:.0f} MiB  {gflops:.1f} GFLOP/s = {gflops / peak:.2f} of peak")
        print(f"  genzoo       {gz['images_per_s']:8.1f} img/s  "
              f"max RSS {gz['max_rss_mib']:.0f} MiB")
        print(f"  genzoo / plain: {gz['images_per_s'] / plain['images_per_s']:.2f}x  (target 1.2x)")
        frac = sum(cost[k] / DEFAULTS[k] for k in DEFAULTS) / t_step
        each = ", ".join(f"{k.split('_')[0]} {1000 * v:.0f} ms" for k, v in cost.items())
        print(f"  cost per event: {each}; at the default intervals "
              f"({', '.join(f'{k}={v}' for k, v in DEFAULTS.items())}): {100 * frac:.1f}% of "
              "training time (target < 5%)")


if __name__ == "__main__":
    main()
