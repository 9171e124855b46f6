"""VAE quality bar: genzoo's VAE preset vs the textbook MLP VAE, same data, same step budget.

The textbook model is written here in plain PyTorch, independently of genzoo's VAE: the
784-400-20 MLP VAE of Kingma & Welling (2013) as in the PyTorch examples (ReLU, sigmoid/Bernoulli
decoder, Adam 1e-3, batch 128). Both see the same dynamically binarised mnist5k training batches
(genzoo's data pipeline) for the same number of steps, and both are scored with the same
importance-sampling estimator (k samples) on the test split binarised once with a fixed seed.

    python benchmarks/vae_nll.py --steps 5000 --k 500 --out runs/bench-vae

prints both test NLLs in nats and their difference. genzoo's own number is also written by
`genzoo eval RUN --metrics nll --k 500` (RUN/eval/metrics.json).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.config import build_config
from genzoo.data import DataConfig, load_dataset
from genzoo.metrics import evaluate
from genzoo.train import train


class TextbookVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def loss(self, x):  # x in {0, 1}, (B, 784)
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        bce = F.binary_cross_entropy_with_logits(self.logits(z), x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / x.shape[0]

    @torch.no_grad()
    def log_prob(self, x, k, g):
        mu, logvar = self.encode(x)
        std = (0.5 * logvar).exp()
        ws = []
        for s in range(0, k, 100):
            c = min(100, k - s)
            eps = torch.randn(c, *mu.shape, generator=g)
            z = mu + eps * std
            log_q = (-0.5 * (eps ** 2 + math.log(2 * math.pi)) - 0.5 * logvar).sum(-1)
            log_p = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(-1)
            lg = self.logits(z)
            log_px = -F.binary_cross_entropy_with_logits(lg, x.expand_as(lg), reduction="none")\
                .sum(-1)
            ws.append(log_px + log_p - log_q)
        return torch.logsumexp(torch.cat(ws), 0) - math.log(k)


def textbook(steps: int, k: int, seed: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    data = load_dataset(DataConfig(name="mnist5k", binarize="dynamic"), "train")
    model = TextbookVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for step in range(steps):
        x = (data.batch(step, 128, seed)["x"].view(-1, 784) + 1) / 2  # {-1,1} -> {0,1}
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    secs = time.perf_counter() - t0
    test = load_dataset(DataConfig(name="mnist5k", binarize="dynamic"), "test")
    xt = (test.x.view(-1, 784) + 1) / 2
    g = torch.Generator().manual_seed(0)
    lp = torch.cat([model.log_prob(xt[i:i + 50], k, g) for i in range(0, len(xt), 50)])
    return -lp.double().mean().item(), secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-vae")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    base_nll, base_s = textbook(args.steps, args.k, args.seed)
    print(f"textbook MLP VAE 784-400-20: test NLL {base_nll:.2f} nats "
          f"({args.steps} steps, {base_s:.0f}s train)", flush=True)

    from genzoo.config import parse_set

    cfg = build_config("vae", overrides=[("train.steps", args.steps), ("train.seed", args.seed),
                                         ("train.progress", "none")] + parse_set(args.set))
    res = train(cfg, args.out, resume=False)
    ours = evaluate(args.out, ["nll"], options={"k": args.k})["metrics"]["nll"]
    print(f"genzoo vae preset: test NLL {ours['nll_nats']:.2f} nats "
          f"({ours['nll_bits_per_dim']:.4f} bits/dim, n={ours['n']}, k={args.k}; "
          f"{args.steps} steps, {res['seconds']:.0f}s train)")
    print(f"improvement: {base_nll - ours['nll_nats']:.2f} nats (target >= 5)")


if __name__ == "__main__":
    main()
