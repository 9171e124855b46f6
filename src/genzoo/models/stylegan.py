"""A style-based generator (Karras et al. 2019, arXiv:1812.04948) with the ProGAN discriminator.

    z --PixelNorm--> mapping MLP --> w --A (affine per layer)--> styles (scale, bias)
    learned constant 4x4 --> [conv, + B * noise, LeakyReLU, AdaIN(style)] x 2 per resolution

Every synthesis layer gets its own copy of w (`ws`, (B, n_layers, w_dim)), which is what makes
style mixing (two w's, a crossover layer) and the truncation trick (w -> w_avg + psi (w - w_avg)
on chosen layers) one-line operations on `ws`. Training: non-saturating loss with R1 on the reals
(gamma 10, arXiv:1801.04406), style-mixing regularisation, w_avg tracked as an EMA of the mapped
latents. Fixed resolution by default; `progressive=true` grows both networks as ProGAN does.

Layers per resolution: 4x4 is layers 0-1, 8x8 layers 2-3, 16x16 layers 4-5, ... The paper's
coarse/middle/fine styles at 1024x1024 are 4-8 / 16-32 / 64-1024; scaled to our sizes (see
`style_groups`) coarse is the two lowest resolutions, fine the highest one, middle the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import get_gan_loss
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.layers import EqualizedConv2d, EqualizedLinear, PixelNorm
from genzoo.models.progan import (
    ProGANDiscriminator,
    advance_stage,
    d_regularised,
    fade_reals,
    growth_levels,
    per_level,
    upsample,
)


@dataclass
class StyleGANConfig:
    nz: int = 128  # latent z size (the paper: 512)
    w_dim: int = 128  # intermediate latent w size (the paper: 512)
    mapping_layers: int = 4  # MLP depth of the mapping network (the paper: 8)
    mapping_lr_mul: float = 0.01  # the mapping network learns 100x slower (paper, app. C)
    channels: tuple[int, ...] = (64, 32, 16, 8)  # feature maps at 4x4, 8x8, ... (last repeats)
    noise: bool = True  # per-layer noise inputs with learned per-channel scales (B)
    # B is stored divided by this and multiplied back at run time, so Adam moves it lr x this
    # per step: 0.05 at lr 0.02 gives B the paper's rate of 0.001 (B has no He constant, so a
    # rate raised for the equalized weights raises B's as well); 1: B learns at lr
    noise_lr_mul: float = 1.0
    noise_start: int = 0  # synthesis layers below this index get no noise (4: none at 4x4 and
    #   8x8), so coarse structure can only come from the styles; 0: every layer, as the paper
    style_mixing: float = 0.9  # probability that a training batch mixes two w's (paper: 0.9)
    w_avg_decay: float = 0.995  # EMA decay of w_avg, the truncation trick's centre
    truncation_psi: float = 1.0  # sample(): w -> w_avg + psi (w - w_avg); 1 = off
    truncation_cutoff: int = 0  # ... on layers below this index only (0: every layer)
    equalized_lr: bool = True  # equalized learning rate in every layer (arXiv:1710.10196)
    minibatch_std: bool = True  # D's minibatch standard-deviation channel
    mbstd_group: int = 4
    loss: Literal["nsgan", "wgan-gp", "hinge", "lsgan"] = "nsgan"  # objective by name
    gp: Literal["r1", "wgan-gp", "none"] = "r1"  # penalty on D
    gp_weight: float = 10.0  # gamma of R1 (applied as gamma / 2); lambda of WGAN-GP
    drift: float = 0.0  # epsilon_drift of ProGAN (0: off; the paper's R1 runs use none)
    progressive: bool = False  # grow from 4x4 like ProGAN (the paper's FFHQ runs did)
    fade_kimg: float = 4.8  # progressive only: images (thousands) of each fade ...
    stab_kimg: float = 4.8  # ... and of each stabilisation
    batch_sizes: tuple[int, ...] = ()  # progressive only: examples per step per resolution

    def check(self) -> None:
        if min(self.nz, self.w_dim, self.mapping_layers, self.mbstd_group) < 1 \
                or not self.channels or min(self.channels) < 1:
            raise GenzooError("nz, w_dim, mapping_layers, mbstd_group and channels must be >= 1")
        if not 0 <= self.style_mixing <= 1 or not 0 <= self.w_avg_decay < 1:
            raise GenzooError("style_mixing must be in [0, 1] and w_avg_decay in [0, 1)")
        if min(self.mapping_lr_mul, self.noise_lr_mul, self.fade_kimg, self.stab_kimg) <= 0:
            raise GenzooError("mapping_lr_mul, noise_lr_mul, fade_kimg and stab_kimg must be "
                              "positive")
        if min(self.truncation_cutoff, self.noise_start) < 0 or min(self.gp_weight, self.drift) < 0:
            raise GenzooError("truncation_cutoff, noise_start, gp_weight and drift must be >= 0")
        if self.batch_sizes and min(self.batch_sizes) < 1:
            raise GenzooError(f"batch_sizes={self.batch_sizes}: every entry must be >= 1")


def style_groups(levels: int) -> dict[str, list[int]]:
    """Layer indices of the coarse / middle / fine styles for a network with levels + 1
    resolutions (two layers each): coarse = 4x4 and 8x8, fine = the top resolution."""
    n = 2 * (levels + 1)
    coarse = list(range(min(4, n - 2)))
    fine = list(range(n - 2, n))
    return {"coarse": coarse, "middle": [i for i in range(n) if i not in coarse + fine],
            "fine": fine}


# ----------------------------------------------------------------------------- networks

class MappingNetwork(nn.Module):
    """(B, nz) -> (B, w_dim): normalised z through an MLP with LeakyReLU(0.2)."""

    def __init__(self, nz: int, w_dim: int, layers: int, lr_mul: float, eq: bool):
        super().__init__()
        self.norm = PixelNorm()  # z normalised to unit average square (paper, app. C)
        dims = [nz] + [w_dim] * layers
        self.fcs = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul, equalized=eq)
                                 for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.norm(z)
        for fc in self.fcs:
            h = F.leaky_relu(fc(h), 0.2)
        return h


class AdaIN(nn.Module):
    """AdaIN(x, y) = y_s (x - mu(x)) / sigma(x) + y_b per channel, (y_s, y_b) = A(w) a learned
    affine map (arXiv:1812.04948 eq. 1; Huang & Belongie 2017). y_s starts at 1, y_b at 0."""

    def __init__(self, ch: int, w_dim: int, eq: bool):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * ch, gain=1.0, equalized=eq)

    def style(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ys, yb = self.affine(w).chunk(2, 1)  # (B, C) each
        return 1.0 + ys, yb

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ys, yb = self.style(w)
        mu = x.mean((2, 3), keepdim=True)
        var = x.var((2, 3), keepdim=True, unbiased=False)
        x = (x - mu) * torch.rsqrt(var + 1e-8)  # instance normalisation, (B, C, H, W)
        return ys[:, :, None, None] * x + yb[:, :, None, None]


class StyleLayer(nn.Module):
    """[upsample] -> conv 3x3 -> + B * noise -> LeakyReLU(0.2) -> AdaIN(w); the 4x4 input layer
    skips the conv (the constant is its input)."""

    def __init__(self, cin: int, cout: int, w_dim: int, *, conv: bool, up: bool, eq: bool,
                 noise_lr_mul: float = 1.0):
        super().__init__()
        self.conv = EqualizedConv2d(cin, cout, 3, equalized=eq) if conv else None
        self.up = up
        self.noise_scale = nn.Parameter(torch.zeros(cout))  # B / noise_lr_mul; starts at 0
        self.noise_lr_mul = noise_lr_mul
        self.adain = AdaIN(cout, w_dim, eq)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None
                ) -> torch.Tensor:
        if self.up:
            x = upsample(x)
        if self.conv is not None:
            x = self.conv(x)
        if noise is not None:  # (B, 1, H, W) single-channel noise, scaled per channel
            x = x + (self.noise_scale * self.noise_lr_mul).view(1, -1, 1, 1) * noise
        return self.adain(F.leaky_relu(x, 0.2), w)


class Synthesis(nn.Module):
    """(B, n_layers, w_dim) styles -> (B, C, 4 * 2^level, same), with ProGAN's fade-in."""

    def __init__(self, chans: list[int], w_dim: int, out_ch: int, levels: int, *, eq: bool,
                 progressive: bool, noise_lr_mul: float = 1.0):
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, chans[0], 4, 4))  # learned constant input
        kw = {"w_dim": w_dim, "eq": eq, "noise_lr_mul": noise_lr_mul}
        layers = [StyleLayer(chans[0], chans[0], conv=False, up=False, **kw),
                  StyleLayer(chans[0], chans[0], conv=True, up=False, **kw)]
        for i in range(1, levels + 1):
            layers += [StyleLayer(chans[i - 1], chans[i], conv=True, up=True, **kw),
                       StyleLayer(chans[i], chans[i], conv=True, up=False, **kw)]
        self.layers = nn.ModuleList(layers)
        keep = range(levels + 1) if progressive else [levels]
        self.to_rgb = nn.ModuleDict({str(i): EqualizedConv2d(chans[i], out_ch, 1, gain=1.0,
                                                             equalized=eq) for i in keep})

    def forward(self, ws: torch.Tensor, level: int, alpha: float = 1.0,
                noise: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """noise: one (B, 1, H, W) tensor or None (no noise) per layer; None: no noise."""
        assert ws.dim() == 3 and ws.shape[1] == len(self.layers), \
            f"expected styles (B, {len(self.layers)}, w_dim), got {tuple(ws.shape)}"
        x = self.const.expand(ws.shape[0], -1, -1, -1)  # (B, c0, 4, 4)
        prev = x
        for i in range(2 * (level + 1)):
            if i % 2 == 0:
                prev = x  # the input of this resolution (the previous one's output)
            x = self.layers[i](x, ws[:, i], None if noise is None else noise[i])
        new = self.to_rgb[str(level)](x)
        if alpha >= 1.0:
            return new
        old = upsample(self.to_rgb[str(level - 1)](prev))
        return old + alpha * (new - old)


class StyleGenerator(nn.Module):
    """The mapping network, the synthesis network and w_avg (a buffer), averaged together by
    the trainer's EMA."""

    def __init__(self, cfg: StyleGANConfig, chans: list[int], out_ch: int, levels: int):
        super().__init__()
        eq = cfg.equalized_lr
        self.mapping = MappingNetwork(cfg.nz, cfg.w_dim, cfg.mapping_layers,
                                      cfg.mapping_lr_mul, eq)
        self.synthesis = Synthesis(chans, cfg.w_dim, out_ch, levels, eq=eq,
                                   progressive=cfg.progressive, noise_lr_mul=cfg.noise_lr_mul)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.n_layers = len(self.synthesis.layers)


# ----------------------------------------------------------------------------- the model

def mix_styles(w1: torch.Tensor, w2: torch.Tensor, n_layers: int, crossover: int
               ) -> torch.Tensor:
    """(B, w_dim) x 2 -> (B, n_layers, w_dim): w1 in layers < crossover, w2 from it on."""
    ws = w1.unsqueeze(1).repeat(1, n_layers, 1)
    ws[:, crossover:] = w2.unsqueeze(1)
    return ws


@register_model("stylegan")
class StyleGAN(GenerativeModel):
    description = "style-based generator (mapping, AdaIN, noise, style mixing, truncation; " \
                  "R1) with the ProGAN discriminator"
    Config = StyleGANConfig
    ema_modules = ("generator",)

    def __init__(self, cfg: StyleGANConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        self.levels = growth_levels(spec)
        chans = [per_level(cfg.channels, i) for i in range(self.levels + 1)]
        self.objective = get_gan_loss(cfg.loss)
        self.generator = StyleGenerator(cfg, chans, spec.shape[0], self.levels)
        self.discriminator = ProGANDiscriminator(
            spec.shape[0], chans, self.levels, eq=cfg.equalized_lr, mbstd=cfg.minibatch_std,
            group=cfg.mbstd_group, progressive=cfg.progressive)
        if cfg.truncation_cutoff > self.generator.n_layers:
            raise GenzooError(f"truncation_cutoff={cfg.truncation_cutoff} exceeds the "
                              f"{self.generator.n_layers} synthesis layers")
        self.register_buffer("level", torch.tensor(0 if cfg.progressive else self.levels))
        self.register_buffer("alpha", torch.tensor(1.0))

    # --- growth (as ProGAN) ------------------------------------------------------------------
    def set_progress(self, step: int) -> None:
        self._step = step
        advance_stage(self, None)

    def stage(self) -> tuple[int, float]:
        return int(self.level), float(self.alpha)

    # --- styles ------------------------------------------------------------------------------
    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int = 0) -> torch.Tensor:
        """The truncation trick: w_avg + psi (w - w_avg) on layers < cutoff (0: all)."""
        w_avg = self.generator.w_avg.view(1, 1, -1)
        t = w_avg + psi * (ws - w_avg)
        if cutoff:
            t = torch.cat([t[:, :cutoff], ws[:, cutoff:]], 1)
        return t

    def noise_inputs(self, n: int, layers=None, generator: torch.Generator | None = None
                     ) -> list[torch.Tensor | None]:
        """One (n, 1, H, W) standard-normal map per synthesis layer; None for layers left out
        (layers: indices that get noise; None: all), and None everywhere when noise is off."""
        out = []
        for i in range(self.generator.n_layers):
            s = 4 * 2 ** (i // 2)
            on = self.cfg.noise and i >= self.cfg.noise_start and (layers is None or i in layers)
            out.append(self.randn(n, 1, s, s, generator=generator) if on else None)
        return out

    def synthesize(self, ws: torch.Tensor, noise=None) -> torch.Tensor:
        """Images at the data's size from styles (B, n_layers, w_dim), in [-1, 1]."""
        lv, a = self.stage()
        x = self.generator.synthesis(ws, lv, a, noise)
        if lv < self.levels:
            x = F.interpolate(x, scale_factor=2 ** (self.levels - lv), mode="nearest")
        return x.clamp(-1, 1)

    def _fakes(self, n: int, lv: int, a: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Training fakes with style mixing: (images at the current size, w (n, w_dim))."""
        g = self.generator
        w = g.mapping(self.randn(n, self.cfg.nz))
        ws = w.unsqueeze(1).repeat(1, g.n_layers, 1)  # (n, L, w_dim)
        used = 2 * (lv + 1)  # layers in use at this resolution
        if self.cfg.style_mixing and float(torch.rand(())) < self.cfg.style_mixing:
            # style-mixing regularisation (paper sec. 3.1): a second latent from a random
            # crossover layer on, so adjacent styles cannot rely on being correlated
            w2 = g.mapping(self.randn(n, self.cfg.nz))
            k = int(torch.randint(1, used, ()))
            ws = mix_styles(w, w2, g.n_layers, k)
        noise = self.noise_inputs(n)
        return g.synthesis(ws, lv, a, noise), w

    # --- training ----------------------------------------------------------------------------
    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("D", ("discriminator",)), Phase("G", ("generator",)))

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]
        advance_stage(self, x.shape[0])
        lv, a = self.stage()
        b = per_level(self.cfg.batch_sizes, lv) if self.cfg.batch_sizes else x.shape[0]
        x = x[:b]
        logs = {"res": torch.tensor(4.0 * 2 ** lv), "alpha": torch.tensor(a)}
        if phase == "G":
            fake, w = self._fakes(b, lv, a)
            with torch.no_grad():  # w_avg follows the mapped latents (paper's code: 0.995)
                self.generator.w_avg.lerp_(w.detach().mean(0), 1.0 - self.cfg.w_avg_decay)
            out_f = self.discriminator(fake, lv, a)
            return {"loss": self.objective.g(out_f), **logs}
        real = fade_reals(x, self.levels, lv, a)
        with torch.no_grad():
            fake = self._fakes(b, lv, a)[0]
        out_r, out_f = self.discriminator(real, lv, a), self.discriminator(fake, lv, a)
        loss = self.objective.d(out_r, out_f)
        logs.update(d_real=out_r.mean().detach(), d_fake=out_f.mean().detach())
        return {"loss": d_regularised(self, loss, real, fake, out_r, logs, lv, a), **logs}

    # --- sampling ----------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.cfg.nz

    def styles(self, z: torch.Tensor, psi: float | None = None) -> torch.Tensor:
        """z (B, nz) -> truncated styles (B, n_layers, w_dim); psi None: the config's."""
        w = self.generator.mapping(z.to(self.device))
        ws = w.unsqueeze(1).repeat(1, self.generator.n_layers, 1)
        psi = self.cfg.truncation_psi if psi is None else psi
        return ws if psi == 1.0 else self.truncate(ws, psi, self.cfg.truncation_cutoff)

    def fixed_noise(self, n: int, seed: int = 0) -> list[torch.Tensor | None]:
        """One noise realisation (from `seed`) shared by all n images: images that differ only
        in their styles, e.g. along an interpolation."""
        noise = self.noise_inputs(1, generator=torch.Generator().manual_seed(seed))
        return [None if t is None else t.expand(n, -1, -1, -1) for t in noise]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images for latents z (B, nz), truncated as configured, with one fixed noise."""
        return self.synthesize(self.styles(z), self.fixed_noise(z.shape[0]))

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        z = self.randn(n, self.cfg.nz, generator=generator)
        return self.synthesize(self.styles(z), self.noise_inputs(n, generator=generator))
