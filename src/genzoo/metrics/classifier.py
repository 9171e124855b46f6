"""The domain classifier: a small CNN trained on a dataset's training split, used as the feature
extractor of FID, KID, IS and precision/recall on datasets far from ImageNet (MNIST, digits).

Inception features say little about 28x28 digits and cannot be downloaded here, so the scores on
our embedded data use a network that knows the domain, and are named after it (`fid_mnist5k-cnn`),
never passed off as Inception numbers. The recipe is the one the FID-on-MNIST literature uses: a
few conv layers, global average pooling, the pooled vector as the feature space and the class
logits for the Inception Score.

    genzoo train classifier --data mnist5k --out classifiers/mnist5k

writes DIR/classifier.safetensors (weights) and DIR/classifier.json (dataset settings, feature
size, test accuracy, training settings) and registers DIR as the default extractor for that
dataset in the genzoo cache. This is not a generative model, so it has its own short supervised
loop here rather than a place in the model registry and the generative training loop.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from genzoo.config import DataConfig
from genzoo.errors import GenzooError

FEATURES = 128  # size of the pooled feature vector


class DomainCNN(nn.Module):
    """conv(32) - pool - conv(64)x2 - pool - conv(128) - global average pool - linear.

    Fully convolutional up to the pooling, so it takes any image size >= 8."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(channels, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                                  *block(64, FEATURES))
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) in [-1, 1] -> features (B, 128), logits (B, classes)."""
        h = self.body(x).mean((2, 3))  # (B, 128): global average pool
        return h, self.head(self.drop(h))


def _shift(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translations by up to `pad` pixels (background -1 fills the border)."""
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h))  # (B, H)
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w))  # (B, W)
    idx_b = torch.arange(b).view(b, 1, 1)
    out = xp.permute(0, 2, 3, 1)[idx_b, rows.view(b, h, 1), cols.view(b, 1, w)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def accuracy(model: DomainCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            _, logits = model(x[i:i + batch_size])
            correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def train_classifier(data_cfg: DataConfig, out: str | Path, *, steps: int = 2000,
                     batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                     log=print) -> dict:
    """Train the domain CNN on the training split; write it to `out`; return its record."""
    from genzoo.data import load_dataset

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GenzooError(f"--out {str(out)!r} is a file; give a directory for the classifier")
    if out.is_dir() and any(out.iterdir()):
        raise GenzooError(f"--out {str(out)!r} is not empty; give a new or empty directory")
    if steps < 1 or batch_size < 1:
        raise GenzooError(f"steps={steps} and batch_size={batch_size} must be at least 1")
    train, test = load_dataset(data_cfg, "train"), load_dataset(data_cfg, "test")
    if train.spec.kind != "image" or not train.spec.num_classes or train.y is None:
        raise GenzooError(f"a domain classifier needs a labelled image dataset; "
                          f"{data_cfg.name!r} is {train.spec.kind} data"
                          + ("" if train.y is not None else " without labels"))
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = DomainCNN(train.spec.shape[0], train.spec.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    for step in range(steps):
        model.train()
        b = train.batch(step, min(batch_size, len(train)), seed)
        x = _shift(b["x"], g) if min(train.spec.shape[1:]) >= 16 else b["x"]
        _, logits = model(x)
        loss = F.cross_entropy(logits, b["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % max(1, steps // 10) == 0:
            log(f"step {step + 1}/{steps} loss {loss.item():.4f}")
    test_x, test_y = test.to_float(test.x), test.y
    record = {"kind": "domain-cnn", "name": f"{data_cfg.name}-cnn",
              "data": dataclasses.asdict(data_cfg), "shape": list(train.spec.shape),
              "num_classes": train.spec.num_classes, "features": FEATURES,
              "test_accuracy": accuracy(model, test_x, test_y), "n_test": len(test_y),
              "train_accuracy": accuracy(model, train.to_float(train.x), train.y),
              "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
              "seconds": round(time.perf_counter() - t0, 1)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(out / "classifier.safetensors"))
    (out / "classifier.json").write_text(json.dumps(record, indent=2))
    return record


def load_classifier(path: str | Path) -> tuple[DomainCNN, dict]:
    """A trained domain classifier and its record, from the directory `train_classifier` wrote."""
    path = Path(path)
    meta_path, weights = path / "classifier.json", path / "classifier.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise GenzooError(f"{str(path)!r} holds no domain classifier (classifier.json and "
                          "classifier.safetensors); train one with `genzoo train classifier "
                          "--data DATASET --out DIR`")
    try:
        meta = json.loads(meta_path.read_text())
        model = DomainCNN(meta["shape"][0], meta["num_classes"])
        model.load_state_dict(load_file(str(weights)))
    except (ValueError, KeyError, RuntimeError) as e:
        raise GenzooError(f"the classifier in {str(path)!r} cannot be loaded: "
                          f"{str(e).splitlines()[0]}") from None
    return model.eval(), meta
