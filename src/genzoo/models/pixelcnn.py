"""PixelCNN (van den Oord et al. 2016, arXiv:1601.06759) and Gated PixelCNN (van den Oord et al.
2016, arXiv:1606.05328) as one family; `arch` picks the network, everything else is shared.

    p(x) = prod_i p(x_i | x_<i)       raster order: rows top to bottom, columns left to right,
                                      and within a pixel the colour channels R -> G -> B
    loss = -log p(x)                  nats per example, exact (no bound, no sampling)

Outputs: a 256-way softmax per sub-pixel (8-bit data: x_int = round((x + 1) * 127.5)), or a
Bernoulli per pixel for binarised data ({-1, 1} -> {0, 1}); `output=auto` takes Bernoulli when the
dataset is binarised (data.binarize != none). bits/dim = nats / (D ln 2), D = C * H * W.

`prior_of=RUN_DIR` turns the model into a prior over the (h, w) code grid of a frozen VQ-VAE
(van den Oord et al. 2017, arXiv:1711.00937): tokens are embedded instead of read as pixels and
each position gets a K-way softmax. The VQ-VAE is a frozen submodule: in no phase, always in eval
mode, and saved alongside in model.safetensors, so the prior keeps the exact weights whose codes
it learnt even if the VQ-VAE run is extended later (the RUN_DIR's config is still read to build
its networks when the prior is loaded). log_prob(x) = log p(x | z_q(x)) + log p(z_q(x)) with the
VQ-VAE's deterministic encoder z_q(x): one term of log p(x) = log sum_z p(x|z) p(z), so a lower
bound on the likelihood of the joint model (other codes also explain x), not an exact NLL.

Sampling is sequential. The naive sampler runs the whole network on the whole image once per
sub-pixel. The default sampler uses that the output at (r, c) depends only on rows r - R .. r and
columns c - R .. c + R (R = `reach`: the first layer's kernel half-width plus one half-width per
later layer): it runs the network on that window. Zero padding at a cut edge corrupts at most R
rows or columns inward (one half-width per layer), so the output at (r, c) is computed from the
same numbers as on the whole image. Both samplers draw from the same uniforms u (one per
sub-pixel, drawn up front) by inverse CDF, so they give the same samples for the same generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.layers import MaskedConv2d

VQ_API = ("encode_codes", "decode_codes", "codes_log_likelihood", "codebook_size")


@dataclass
class PixelCNNConfig:
    arch: Literal["pixelcnn", "gated"] = "pixelcnn"  # residual masked convs | gated v/h stacks
    channels: int = 32  # h: feature maps per layer (the plain arch's residual stream has 2h)
    layers: int = 6  # residual blocks or gated layers after the first (mask A) layer
    kernel: int = 7  # first layer's kernel size (odd): 7x7 mask A in both papers
    block_kernel: int = 3  # kernel size of the later layers (odd)
    head: int = 64  # hidden width of the two 1x1 output layers
    output: Literal["auto", "categorical", "bernoulli"] = "auto"  # auto: bernoulli if binarised
    conditional: bool = False  # class-conditional: a per-layer bias from the label (1606.05328)
    prior_of: str | None = None  # a VQ-VAE run directory: model its code grid instead of pixels

    def check(self) -> None:
        for name in ("channels", "layers", "head"):
            if getattr(self, name) < (0 if name == "layers" else 1):
                raise GenzooError(f"{name}={getattr(self, name)} must be positive")
        for name in ("kernel", "block_kernel"):
            k = getattr(self, name)
            if k < 1 or k % 2 == 0:
                raise GenzooError(f"{name}={k} must be an odd kernel size (1, 3, 5, 7, ...)")
        if self.arch == "gated" and self.kernel < 3:
            raise GenzooError("arch=gated needs kernel >= 3: the first vertical layer reads the "
                              "kernel // 2 rows above")
        if self.conditional and self.arch == "pixelcnn" and self.layers < 1:
            raise GenzooError("conditional=true with arch=pixelcnn needs layers >= 1 (the label "
                              "bias enters the residual blocks)")
        if self.prior_of is not None and self.output == "bernoulli":
            raise GenzooError("prior_of models K-way codes: output must be auto or categorical")


def load_frozen_vqvae(run_dir: str) -> nn.Module:
    """The VQ-VAE of a run directory (its latest checkpoint, EMA weights if any), frozen."""
    from genzoo.train.rundir import load_run

    if not Path(run_dir).is_dir():
        raise GenzooError(f"prior_of={run_dir!r} is not a run directory; give the directory of "
                          "a trained vqvae run")
    model, _, _ = load_run(run_dir)
    return model


def gate(t: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) (arXiv:1606.05328, eq. 2). a and b are the even and odd channels:
    with the contiguous colour groups of MaskedConv2d, channel j of a, of b and of the result
    then belong to the same group (channels % colors == 0), so gating never mixes colours."""
    return torch.tanh(t[:, 0::2]) * torch.sigmoid(t[:, 1::2])  # (B, 2h, H, W) -> (B, h, H, W)


class ResidualBlock(nn.Module):
    """2h -> 1x1 -> h -> kxk mask B -> h -> 1x1 -> 2h, plus the input (arXiv:1601.06759, fig. 5).
    The 1x1 convolutions are masked too: for colour they must not mix later colour groups."""

    def __init__(self, h: int, k: int, colors: int):
        super().__init__()
        self.reduce = MaskedConv2d(2 * h, h, 1, "B", colors)
        self.conv = MaskedConv2d(h, h, k, "B", colors)
        self.expand = MaskedConv2d(h, 2 * h, 1, "B", colors)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        t = self.conv(F.relu(self.reduce(F.relu(x))))
        if cond is not None:
            t = t + cond  # (B, h, 1, 1): a label bias carries no spatial information
        return x + self.expand(F.relu(t))


class GatedLayer(nn.Module):
    """One layer of the two stacks of arXiv:1606.05328, fig. 2.

    The vertical stack at (r, c) sees only rows < r (all columns within reach): its convolution
    reads the rows above through top padding, (k//2) x k for the first layer and (k//2 + 1) x k
    after, so no shift is needed before it feeds the horizontal stack. The horizontal stack sees
    row r left of c (1 x k masked conv, colour-masked at the centre) plus the vertical stack's
    pre-activations by a 1x1 connection: together every earlier pixel in reach, no blind spot.
    """

    def __init__(self, in_ch: int, h: int, k: int, first: bool, colors: int):
        super().__init__()
        self.p, self.first = k // 2, first
        self.v = nn.Conv2d(in_ch, 2 * h, (self.p if first else self.p + 1, k))
        self.h = MaskedConv2d(in_ch, 2 * h, (1, k), "A" if first else "B", colors)
        self.link = nn.Conv2d(2 * h, 2 * h, 1)  # vertical -> horizontal (any colour may see it)
        self.out = MaskedConv2d(h, h, 1, "B", colors)

    def forward(self, v, x, cond):
        p = self.p
        vin = F.pad(v, (p, p, p, 0))  # (B, C, H + p, W + 2p): zeros above and beside
        if self.first:
            vin = vin[:, :, :-1]  # the first layer must not see row r: rows r-p .. r-1
        v_pre = self.v(vin)  # (B, 2h, H, W)
        h_pre = self.h(x) + self.link(v_pre)
        if cond is not None:
            v_pre, h_pre = v_pre + cond, h_pre + cond  # (B, 2h, 1, 1)
        h_out = self.out(gate(h_pre))
        return gate(v_pre), h_out if self.first else x + h_out  # residual in the h stack only


class PixelCNNNet(nn.Module):
    """(B, in_ch, H, W) -> (B, colors * levels, H, W) logits, causal in raster order."""

    def __init__(self, cfg: PixelCNNConfig, in_ch: int, colors: int, levels: int,
                 num_classes: int):
        super().__init__()
        h, gated = cfg.channels, cfg.arch == "gated"
        width = h if gated else 2 * h
        if gated:
            self.layers = nn.ModuleList(
                [GatedLayer(in_ch, h, cfg.kernel, True, colors)]
                + [GatedLayer(h, h, cfg.block_kernel, False, colors) for _ in range(cfg.layers)])
        else:
            self.first = MaskedConv2d(in_ch, width, cfg.kernel, "A", colors)
            self.layers = nn.ModuleList(ResidualBlock(h, cfg.block_kernel, colors)
                                        for _ in range(cfg.layers))
        self.cond_width = 2 * h if gated else h
        n_cond = len(self.layers)
        self.cond = nn.Embedding(num_classes, n_cond * self.cond_width) if num_classes else None
        self.head = nn.Sequential(nn.ReLU(), MaskedConv2d(width, cfg.head, 1, "B", colors),
                                  nn.ReLU(), MaskedConv2d(cfg.head, colors * levels, 1, "B",
                                                          colors))
        self.gated = gated
        # how far an output reaches: rows above it, and columns either side (each layer adds its
        # kernel's half-width in both directions at most); the fast sampler crops to this window
        self.reach = cfg.kernel // 2 + cfg.layers * (cfg.block_kernel // 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        conds: list = [None] * len(self.layers)
        if self.cond is not None:
            assert y is not None, "a conditional network needs labels y"
            conds = self.cond(y).view(len(y), len(self.layers), self.cond_width, 1, 1).unbind(1)
        if self.gated:
            v = x
            for layer, c in zip(self.layers, conds):
                v, x = layer(v, x, c)
        else:
            x = self.first(x)
            for layer, c in zip(self.layers, conds):
                x = layer(x, c)
        return self.head(x)


@register_model("pixelcnn")
class PixelCNN(GenerativeModel):
    description = "PixelCNN / Gated PixelCNN (arch=gated): exact likelihood, autoregressive"
    Config = PixelCNNConfig

    def __init__(self, cfg: PixelCNNConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        if cfg.conditional and not spec.num_classes:
            raise GenzooError("conditional=true needs a labelled dataset (mnist5k, digits, ...)")
        self.vqvae = None
        if cfg.prior_of is not None:
            self.vqvae = self._attach_vqvae(cfg.prior_of)
            k = int(self.vqvae.codebook_size)
            with torch.no_grad():
                codes = self.vqvae.encode_codes(torch.zeros(1, *spec.shape))  # (1, h, w)
            self.grid = (1, *codes.shape[1:])  # (1, h, w): one K-way "sub-pixel" per position
            self.levels, self.output = k, "categorical"
            self.embed = nn.Embedding(k, cfg.channels)  # tokens in, instead of intensities
            in_ch = cfg.channels
        else:
            binarised = spec.extras.get("binarize", "none") != "none"
            if cfg.output == "auto":
                # resolved here, on the config itself, so config.yaml and the checkpoint record
                # the head that was built, and a reloaded model (which has no data) rebuilds it
                cfg.output = "bernoulli" if binarised else "categorical"
            self.output, self.grid = cfg.output, tuple(spec.shape)
            self.levels = 1 if self.output == "bernoulli" else 256
            in_ch = spec.shape[0]
        colors = self.grid[0]
        if colors > 1 and (cfg.channels % colors or cfg.head % colors):
            raise GenzooError(f"{colors}-channel images: channels={cfg.channels} and head="
                              f"{cfg.head} must be multiples of {colors} (one group per colour)")
        self.net = PixelCNNNet(cfg, in_ch, colors, self.levels,
                               spec.num_classes if cfg.conditional else 0)

    def _attach_vqvae(self, run_dir: str) -> nn.Module:
        vq = load_frozen_vqvae(run_dir)
        missing = [m for m in VQ_API if not hasattr(vq, m)]
        if missing:
            raise GenzooError(f"prior_of={run_dir!r} holds no VQ-VAE: its model lacks "
                              f"{', '.join(missing)} (needs {', '.join(VQ_API)})")
        vq_shape = tuple(getattr(getattr(vq, "spec", None), "shape", self.spec.shape))
        if vq_shape != tuple(self.spec.shape):
            raise GenzooError(f"prior_of: the VQ-VAE models {vq_shape} images but this run's "
                              f"data is {tuple(self.spec.shape)}; use the VQ-VAE's dataset "
                              "settings (--data, --set image_size=..., binarize=...)")
        ours = self.spec.extras.get("binarize")  # known when training, not when reloading
        if ours is not None and (Path(run_dir) / "config.yaml").is_file():
            from genzoo.train.rundir import read_run_config

            theirs = read_run_config(Path(run_dir)).data.binarize
            if theirs != ours:
                raise GenzooError(f"prior_of: the VQ-VAE was trained with binarize={theirs} but "
                                  f"this run has binarize={ours}; set --set binarize={theirs} "
                                  "(and the VQ-VAE's --data)")
        for p in vq.parameters():
            p.requires_grad_(False)
        return vq.eval()

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("main", ("net", "embed") if self.vqvae is not None else ("net",)),)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.vqvae is not None:
            self.vqvae.eval()  # frozen: its batch norm statistics must not move either
        return self

    # --- the autoregressive grid: pixels, or VQ-VAE codes (B, 1, h, w) ------------------------
    def _net_input(self, grid: torch.Tensor) -> torch.Tensor:
        if self.vqvae is None:
            return grid
        if grid.dtype == torch.long:
            return self.embed(grid[:, 0]).permute(0, 3, 1, 2)  # (B, h, w, E) -> (B, E, h, w)
        return torch.einsum("bkhw,ke->behw", grid, self.embed.weight)  # one-hot input

    def _logits(self, grid: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.net(self._net_input(grid), y)  # (B, C * L, H, W)
        return out.view(out.shape[0], self.grid[0], self.levels, *out.shape[2:])  # (B,C,L,H,W)

    def _targets(self, grid: torch.Tensor) -> torch.Tensor:
        """Class indices (B, C, H, W) for a softmax, or {0, 1} targets for Bernoulli."""
        if self.vqvae is not None:
            return grid
        if self.output == "bernoulli":
            if not bool(((grid == 1) | (grid == -1)).all()):
                raise GenzooError("output=bernoulli models binary images, but these pixels are "
                                  "not all -1 or 1; train with --set binarize=dynamic or use "
                                  "output=categorical")
            return (grid + 1) / 2
        return torch.round((grid + 1) * 127.5).long().clamp_(0, 255)  # [-1, 1] -> 0..255

    def _log_p(self, grid: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """log p(grid | y) in nats, (B,); y=None on a conditional model marginalises over a
        uniform class prior: log (1/K) sum_y p(grid | y)."""
        if self.cfg.conditional and y is None:
            n, b = self.spec.num_classes, grid.shape[0]
            ys = torch.arange(n, device=grid.device).repeat_interleave(b)  # (n*B,)
            lp = self._log_p(grid.repeat(n, *[1] * (grid.dim() - 1)), ys).view(n, b)
            return torch.logsumexp(lp, 0) - math.log(n)
        logits, t = self._logits(grid, y), self._targets(grid)
        if self.output == "bernoulli":
            ll = -F.binary_cross_entropy_with_logits(logits[:, :, 0], t, reduction="none")
        else:
            ll = -F.cross_entropy(logits.transpose(1, 2), t, reduction="none")  # (B, C, H, W)
        return ll.flatten(1).sum(1)

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            codes = self.vqvae.encode_codes(x)  # (B, h, w) in [0, K)
        assert codes.shape[1:] == self.grid[1:], f"codes {tuple(codes.shape)} != grid {self.grid}"
        return codes.long().unsqueeze(1)  # (B, 1, h, w)

    # --- the contract ----------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        y = self._labels(batch.get("y"), len(batch["x"]), from_batch=True)
        grid = self._codes(batch["x"]) if self.vqvae is not None else batch["x"]
        nll = -self._log_p(grid, y).mean()
        dims = math.prod(self.grid)
        per = nll.detach() / (dims * math.log(2))
        return {"loss": nll, "nll_nats": nll.detach(),
                ("bits_per_code" if self.vqvae is not None else "bits_per_dim"): per}

    def _labels(self, y, n: int, from_batch: bool = False):
        """Labels as a (n,) LongTensor, or None. A batch's labels are ignored by an
        unconditional model; labels passed by a caller to one are an error."""
        if not self.cfg.conditional:
            if y is not None and not from_batch:
                raise GenzooError("labels y given, but this model is not conditional")
            return None
        if y is None and from_batch:
            raise GenzooError("conditional=true: the batch has no labels 'y'")
        return None if y is None else torch.as_tensor(y, device=self.device).long().view(n)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) in nats per example, (B,): exact for pixels; for a VQ-VAE prior the bound
        log p(x | z_q(x)) + log p(z_q(x)) (see the module docstring)."""
        y = self._labels(y, len(x))
        if self.vqvae is None:
            return self._log_p(x, y)
        codes = self._codes(x)
        return self.vqvae.codes_log_likelihood(x, codes[:, 0]) + self._log_p(codes, y)

    def causal_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits aligned with the network input, (B, C, L, H, W): for the receptive-field plot.
        x is what causal_input returns (images; one-hot codes for a VQ-VAE prior)."""
        y = torch.zeros(len(x), dtype=torch.long, device=x.device) \
            if self.cfg.conditional else None
        return self._logits(x, y)

    def causal_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.vqvae is None:
            return x
        return F.one_hot(self._codes(x)[:, 0], self.levels).permute(0, 3, 1, 2).float()

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               y: torch.Tensor | None = None, naive: bool = False, **cond) -> torch.Tensor:
        """n images in [-1, 1] (decoded codes for a VQ-VAE prior). Conditional models cycle
        through the classes unless labels y are given. naive=True recomputes the whole network
        for every sub-pixel (the reference the fast sampler is tested against)."""
        if cond:
            raise GenzooError(f"unknown sample arguments {sorted(cond)}; pixelcnn takes y, naive")
        if y is None and self.cfg.conditional:
            y = torch.arange(n) % self.spec.num_classes
        y = self._labels(y, n)
        shape = (n, *self.grid)
        u = torch.rand(shape, generator=generator).to(self.device) if generator is not None \
            else torch.rand(shape, device=self.device)  # one uniform per sub-pixel, up front
        grid = self._draw(u, y, naive)
        if self.vqvae is not None:
            return self.vqvae.decode_codes(grid[:, 0]).clamp(-1, 1)
        return grid

    def _draw(self, u: torch.Tensor, y: torch.Tensor | None, naive: bool) -> torch.Tensor:
        n, C, H, W = u.shape
        codes = self.vqvae is not None
        grid = torch.zeros(u.shape, device=self.device, dtype=torch.long if codes else u.dtype)
        R = self.net.reach
        for r in range(H):
            lo, hi = (0, H) if naive else (max(0, r - R), r + 1)  # rows r-R .. r
            for c in range(W):
                a, b = (0, W) if naive else (max(0, c - R), min(W, c + R + 1))  # cols c-R .. c+R
                for ch in range(C):  # colour: R, then G given R, then B given R and G
                    lg = self._logits(grid[:, :, lo:hi, a:b], y)[:, ch, :, r - lo, c - a]  # (n, L)
                    uu = u[:, ch, r, c]
                    if self.output == "bernoulli":
                        v = torch.where(uu < torch.sigmoid(lg[:, 0]), 1.0, -1.0)
                    else:  # inverse CDF: the first level whose cumulative probability exceeds u
                        cdf = torch.softmax(lg, -1).cumsum(-1)
                        idx = (cdf < uu[:, None]).sum(-1).clamp_(max=self.levels - 1)
                        v = idx if codes else idx.to(u.dtype) / 127.5 - 1.0
                    grid[:, ch, r, c] = v
        return grid
