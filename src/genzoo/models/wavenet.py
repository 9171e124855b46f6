"""WaveNet (van den Oord et al. 2016, arXiv:1609.03499): an autoregressive model of raw audio.

    q_t    = mu-law level of x_t, one of `quant_levels` (256: 8 bits, mu = 255; sec. 2.2)
    p(q)   = prod_t softmax(f(q_<t, y))[q_t]            (sec. 2; y: global condition, sec. 2.5)
    f      = input embedding -> stack of gated residual layers -> ReLU/1x1 head (sec. 2.3-2.4):
               z = W_d *_dilated h  (+ V y)                   causal, dilation 1, 2, 4, ..., 512
               g = tanh(z_f) * sigmoid(z_g)                   gated activation (sec. 2.3)
               skip += W_s g;  h = h + W_r g                  residual and skip connections
    loss   = mean over batch and time of -log p(q_t | q_<t, y)   (nats per audio sample)

Causality: the input is shifted right by one sample (a "silence" level at t = 0) and every
convolution only looks left, so output t is a function of x_<t. Its receptive field is
R = (kernel_size - 1) * sum(dilations) * cycles + 1 past samples: x_{t-R} .. x_{t-1}.

Sampling (Fast WaveNet, Paine et al. 2016, arXiv:1611.09482): each layer keeps a queue of its
past inputs ((k - 1) * d of them), so a new sample costs one step through every layer, O(layers),
instead of recomputing the receptive field (`sample_naive`, kept for tests and the benchmark).
Both use the same per-position arithmetic (`_rowwise`), so for the same generator they give
bit-identical logits and therefore identical samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase


# ----------------------------------------------------------------------------- mu-law
def mu_law_compand(x: torch.Tensor, mu: int) -> torch.Tensor:
    """f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu): [-1, 1] -> [-1, 1] (arXiv:1609.03499 2.2)."""
    x = x.clamp(-1, 1)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_encode(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Waveform in [-1, 1] -> integer levels 0..levels-1 (mu = levels - 1), same shape.

    The companded value f(x) is rounded to the nearest of `levels` evenly spaced points
    2 q / mu - 1, so |f(x) - f(decode(q))| <= 1 / mu: a uniform step in the companded domain,
    i.e. fine steps for quiet samples and coarse ones for loud samples.
    """
    mu = levels - 1
    return torch.floor((mu_law_compand(x, mu) + 1) / 2 * mu + 0.5).long().clamp_(0, mu)


def mu_law_level_value(q: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Level -> its companded value 2 q / mu - 1 in [-1, 1] (what the network's input sees)."""
    return q.float() * (2.0 / (levels - 1)) - 1.0


def mu_law_decode(q: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Levels 0..levels-1 -> waveform in [-1, 1]: the inverse of f at 2 q / mu - 1.

    Looked up in a table of all levels, so a level decodes to the same float whatever the
    shape of q (a vectorised pow gives last-bit differences between a tensor's SIMD body and
    its tail, which would make a prefix of a decoded sample differ from a shorter sample).
    """
    mu = levels - 1
    f = mu_law_level_value(torch.arange(levels, device=q.device), levels)  # (levels,)
    table = torch.sign(f) * (torch.pow(1.0 + mu, f.abs()) - 1.0) / mu
    return table[q.long()]


def _rowwise(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x @ w.T + b for (..., K) rows, as an elementwise product summed over K.

    Slower than a matmul, but each output is reduced in the same order however many rows are
    computed together. A BLAS matmul does not promise that (MKL gives last-bit differences
    between a row computed alone and the same row inside a larger batch), and the two samplers
    compute one row per step (fast) or a whole window (naive): this is what makes them agree
    bit for bit. (..., K) -> (..., N).
    """
    return (x.unsqueeze(-2) * w).sum(-1) + b


# ----------------------------------------------------------------------------- config
@dataclass
class WaveNetConfig:
    residual_channels: int = 32  # channels of the residual stream and of each gate
    skip_channels: int = 64  # channels of the skip connections and of the output head
    kernel_size: int = 2  # taps of every dilated causal convolution (the paper's is 2)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # one cycle of layers
    cycles: int = 1  # times the dilation cycle is stacked (the paper repeats 1..512)
    quant_levels: int = 256  # mu-law levels, mu = quant_levels - 1 (paper: 256, 8 bits)
    conditional: bool = True  # global conditioning on the label when the dataset has labels

    def check(self) -> None:
        if self.residual_channels < 1 or self.skip_channels < 1:
            raise GenzooError("residual_channels and skip_channels must be at least 1")
        if self.kernel_size < 2:
            raise GenzooError(f"kernel_size={self.kernel_size} must be at least 2 (a causal "
                              "convolution needs a past tap)")
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise GenzooError(f"dilations={list(self.dilations)} must be a non-empty list of "
                              "positive integers, e.g. 1,2,4,8")
        if self.cycles < 1:
            raise GenzooError(f"cycles={self.cycles} must be at least 1")
        if not 2 <= self.quant_levels <= 65536:
            raise GenzooError(f"quant_levels={self.quant_levels} must be in 2..65536 "
                              "(256: 8-bit mu-law)")

    @property
    def all_dilations(self) -> tuple[int, ...]:
        return tuple(self.dilations) * self.cycles

    @property
    def receptive_field(self) -> int:
        """Past samples output t sees: x_{t-R} .. x_{t-1}."""
        return (self.kernel_size - 1) * sum(self.all_dilations) + 1


# ----------------------------------------------------------------------------- blocks
class GatedResidualLayer(nn.Module):
    """Dilated causal conv -> tanh * sigmoid gate -> skip 1x1 (+ residual 1x1, except the last
    layer, whose residual output nothing would read). (B, C, T) -> (B, C, T), (B, S, T)."""

    def __init__(self, channels: int, skip: int, kernel: int, dilation: int, last: bool):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.dilated = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)
        self.skip = nn.Conv1d(channels, skip, 1)
        self.res = None if last else nn.Conv1d(channels, channels, 1)

    @property
    def history(self) -> int:
        """Past inputs the convolution reads: (k - 1) * d (the length of its sampling queue)."""
        return (self.kernel - 1) * self.dilation

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None):
        z = self.dilated(F.pad(h, (self.history, 0)))  # left padding only: causal, (B, 2C, T)
        if cond is not None:
            z = z + cond.unsqueeze(-1)  # global conditioning, the same at every time (sec. 2.5)
        a, b = z.chunk(2, 1)
        g = torch.tanh(a) * torch.sigmoid(b)  # (B, C, T)
        return (h + self.res(g) if self.res is not None else h), self.skip(g)

    def exact_weights(self) -> tuple[torch.Tensor, ...]:
        """Weights as (out, in) matrices for `_rowwise`; the dilated conv's taps concatenated
        oldest first: row input [h_{t-(k-1)d}, ..., h_{t-d}, h_t]."""
        w = self.dilated.weight  # (2C, C, k)
        wd = w.permute(0, 2, 1).reshape(w.shape[0], -1)  # (2C, k*C), tap-major
        ws = self.skip.weight[:, :, 0]
        wr = self.res.weight[:, :, 0] if self.res is not None else None
        return (wd, self.dilated.bias, ws, self.skip.bias, wr,
                self.res.bias if self.res is not None else None)


def _gate_step(taps: torch.Tensor, h: torch.Tensor, w: tuple, cond: torch.Tensor | None):
    """One layer on rows (..., k*C) of taps: the exact-arithmetic twin of the conv forward."""
    wd, bd, ws, bs, wr, br = w
    z = _rowwise(taps, wd, bd)
    if cond is not None:
        z = z + cond
    a, b = z.chunk(2, -1)
    g = torch.tanh(a) * torch.sigmoid(b)
    return (h + _rowwise(g, wr, br) if wr is not None else h), _rowwise(g, ws, bs)


# ----------------------------------------------------------------------------- model
@register_model("wavenet")
class WaveNet(GenerativeModel):
    description = "WaveNet: dilated causal convolutions over 8-bit mu-law audio (fast sampling)"
    Config = WaveNetConfig
    data_kinds = ("audio",)

    def __init__(self, cfg: WaveNetConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        if len(spec.shape) != 2 or spec.shape[0] != 1:
            raise GenzooError(f"wavenet models mono audio of shape (1, T); got {spec.shape}")
        C, S, Q = cfg.residual_channels, cfg.skip_channels, cfg.quant_levels
        self.levels = Q
        # input: an embedding of the previous level (the paper's one-hot input times a 1x1
        # conv) plus a learned vector times its companded value. The second term is what makes
        # causal_logits differentiable in x (straight-through quantisation), so gradient-based
        # receptive-field plots work; it also gives the net the ordering of levels at once.
        self.embed = nn.Embedding(Q, C)
        self.in_scale = nn.Parameter(torch.randn(C) * 0.1)
        dil = cfg.all_dilations
        self.layers = nn.ModuleList(
            GatedResidualLayer(C, S, cfg.kernel_size, d, last=i == len(dil) - 1)
            for i, d in enumerate(dil))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(S, S, 1), nn.ReLU(), nn.Conv1d(S, Q, 1))
        self.num_classes = spec.num_classes if cfg.conditional else 0
        if self.num_classes:
            # V_l y (sec. 2.5) for every layer l at once: one row of L * 2C numbers per class
            self.label_embed = nn.Embedding(self.num_classes, len(dil) * 2 * C)
        self.start = int(mu_law_encode(torch.zeros(()), Q))  # "silence" before the first sample

    @property
    def phases(self) -> tuple[Phase, ...]:
        cond = ("label_embed",) if self.num_classes else ()
        return (Phase("main", ("embed", "in_scale", "layers", "head", *cond)),)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    # --- the network ----------------------------------------------------------------------
    def _cond(self, y: torch.Tensor | int | None, n: int) -> torch.Tensor | None:
        """(B,) labels or one int -> (B, layers, 2C) per-layer biases; None when unconditioned."""
        if not self.num_classes:
            return None
        if y is None:
            raise GenzooError(f"this wavenet is conditioned on the dataset's {self.num_classes} "
                              "classes; pass y=labels of shape (B,) (or train it with "
                              "conditional=false)")
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() == 1:
            y = y.expand(n)
        if y.shape[0] != n or y.min() < 0 or y.max() >= self.num_classes:
            raise GenzooError(f"y must hold {n} labels in 0..{self.num_classes - 1}")
        return self.label_embed(y).view(n, len(self.layers), -1)

    def causal_logits(self, x: torch.Tensor, y: torch.Tensor | int | None = None
                      ) -> torch.Tensor:
        """(B, 1, T) waveform in [-1, 1] -> (B, Q, T) logits aligned with the input: output t
        is the distribution of x_t's mu-law level given x_<t (and the label y).

        A conditional model takes y: labels (B,) or one int; y=None means label 0 (so that
        tools which know nothing of labels, like `genzoo plot receptive-field`, still work).
        Differentiable in x through a straight-through quantiser (gradient of the companding
        function, non-zero everywhere, silence included), so d logits[..., t] / d x[..., s] is
        exactly zero for s >= t and for s < t - receptive_field, and non-zero in between.
        """
        if self.num_classes and y is None:
            y = 0
        assert x.dim() == 3 and x.shape[1] == 1, f"expected (B, 1, T) audio, got {tuple(x.shape)}"
        mu = self.levels - 1
        q = mu_law_encode(x[:, 0], self.levels)  # (B, T) levels
        # straight-through: the value of q, the gradient of the companding function f, written
        # out so that it is right at x = 0 too (autograd through sign(x) |x| gives 0 there)
        slope = mu / ((1 + mu * x[:, 0].detach().abs().clamp(max=1)) * math.log1p(mu))
        v = mu_law_level_value(q, self.levels) + (x[:, 0] - x[:, 0].detach()) * slope  # (B, T)
        B = x.shape[0]
        q_in = torch.cat([q.new_full((B, 1), self.start), q[:, :-1]], 1)  # shift right: (B, T)
        v0 = mu_law_level_value(q.new_full((B, 1), self.start), self.levels)
        v_in = torch.cat([v0, v[:, :-1]], 1)  # (B, T)
        h = self.embed(q_in) + v_in.unsqueeze(-1) * self.in_scale  # (B, T, C)
        return self._trunk(h.transpose(1, 2), self._cond(y, B))

    def _trunk(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(B, C, T) embedded inputs -> (B, Q, T) logits."""
        skip = None
        for i, layer in enumerate(self.layers):
            h, s = layer(h, None if cond is None else cond[:, i])
            skip = s if skip is None else skip + s
        return self.head(skip)

    # --- the contract ---------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]
        if self.num_classes and "y" not in batch:
            raise GenzooError("this wavenet is conditional but the batch has no labels 'y'")
        logits = self.causal_logits(x, batch.get("y"))  # (B, Q, T)
        nll = F.cross_entropy(logits, mu_law_encode(x[:, 0], self.levels))  # nats per sample
        return {"loss": nll, "nats_per_sample": nll.detach(),
                "bits_per_sample": nll.detach() / math.log(2)}

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log P(mu-law levels of x) in nats per example, (B,): exact, summed over time.

        A discrete likelihood of the quantised signal (quant_levels values per sample), not a
        density of the continuous waveform. A conditional model given no labels returns the
        marginal log sum_y p(x | y) / K over a uniform prior on its K classes (the `tones`
        classes are balanced), which is what `genzoo eval --metrics nll` reports.
        """
        q = mu_law_encode(x[:, 0], self.levels)  # (B, T)

        def given(lab):
            logp = F.log_softmax(self.causal_logits(x, lab), 1)  # (B, Q, T)
            return logp.gather(1, q.unsqueeze(1)).squeeze(1).sum(1)  # (B,)

        if not self.num_classes or y is not None:
            return given(y)
        per_class = torch.stack([given(torch.full((x.shape[0],), k, device=x.device))
                                 for k in range(self.num_classes)])  # (K, B)
        return torch.logsumexp(per_class, 0) - math.log(self.num_classes)

    # --- sampling ---------------------------------------------------------------------------
    def _sampling_setup(self, n: int, generator, length, y):
        """Labels, uniforms (T, n) drawn time-major on the CPU (so a shorter run draws a prefix
        of the same numbers), and the exact-arithmetic weights."""
        T = self.spec.shape[-1] if length is None else int(length)
        if T < 1:
            raise GenzooError(f"length={T} must be at least 1 sample")
        if self.num_classes and y is None:
            y = torch.randint(self.num_classes, (n,), generator=generator)
        cond = self._cond(y, n)
        if generator is None:
            u = torch.rand(T, n, device=self.device)
        else:
            u = torch.rand(T, n, generator=generator).to(self.device)
        weights = [layer.exact_weights() for layer in self.layers]
        return T, cond, u, weights

    def _embed_rows(self, q: torch.Tensor) -> torch.Tensor:
        """Levels (...) -> input rows (..., C), exactly as causal_logits computes them."""
        return self.embed(q) + mu_law_level_value(q, self.levels).unsqueeze(-1) * self.in_scale

    def _head_row(self, skip: torch.Tensor) -> torch.Tensor:
        """(B, S) summed skips -> (B, Q) logits, rowwise like the layers."""
        c1, c2 = self.head[1], self.head[3]
        h = _rowwise(F.relu(skip), c1.weight[:, :, 0], c1.bias)
        return _rowwise(F.relu(h), c2.weight[:, :, 0], c2.bias)

    def _draw(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF draw of one level per row from (B, Q) logits with uniforms u (B,)."""
        cdf = torch.softmax(logits.contiguous(), -1).cumsum(-1)  # (B, Q)
        return (cdf < (u * cdf[:, -1]).unsqueeze(-1)).sum(-1).clamp_(max=self.levels - 1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               length: int | None = None, y: torch.Tensor | int | None = None,
               **cond) -> torch.Tensor:
        """(n, 1, length) waveforms in [-1, 1] (length: the clip length by default), one
        sample at a time with per-layer queues (Fast WaveNet, arXiv:1611.09482).

        y: labels (n,) or one int for a conditional model; drawn uniformly when not given.
        """
        T, cond, u, weights = self._sampling_setup(n, generator, length, y)
        C = self.cfg.residual_channels
        # queue of layer l: its last (k - 1) d inputs, a ring indexed by time mod its length;
        # zeros at the start are the zero padding of the convolutions
        queues = [torch.zeros(max(1, layer.history), n, C, device=self.device)
                  for layer in self.layers]
        q = torch.full((n,), self.start, dtype=torch.long, device=self.device)
        out = torch.empty(n, T, dtype=torch.long, device=self.device)
        k = self.cfg.kernel_size
        for t in range(T):
            h = self._embed_rows(q)  # (n, C): input at time t is the level of x_{t-1}
            skip = None
            for i, (layer, w, buf) in enumerate(zip(self.layers, weights, queues)):
                d, L = layer.dilation, layer.history
                taps = torch.cat([buf[(t - (k - 1 - j) * d) % L] for j in range(k - 1)] + [h],
                                 -1)  # (n, k*C), oldest first, as the convolution reads them
                buf[t % L] = h  # slot of h_{t-(k-1)d}, which no later step needs
                h, s = _gate_step(taps, h, w, None if cond is None else cond[:, i])
                skip = s if skip is None else skip + s
            q = self._draw(self._head_row(skip), u[t])
            out[:, t] = q
        return mu_law_decode(out, self.levels).unsqueeze(1)  # (n, 1, T)

    @torch.no_grad()
    def sample_naive(self, n: int, *, generator: torch.Generator | None = None,
                     length: int | None = None, y: torch.Tensor | int | None = None
                     ) -> torch.Tensor:
        """The same draws as `sample`, the slow way: for every new sample, every layer is
        recomputed over the whole receptive field (the last R inputs). O(R * layers) per
        sample instead of O(layers); kept as the reference for tests and the benchmark."""
        T, cond, u, weights = self._sampling_setup(n, generator, length, y)
        R = self.receptive_field
        q_in = torch.full((n, T), self.start, dtype=torch.long, device=self.device)
        out = torch.empty(n, T, dtype=torch.long, device=self.device)
        for t in range(T):
            window = q_in[:, max(0, t - R + 1):t + 1]  # inputs x_{t-R} .. x_{t-1}: (n, W <= R)
            q = self._draw(self._window_logits(window, cond, weights), u[t])
            out[:, t] = q
            if t + 1 < T:
                q_in[:, t + 1] = q
        return mu_law_decode(out, self.levels).unsqueeze(1)

    def _window_logits(self, q_in: torch.Tensor, cond: torch.Tensor | None,
                       weights: list) -> torch.Tensor:
        """Every layer over a window of (shifted) input levels (n, W), zero history on its
        left, with the samplers' exact arithmetic -> (n, Q) logits at the window's last
        position (the output the last input predicts)."""
        k = self.cfg.kernel_size
        h = self._embed_rows(q_in)  # (n, W, C)
        W = h.shape[1]
        skip = None
        for i, (layer, w) in enumerate(zip(self.layers, weights)):
            d = layer.dilation
            hp = F.pad(h, (0, 0, layer.history, 0))  # (n, (k-1)d + W, C)
            taps = torch.cat([hp[:, j * d:j * d + W] for j in range(k)], -1)  # (n, W, k*C)
            c = None if cond is None else cond[:, i].unsqueeze(1)
            h, s = _gate_step(taps, h, w, c)
            skip = s if skip is None else skip + s
        return self._head_row(skip[:, -1])
