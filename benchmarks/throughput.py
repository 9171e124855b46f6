"""genzoo's DCGAN training against the plain PyTorch loop people would write, side by side.

Both loops train the *same* networks (genzoo's DCGAN generator and discriminator, built from one
config and one seed), with the same loss (non-saturating BCE), optimizers (Adam 2e-4, 0.5,
0.999), batch (64) and data (mnist5k padded to 32x32x1, or resized to 64x64x3). The plain loop
is the well-known DCGAN reference loop: a DataLoader over the images, D on real and on detached
fakes, then G through D on the same fakes. genzoo's loop is `genzoo.train.train`, measured as

- `genzoo`: the dcgan preset as it is (G's step draws fresh noise: one more G forward);
- `genzoo fast`: the same with the speed switches that keep the maths of the reference loop:
  `model.reuse_fakes=true` (G's step on the fakes D just saw, as the plain loop does) and
  `train.channels_last=true` (NHWC convolutions); `--compile` adds `train.compile=true`.

Images/s are those of a steady window: the plain loop times `--steps` steps after warm-up; genzoo
logs images/s over its second logging window of `--steps` steps (after a first one of warm-up),
so neither counts building the model, loading data, or the final checkpoint. Every
measurement runs in a fresh subprocess (peak memory = that process's max RSS, or the GPU's peak
allocation), and the loops alternate `--repeats` times; the medians are printed.

The script also prints the achieved GFLOP/s (FLOPs of one reference step, counted by
torch.utils.flop_counter, times steps/s) as a fraction of this machine's fp32 matmul peak
measured in the same run, and the cost of genzoo's logging, sampling and checkpointing at the
preset's intervals (timed by the loop itself in a run with all three at every step).

    python benchmarks/throughput.py [--steps 30] [--sizes 32,64] [--threads 2] [--repeats 3]
    python benchmarks/throughput.py --device cuda --amp none,bf16      # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULTS = {"log_every": 50, "sample_every": 250, "checkpoint_every": 1000}  # dcgan preset
FAST = [("model.reuse_fakes", True), ("train.channels_last", True)]


def _dcgan_cfg(size: int, steps: int, *, device: str = "cpu", amp: str = "none",
               event: str | None = None, extra=()):
    from genzoo.config import build_config

    over = [("data.name", "mnist5k"), ("train.steps", steps), ("train.batch_size", 64),
            ("data.image_size", size), ("data.resize", "pad" if size == 32 else "bilinear"),
            ("train.progress", "none"), ("train.device", device), ("train.amp", amp)]
    if size == 64:
        over.append(("data.channels", 3))
    # no log line, picture or checkpoint before the end; with event="all", all at every step
    over += [(f"train.{k}", 1 if event == "all" else 10**9) for k in DEFAULTS]
    return build_config("dcgan", overrides=over + list(extra))


def _peak_mib(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_genzoo(a, extra=(), event: str | None = None) -> dict:
    """Steady images/s from genzoo's own log (window 2 of 2), and the whole run's seconds."""
    from genzoo.config import apply_overrides
    from genzoo.train import train

    cfg = _dcgan_cfg(a.size, 2 * a.steps, device=a.device, amp=a.amp, event=event, extra=extra)
    if event is None:
        apply_overrides(cfg, [("train.log_every", a.steps)])
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        res = train(cfg, f"{d}/run")
        dt = time.perf_counter() - t
        rows = [json.loads(line) for line in open(f"{d}/run/metrics.jsonl")]
    ips = rows[-1]["images_per_s"] if event is None else float("nan")
    return {"images_per_s": ips, "seconds": dt, "overhead": res["overhead_seconds"]}


def _networks(size: int, device: str):
    import torch

    from genzoo.data import load_dataset
    from genzoo.models import build_model

    cfg = _dcgan_cfg(size, 1)
    data = load_dataset(cfg.data, "train")
    torch.manual_seed(0)
    model = build_model("gan", cfg.model_cfg, data.spec).to(device)
    return model.generator, model.discriminator, data, cfg.model_cfg.nz


def run_plain(a) -> dict:
    import torch
    from torch import nn

    dev = torch.device(a.device)
    G, D, data, nz = _networks(a.size, a.device)
    images = data.to_float(data.x).to(dev)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images),
                                         batch_size=64, shuffle=True, drop_last=True)
    crit = nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.amp == "bf16")

    def step(real):
        b = real.size(0)
        ones, zeros = torch.ones(b, device=dev), torch.zeros(b, device=dev)
        D.zero_grad()
        with autocast:
            err_real = crit(D(real).view(-1), ones)
            fake = G(torch.randn(b, nz, device=dev))
            err_fake = crit(D(fake.detach()).view(-1), zeros)
        (err_real + err_fake).backward()
        opt_d.step()
        G.zero_grad()
        with autocast:
            err_g = crit(D(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()

    it = iter(loader)

    def batch():
        nonlocal it
        try:
            return next(it)[0]
        except StopIteration:
            it = iter(loader)
            return next(it)[0]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.steps):  # warm-up as long as genzoo's first window
        step(batch())
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):
        step(batch())
    sync()
    dt = time.perf_counter() - t
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step(batch())
    return {"images_per_s": 64 * a.steps / dt, "flops_per_step": fc.get_total_flops()}


def matmul_peak(device: str) -> float:
    import torch

    n = 4096 if device.startswith("cuda") else 2048
    x, y = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = 0.0
    for _ in range(7):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        x @ y
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best / 1e9


def child(a) -> None:
    import torch

    torch.set_num_threads(a.threads)
    if a.what == "plain":
        out = run_plain(a)
    elif a.what == "peak":
        out = {"gflops": matmul_peak(a.device)}
    elif a.what == "genzoo":
        out = run_genzoo(a)
    elif a.what == "fast":
        out = run_genzoo(a, FAST + ([("train.compile", True)] if a.compile else []))
    else:  # "events": a log line, picture and checkpoint at every step
        out = run_genzoo(a, event="all")
    out["peak_mib"] = _peak_mib(a.device)
    print("RESULT " + json.dumps(out))


def measure(what: str, size: int, amp: str, a) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--size", str(size), "--steps",
           str(a.steps), "--threads", str(a.threads), "--device", a.device, "--amp", amp]
    if a.compile:
        cmd.append("--compile")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{what} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.split("RESULT ", 1)[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30, help="timed steps (after as many warm-up)")
    p.add_argument("--sizes", default="32,64")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3, help="alternations of the loops")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none", help="comma list of none,bf16 (bf16 autocast)")
    p.add_argument("--compile", action="store_true", help="genzoo fast also compiles")
    p.add_argument("--no-overhead", action="store_true", help="skip the logging-cost runs")
    p.add_argument("--child")
    p.add_argument("--size", type=int, default=32)
    a = p.parse_args()
    if a.child:
        a.what = a.child
        return child(a)
    where = f"{a.threads} threads" if a.device == "cpu" else a.device
    peaks = [measure("peak", 32, "none", a)["gflops"]]
    for size in (int(s) for s in a.sizes.split(",")):
        for amp in a.amp.split(","):
            runs: dict[str, list[dict]] = {"plain": [], "genzoo": [], "fast": []}
            for _ in range(a.repeats):  # alternate, so a busy moment hits every loop alike
                for what in runs:
                    runs[what].append(measure(what, size, amp, a))
                peaks.append(measure("peak", 32, "none", a)["gflops"])
            peak = max(peaks)  # the best of the matmul runs interleaved with the loops
            print(f"fp32 matmul peak ({where}, best of {len(peaks)} so far): {peak:.1f} GFLOP/s")
            med = {w: statistics.median(r["images_per_s"] for r in rs) for w, rs in runs.items()}
            mem = {w: max(r["peak_mib"] for r in rs) for w, rs in runs.items()}
            if amp == "none" or "none" not in a.amp.split(","):
                base_ips = med["genzoo"]  # steady genzoo step, for the bookkeeping share
            flops = runs["plain"][0]["flops_per_step"]
            shape = f"{size}x{size}x{1 if size == 32 else 3}"
            print(f"DCGAN {shape}, batch 64, {a.steps} timed steps, amp={amp}, median of "
                  f"{a.repeats}:")
            for w, label in (("plain", "plain loop "), ("genzoo", "genzoo     "),
                             ("fast", "genzoo fast")):
                gf = flops * med[w] / 64 / 1e9
                spread = ", ".join(f"{r['images_per_s']:.1f}" for r in runs[w])
                print(f"  {label} {med[w]:8.1f} img/s ({spread})  peak mem {mem[w]:.0f} MiB  "
                      f"{gf:.1f} GFLOP/s = {gf / peak:.2f} of peak")
            print(f"  genzoo / plain: {med['genzoo'] / med['plain']:.2f}x;  genzoo fast / plain:"
                  f" {med['fast'] / med['plain']:.2f}x  (target 1.2x)")
        if a.no_overhead:
            continue
        # one run with a log line, a sample picture and a checkpoint at every step; the loop
        # times each kind itself, so the costs do not depend on the machine's load elsewhere
        ev = measure("events", size, "none", a)
        n_steps = 2 * a.steps
        cost = {k: ev["overhead"][k.split("_")[0]] / n_steps for k in DEFAULTS}
        t_step = 64 / base_ips  # a training step of the timed window
        frac = sum(cost[k] / DEFAULTS[k] for k in DEFAULTS) / t_step
        each = ", ".join(f"{k.split('_')[0]} {1000 * v:.0f} ms" for k, v in cost.items())
        print(f"  cost per event: {each} (a step: {1000 * t_step:.0f} ms); at the preset's "
              f"intervals ({', '.join(f'{k}={v}' for k, v in DEFAULTS.items())}): "
              f"{100 * frac:.2f}% of "
              "training time (target < 5%)")


if __name__ == "__main__":
    main()
