"""Adversarial domain adaptation: DANN and its adversarial-loss variants, in one model.

A feature extractor F, a label classifier C on F, and a domain classifier D on F that tells the
source domain (batch "x", labelled) from the target domain ("x_b", its labels unused) apart.
F learns features that classify the source well and that D cannot tell apart, so C carries over
to the target. `variant` picks how F is made domain-invariant:

- `grl`: DANN (Ganin & Lempitsky 2015, arXiv 1409.7495; Ganin et al. 2016, arXiv 1505.07818).
  One phase: D minimises its domain loss, and a gradient-reversal layer between F and D hands F
  the *negated* gradient (times lambda_p), so F maximises the same loss.
- `flip`: inverted labels (Tzeng et al. 2017, ADDA, arXiv 1702.05464, sec. 3.2): D trains in its
  own phase; F minimises D's loss with the target labelled "source" (the GAN trick of flipped
  labels: strong gradients where reversal gives vanishing ones once D wins).
- `uniform`: domain confusion (Tzeng et al. 2015, arXiv 1510.02192, eq. 3): F minimises the
  cross-entropy between D's prediction and the uniform distribution, on both domains.
- `source-only`: C on F trained on source labels alone (the lower bound: no adaptation).
- `target-only`: C on F trained on the target's labels (the upper bound; uses "y_b").

Schedules of the paper (sec. 5.2.2 of 1505.07818), with p = step / schedule_steps in [0, 1]
(schedule_steps is train.steps unless set):
lambda_p = 2 / (1 + exp(-gamma p)) - 1, gamma = 10 (set_progress); the annealed learning rate
mu_p = mu_0 / (1 + 10 p)^0.75 is the trainer's `lr_decay=inv`.

DANN is a classifier, not a generative model: `generates = False`, so the trainer draws no
sample grids and `sample` says so. It is judged by `genzoo eval RUN --metrics target-accuracy`
and pictured by `genzoo plot features RUN ...`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.base import DataSpec
from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase

SOURCE, TARGET = 0.0, 1.0  # domain labels d_i of the paper: 0 for source, 1 for target


@dataclass
class DANNConfig:
    variant: Literal["grl", "flip", "uniform", "source-only", "target-only"] = "grl"  # see above
    conv: tuple[int, ...] = (32, 48)  # feature extractor: 5x5 conv widths, each with ReLU and
    #                                   2x2 max-pool (the paper's MNIST network, Fig. 4)
    padding: int = 0  # conv padding: 0 as the paper (28x28 -> 4x4x48 features); 2 keeps the
    #                   size before each pooling, for small images (8x8 digits)
    hidden: int = 100  # width of the label classifier's two hidden layers
    domain_hidden: int = 100  # width of the domain classifier's hidden layer
    gamma: float = 10.0  # lambda_p = 2 / (1 + exp(-gamma p)) - 1
    domain_weight: float = 1.0  # the adaptation weight is domain_weight * lambda_p
    schedule_steps: int | None = None  # p = step / schedule_steps; None: train.steps (filled
    #                                    in by build_config, so --steps moves the schedule too)
    norm: Literal["none", "batch"] = "none"  # "batch": batch norm after every conv and hidden
    #   layer of F, C and D; source and target go through F in separate batches, so in training
    #   each domain is normalised by its own statistics

    def check(self) -> None:
        if not self.conv or min(self.conv) < 1:
            raise GenzooError(f"conv={self.conv} must list at least one positive width")
        if self.schedule_steps is None:
            raise GenzooError("schedule_steps is unset; build the config with "
                              "genzoo.config.build_config, which sets it to train.steps")
        if self.hidden < 1 or self.domain_hidden < 1 or self.schedule_steps < 1:
            raise GenzooError("hidden, domain_hidden and schedule_steps must be at least 1")
        if self.padding not in (0, 1, 2):
            raise GenzooError(f"padding={self.padding} is not valid; use 0, 1 or 2")
        if self.norm not in ("none", "batch"):
            raise GenzooError(f"norm={self.norm!r} is not valid; use none or batch")
        if self.gamma < 0 or self.domain_weight < 0:
            raise GenzooError("gamma and domain_weight must be >= 0")


def adaptation_lambda(p: float, gamma: float = 10.0) -> float:
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1: 0 at the start, near 1 by p ~ 0.5 (1505.07818,
    sec. 5.2.2): it keeps the domain classifier's early, noisy signal from F."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -lambda (1409.7495, eq. 13)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """The gradient-reversal layer R_lambda."""
    return _ReverseGrad.apply(x, lam)


def feature_extractor(channels: int, widths: tuple[int, ...], padding: int,
                      batch_norm: bool = False) -> nn.Sequential:
    layers, c = [], channels
    for w in widths:
        norm = [nn.BatchNorm2d(w)] if batch_norm else []
        layers += [nn.Conv2d(c, w, 5, padding=padding), *norm, nn.ReLU(), nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.Flatten())


def mlp(sizes: list[int], batch_norm: bool = False) -> nn.Sequential:
    """Linear layers with ReLU (and batch norm) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b)] if batch_norm else []
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register_model("dann")
class DANN(GenerativeModel):
    description = "domain adaptation: DANN (gradient reversal), flipped labels, domain confusion"
    Config = DANNConfig
    generates = False
    two_domains = True

    @classmethod
    def complete_config(cls, run_cfg) -> None:
        if run_cfg.model_cfg.schedule_steps is None:  # the schedule spans the whole run
            run_cfg.model_cfg.schedule_steps = run_cfg.train.steps

    def __init__(self, cfg: DANNConfig, spec: DataSpec):
        super().__init__(cfg, spec)
        cfg.check()
        if spec.num_classes < 2:
            raise GenzooError("dann classifies: the source dataset needs labels "
                              "(e.g. --data mnist5k)")
        c, h, w = spec.shape
        size = min(h, w)
        for _ in cfg.conv:  # 5x5 conv, then 2x2 pooling
            size = (size + 2 * cfg.padding - 4) // 2
        if size < 1:
            raise GenzooError(f"{h}x{w} images are too small for {len(cfg.conv)} conv+pool "
                              f"stages with padding={cfg.padding}; use padding=2, fewer conv "
                              "widths or a larger image_size")
        bn = cfg.norm == "batch"
        self.encoder = feature_extractor(c, cfg.conv, cfg.padding, bn)
        with torch.no_grad():
            dim = self.encoder(torch.zeros(1, c, h, w)).shape[1]  # (1, F)
        self.feature_dim = dim
        # fc 100 -> fc 100 -> K, as the paper's label predictor; D: fc 100 -> 1 logit of "target"
        self.classifier = mlp([dim, cfg.hidden, cfg.hidden, spec.num_classes], bn)
        self.discriminator = mlp([dim, cfg.domain_hidden, 1], bn)
        self.lam = 0.0  # lambda_p of the current step (set_progress)

    @property
    def phases(self) -> tuple[Phase, ...]:
        v = self.cfg.variant
        if v == "grl":  # one phase: the reversal layer makes it a min-max in one backward pass
            return (Phase("main", ("encoder", "classifier", "discriminator")),)
        if v in ("flip", "uniform"):  # D and F take turns, as a GAN's D and G
            return (Phase("D", ("discriminator",)), Phase("main", ("encoder", "classifier")))
        return (Phase("main", ("encoder", "classifier")),)  # source-only, target-only

    def set_progress(self, step: int) -> None:
        p = min(1.0, step / self.cfg.schedule_steps)
        self.lam = self.cfg.domain_weight * adaptation_lambda(p, self.cfg.gamma)

    # --- the networks --------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> features (B, feature_dim)."""
        assert x.shape[1:] == torch.Size(self.spec.shape), \
            f"dann expects images of shape {self.spec.shape}, got {tuple(x.shape[1:])}"
        return self.encoder(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> class logits (B, K)."""
        return self.classifier(self.embed(x))

    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        raise GenzooError("dann does not generate: it is a classifier adapted to a target "
                          "domain; use genzoo eval RUN --metrics target-accuracy, or genzoo "
                          "plot features RUN")

    # --- objectives ----------------------------------------------------------------------------
    def _domain_loss(self, f_src: torch.Tensor, f_tgt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """D's loss (source 0, target 1), its logits on both domains (B_s + B_t,)."""
        logits = self.discriminator(torch.cat([f_src, f_tgt])).squeeze(1)  # (Bs + Bt,)
        d = torch.cat([torch.full((len(f_src),), SOURCE), torch.full((len(f_tgt),), TARGET)])
        d = d.to(logits)
        return F.binary_cross_entropy_with_logits(logits, d), logits, d

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        if "x_b" not in batch:
            raise GenzooError("dann needs two domains: the source with --data and the target "
                              "with --set target=NAME (its preset: mnist5k -> mnist-m)")
        v = self.cfg.variant
        xs, xt = batch["x"], batch["x_b"]  # (B, C, H, W) each
        if v == "target-only":
            if "y_b" not in batch:
                raise GenzooError("variant=target-only trains on the target's labels; "
                                  f"{self.spec.extras.get('domains', ('', 'the target'))[1]} "
                                  "has none")
            logits = self.classify(xt)
            cls = F.cross_entropy(logits, batch["y_b"])
            acc = (logits.argmax(1) == batch["y_b"]).float().mean()
            return {"loss": cls, "cls": cls.detach(), "acc": acc.detach()}
        if phase == "D":  # flip / uniform: D learns on fixed features
            with torch.no_grad():
                f_src, f_tgt = self.embed(xs), self.embed(xt)  # (B, F) each
            dom, logits, d = self._domain_loss(f_src, f_tgt)
            acc = ((logits > 0).float() == d).float().mean()
            return {"loss": dom, "dom": dom.detach(), "dom_acc": acc.detach()}
        f_src = self.embed(xs)  # (B, F)
        logits = self.classifier(f_src)
        cls = F.cross_entropy(logits, batch["y"])
        out = {"cls": cls.detach(), "acc": (logits.argmax(1) == batch["y"]).float().mean()}
        if v == "source-only":
            return {"loss": cls, **out}
        f_tgt = self.embed(xt)
        if v == "grl":
            # D minimises its loss; through the reversal F receives -lambda times its gradient
            dom, dl, d = self._domain_loss(grad_reverse(f_src, self.lam),
                                           grad_reverse(f_tgt, self.lam))
            out["dom_acc"] = ((dl > 0).float() == d).float().mean()
            return {"loss": cls + dom, **out, "dom": dom.detach(),
                    "lambda": torch.tensor(self.lam, device=xs.device)}
        dl = self.discriminator(torch.cat([f_src, f_tgt])).squeeze(1)  # (Bs + Bt,)
        if v == "flip":
            # only the target's features move toward "source" (ADDA's inverted-label loss)
            adv = F.binary_cross_entropy_with_logits(dl[len(f_src):],
                                                     torch.full_like(dl[len(f_src):], SOURCE))
        else:  # uniform: cross-entropy to (1/2, 1/2) for both domains (1510.02192, eq. 3)
            adv = F.binary_cross_entropy_with_logits(dl, torch.full_like(dl, 0.5))
        return {"loss": cls + self.lam * adv, **out, "adv": adv.detach(),
                "lambda": torch.tensor(self.lam, device=xs.device)}
