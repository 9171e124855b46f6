"""VQ-VAE: vector-quantised variational autoencoder (van den Oord et al. 2017, arXiv:1711.00937).

    z_e = E(x)                              (B, D, h, w) continuous encoder output
    k   = argmin_j ||z_e[:, i, j] - e_j||   (B, h, w) index of the nearest of K codes e_1..e_K
    z_q = e_k                               (B, D, h, w) the quantised latents the decoder sees
    p(x | z_q)                              Bernoulli (binarised data) or a discretised logistic
                                            over 256 bins per subpixel (8-bit data)
    loss = -log p(x|z_q) + ||sg[z_e] - z_q||^2 + beta ||z_e - sg[z_q]||^2     (per image)

The decoder's gradient reaches the encoder through the straight-through estimator (paper sec.
3.1): the decoder reads z_e + sg[z_q - z_e], whose value is z_q and whose gradient w.r.t. z_e is
the identity. Squared distances are summed over an image's whole latent grid (h, w, D), as the
reconstruction term is summed over its pixels, then averaged over the batch.

`codebook=ema` replaces the codebook loss by exponential moving averages of the encoder outputs
assigned to each code (paper appendix A.1; Razavi et al. 2019, arXiv:1906.00446); the codebook is
then a buffer, not trained by gradients. Dead codes (unused for `restart_after` steps in a row)
are moved onto random encoder outputs of the current batch (a variant of the random restarts of
Jukebox, Dhariwal et al. 2020, arXiv:2005.00341, which use a usage threshold instead), with a
generator seeded by (a seed drawn when the model was built, the step), so that training and
resumed training restart the same codes identically.

Without a learned prior, `sample` decodes uniformly random codes: the VQ-VAE's own training prior
(uniform, sec. 3.1). Real samples need a prior fitted to the codes (`genzoo train pixelcnn --set
prior_of=RUN_DIR`), which uses `encode_codes`, `decode_codes`, `codes_log_likelihood`,
`codebook_size` and `code_shape`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase

BINS = 256  # discretised logistic: 8-bit data, bin centres -1 + 2k/255, k = 0..255


@dataclass
class VQVAEConfig:
    stages: tuple[int, ...] = (64, 128)  # channels of each stride-2 stage (2 stages: 28 -> 7)
    res_blocks: int = 2  # residual blocks after the encoder's stages and before the decoder's
    res_channels: int = 32  # inner width of a residual block (ReLU, 3x3 conv, ReLU, 1x1 conv)
    codebook_size: int = 512  # K, the number of codes
    code_dim: int = 64  # D, the size of a code vector
    beta: float = 0.25  # commitment cost (paper sec. 3.1; 0.25 in all its experiments)
    codebook: Literal["ema", "loss"] = "ema"  # codes learn by EMA of their encoder outputs, or
    #                                           by gradients of the codebook loss
    codebook_decay: float = 0.99  # EMA decay gamma of the codebook (codebook=ema)
    codebook_eps: float = 1e-5  # Laplace smoothing of the EMA cluster sizes (codebook=ema)
    restart_after: int = 100  # move codes unused for this many steps in a row (0: never)
    decoder: Literal["bernoulli", "logistic"] = "logistic"  # p(x|z_q): Bernoulli for binarised
    #                                        data; discretised logistic (256 bins) for 8-bit data

    def check(self) -> None:
        if not self.stages or any(c < 1 for c in self.stages):
            raise GenzooError(f"stages={self.stages} must list at least one positive width, "
                              "e.g. 64,128 (each stage halves the image side)")
        if self.res_blocks < 0 or self.res_channels < 1:
            raise GenzooError("res_blocks must be >= 0 and res_channels >= 1")
        if self.codebook_size < 2 or self.code_dim < 1:
            raise GenzooError(f"codebook_size={self.codebook_size} must be >= 2 and "
                              f"code_dim={self.code_dim} >= 1")
        if self.beta < 0:
            raise GenzooError(f"beta={self.beta} must be >= 0")
        if not 0.0 <= self.codebook_decay < 1.0 or not self.codebook_eps > 0:
            raise GenzooError("codebook_decay must be in [0, 1) and codebook_eps positive")
        if self.restart_after < 0:
            raise GenzooError(f"restart_after={self.restart_after} must be >= 0 (0: never)")


# ----------------------------------------------------------------------------- the VQ layer

def code_stats(codes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts (K,) of each code in `codes`, the fraction of codes used, and the perplexity
    exp(H(p)) of the average assignment p = counts / N: K when all are used equally, 1 for one."""
    counts = torch.bincount(codes.flatten(), minlength=k).float()  # (K,)
    p = counts / counts.sum()
    perplexity = torch.exp(-torch.special.xlogy(p, p).sum())
    return counts, (counts > 0).float().mean(), perplexity


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """The value of z_q with the gradient of z_e: d/dz_e of anything downstream equals its
    d/dz_q exactly (paper sec. 3.1, eq. 3)."""
    return z_e + (z_q - z_e).detach()


def _gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Under torch.distributed with several processes: the rows of every rank's `x`, rank 0's
    first (the trainer gives every rank an equal shard); otherwise `x` itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation of (B, D, h, w) maps with a (K, D) codebook `embedding`."""

    def __init__(self, k: int, d: int, *, ema: bool, decay: float, eps: float,
                 restart_after: int):
        super().__init__()
        self.k, self.d, self.ema = k, d, ema
        self.decay, self.eps, self.restart_after = decay, eps, restart_after
        init = torch.randn(k, d) / math.sqrt(d)  # codes of about unit length
        if ema:  # a buffer: moved by update(), never by an optimizer
            self.register_buffer("embedding", init)
            # N_i and m_i of appendix A.1, started as if each code had been seen once at e_i, so
            # that m_i / N_i = e_i from the first update on
            self.register_buffer("cluster_size", torch.ones(k))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("unused", torch.zeros(k, dtype=torch.long))  # steps since last use
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))  # codes moved so far
        # the seed of dead-code restarts: drawn from the global RNG when the model is built (which
        # the trainer seeds with train.seed) and saved with the weights, so a resumed run uses it
        self.register_buffer("restart_seed", torch.randint(0, 2 ** 62, (), dtype=torch.long))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) vectors -> (N,) index of the nearest code in Euclidean distance."""
        e = self.embedding
        d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)  # (N, K)
        return d2.argmin(1)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D, h, w) -> quantised z_q (B, D, h, w) (differentiable w.r.t. a trained codebook,
        not w.r.t. z_e) and codes (B, h, w)."""
        b, d, h, w = z_e.shape
        assert d == self.d, f"encoder output has {d} channels, the codebook {self.d}"
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, d)  # (B*h*w, D)
        codes = self.nearest(flat)
        return self.lookup(codes.view(b, h, w)), codes.view(b, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w) codes -> (B, D, h, w) code vectors."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor, step: int) -> None:
        """After an optimizer step: the EMA codebook update, then dead-code restarts.
        flat (N, D) are the batch's encoder outputs, codes (N,) their assigned codes. Under
        torchrun every rank first gathers all ranks' rows (in rank order: the global batch's
        order), so each makes the update that one process with the global batch makes."""
        flat, codes = _gather_rows(flat), _gather_rows(codes)
        counts = torch.bincount(codes, minlength=self.k).to(flat.dtype)  # n_i, (K,)
        if self.ema:  # appendix A.1 of the paper, with Laplace smoothing of N_i
            sums = F.one_hot(codes, self.k).to(flat.dtype).t() @ flat  # sum of z_e per code
            g = self.decay
            self.cluster_size.mul_(g).add_(counts, alpha=1 - g)  # N_i <- g N_i + (1-g) n_i
            self.embed_sum.mul_(g).add_(sums, alpha=1 - g)  # m_i <- g m_i + (1-g) sum z_e
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.k * self.eps) * n
            self.embedding.copy_(self.embed_sum / smoothed.unsqueeze(1))  # e_i = m_i / N_i
        if self.restart_after:
            self.restart_dead(flat, counts, step)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor, counts: torch.Tensor, step: int) -> torch.Tensor:
        """Codes unused for `restart_after` steps in a row move onto distinct random rows of
        `flat` (with replacement only when there are more dead codes than rows). Returns the
        indices of the moved codes."""
        self.unused.add_(1).masked_fill_(counts > 0, 0)
        dead = (self.unused >= self.restart_after).nonzero().squeeze(1)  # (n_dead,)
        if dead.numel() == 0:
            return dead
        g = torch.Generator().manual_seed(
            (int(self.restart_seed) * 0x9E3779B97F4A7C15 + step) & (2 ** 63 - 1))
        n = flat.shape[0]
        pick = (torch.randperm(n, generator=g)[:dead.numel()] if dead.numel() <= n
                else torch.randint(n, (dead.numel(),), generator=g)).to(flat.device)
        new = flat[pick]  # (n_dead, D)
        self.embedding[dead] = new
        if self.ema:  # as if each moved code had been seen once, at its new place
            self.embed_sum[dead] = new
            self.cluster_size[dead] = 1.0
        self.unused[dead] = 0
        self.restarts += dead.numel()
        return dead


# ----------------------------------------------------------------------------- networks

class ResBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))) (paper sec. 4.1)."""

    def __init__(self, ch: int, inner: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, inner, 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(inner, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def encoder_net(c_in: int, cfg: VQVAEConfig) -> nn.Sequential:
    """(B, C, H, W) -> (B, D, H / 2^S, W / 2^S): stride-2 4x4 convs, residual blocks, 1x1 conv."""
    layers: list[nn.Module] = []
    c = c_in
    for i, ch in enumerate(cfg.stages):
        layers += [nn.Conv2d(c, ch, 4, 2, 1)] + ([nn.ReLU()] if i < len(cfg.stages) - 1 else [])
        c = ch
    layers += [nn.Conv2d(c, c, 3, 1, 1)]
    layers += [ResBlock(c, cfg.res_channels) for _ in range(cfg.res_blocks)]
    layers += [nn.ReLU(), nn.Conv2d(c, cfg.code_dim, 1)]
    return nn.Sequential(*layers)


def decoder_net(c_out: int, cfg: VQVAEConfig) -> nn.Sequential:
    """(B, D, h, w) -> (B, c_out, H, W): 3x3 conv, residual blocks, stride-2 transposed convs."""
    rev = list(reversed(cfg.stages))
    layers: list[nn.Module] = [nn.Conv2d(cfg.code_dim, rev[0], 3, 1, 1)]
    layers += [ResBlock(rev[0], cfg.res_channels) for _ in range(cfg.res_blocks)]
    layers += [nn.ReLU()]
    for a, b in zip(rev, rev[1:]):
        layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
    layers += [nn.ConvTranspose2d(rev[-1], c_out, 4, 2, 1)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- likelihoods

def _log_sigmoid_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(a) - sigmoid(b)) for a > b, without cancellation: on the side where both
    sigmoids are near 1 it uses sigmoid(a) - sigmoid(b) = sigmoid(-b) - sigmoid(-a)."""
    flip = (a + b) > 0
    hi, lo = torch.where(flip, -b, a), torch.where(flip, -a, b)
    lhi, llo = F.logsigmoid(hi), F.logsigmoid(lo)
    return lhi + torch.log(-torch.expm1(llo - lhi))


def discretized_logistic_log_prob(x: torch.Tensor, mean: torch.Tensor,
                                  log_scale: torch.Tensor) -> torch.Tensor:
    """Elementwise log P(x) of a logistic(mean, e^log_scale) discretised to 256 bins on [-1, 1]
    (Salimans et al. 2017, arXiv:1701.05517, eq. 2, one component): bin k has centre
    -1 + 2k/255 and half-width 1/255; the end bins take the tails. x is rounded to the nearest
    centre (exact for 8-bit data). Summed over a grid the probabilities are exactly normalised."""
    k = ((x + 1) * (BINS - 1) / 2).round().clamp(0, BINS - 1)
    centre = k * 2 / (BINS - 1) - 1
    inv_s = torch.exp(-log_scale)
    upper = (centre + 1 / (BINS - 1) - mean) * inv_s
    lower = (centre - 1 / (BINS - 1) - mean) * inv_s
    mid = _log_sigmoid_diff(upper, lower)
    return torch.where(k == 0, F.logsigmoid(upper), torch.where(k == BINS - 1,
                                                                  F.logsigmoid(-lower), mid))


# ----------------------------------------------------------------------------- the model

@register_model("vqvae")
class VQVAE(GenerativeModel):
    description = "VQ-VAE: conv autoencoder with a vector-quantised latent grid (EMA codebook)"
    Config = VQVAEConfig

    def __init__(self, cfg: VQVAEConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        c, h, w = spec.shape
        f = 2 ** len(cfg.stages)
        if h % f or w % f:
            raise GenzooError(f"{len(cfg.stages)} stride-2 stages need image sides divisible by "
                              f"{f}, got {h}x{w}; change model.stages or data.image_size")
        self._code_shape = (h // f, w // f)
        self.encoder = encoder_net(c, cfg)
        out = c if cfg.decoder == "bernoulli" else 2 * c  # logits | (mean, log scale)
        self.decoder = decoder_net(out, cfg)
        self.quantizer = VectorQuantizer(cfg.codebook_size, cfg.code_dim,
                                         ema=cfg.codebook == "ema", decay=cfg.codebook_decay,
                                         eps=cfg.codebook_eps, restart_after=cfg.restart_after)
        self._step = 0
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # loss -> post_step

    @property
    def phases(self) -> tuple[Phase, ...]:
        # with codebook=ema the quantiser has no parameters: the codebook is not a gradient's
        extra = ("quantizer",) if self.cfg.codebook == "loss" else ()
        return (Phase("main", ("encoder", "decoder", *extra)),)

    def set_progress(self, step: int) -> None:
        self._step = step

    def post_step(self, phase: str) -> None:
        """The EMA codebook update and dead-code restarts, with this step's encoder outputs."""
        if self._pending is not None:
            flat, codes = self._pending
            self._pending = None
            self.quantizer.update(flat, codes, self._step)

    # --- the API of priors ---------------------------------------------------------------------
    @property
    def codebook_size(self) -> int:
        return self.cfg.codebook_size

    @property
    def code_shape(self) -> tuple[int, int]:
        """(h, w) of the latent grid of one image."""
        return self._code_shape

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [-1, 1] -> (B, h, w) LongTensor of codes in [0, K)."""
        assert x.shape[1:] == self.spec.shape, f"expected (B, {self.spec.shape}), got {x.shape}"
        return self.quantizer(self.encoder(x))[1]

    def decoder_out(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w) codes -> the decoder's distribution parameters (B, C or 2C, H, W)."""
        assert codes.dim() == 3 and tuple(codes.shape[1:]) == self.code_shape, \
            f"codes must be (B, {self.code_shape[0]}, {self.code_shape[1]}), got {codes.shape}"
        return self.decoder(self.quantizer.lookup(codes))

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w) codes -> (B, C, H, W) images in [-1, 1]: the Bernoulli mean, or the
        logistic's location (clamped)."""
        return self._mean(self.decoder_out(codes))

    @torch.no_grad()
    def codes_log_likelihood(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """log p(x | z_q(codes)) in nats, (B,): exact for the decoder's distribution (x
        binarised to {-1, 1} for bernoulli; rounded to 256 levels for logistic)."""
        return self.log_px(x, self.decoder_out(codes))

    # --- likelihood ----------------------------------------------------------------------------
    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        if self.cfg.decoder == "bernoulli":
            return torch.sigmoid(out) * 2 - 1  # P(pixel on) in [0, 1] -> [-1, 1]
        return out.chunk(2, dim=1)[0].clamp(-1, 1)

    def log_px(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x | decoder output) summed over pixels and channels, (B,)."""
        if self.cfg.decoder == "bernoulli":
            target = (x + 1) / 2  # {-1, 1} -> {0, 1}
            ll = -F.binary_cross_entropy_with_logits(out, target, reduction="none")
        else:
            mean, log_scale = out.chunk(2, dim=1)  # (B, C, H, W) each
            # a floor on the scale keeps the density finite (a bin then holds ~all the mass)
            ll = discretized_logistic_log_prob(x, mean, log_scale.clamp(min=-7.0))
        return ll.flatten(1).sum(1)

    # --- the contract --------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]
        z_e = self.encoder(x)  # (B, D, h, w)
        z_q, codes = self.quantizer(z_e)
        recon = -self.log_px(x, self.decoder(straight_through(z_e, z_q)))  # (B,) nats
        commit = (z_e - z_q.detach()).pow(2).flatten(1).sum(1)  # (B,) ||z_e - sg[e]||^2
        loss = recon.mean() + self.cfg.beta * commit.mean()
        if self.cfg.codebook == "loss":  # ||sg[z_e] - e||^2: the codebook's only gradient
            loss = loss + (z_e.detach() - z_q).pow(2).flatten(1).sum(1).mean()
        if self.training:
            flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, self.cfg.code_dim)  # (N, D)
            self._pending = (flat, codes.flatten())
        _, usage, perplexity = code_stats(codes, self.cfg.codebook_size)
        return {"loss": loss, "recon": recon.mean().detach(), "commit": commit.mean().detach(),
                "usage": usage, "perplexity": perplexity,
                "restarts": self.quantizer.restarts.float()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        """Decoded uniformly random codes: the VQ-VAE's training prior. Real samples need a
        learned prior over the codes (a PixelCNN); these show what the decoder does off it."""
        shape = (n, *self.code_shape)
        if generator is None:
            codes = torch.randint(self.cfg.codebook_size, shape, device=self.device)
        else:
            codes = torch.randint(self.cfg.codebook_size, shape, generator=generator)
        return self.decode_codes(codes.to(self.device))

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """A lower bound on log p(x) in nats, (B,), under the uniform prior that `sample` uses:
        log p(x|z_q(x)) - h w log K (the ELBO of a one-point posterior, paper sec. 3.1)."""
        h, w = self.code_shape
        return self.codes_log_likelihood(x, self.encode_codes(x)) \
            - h * w * math.log(self.cfg.codebook_size)
