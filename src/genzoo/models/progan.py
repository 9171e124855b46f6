"""Progressive growing of GANs (Karras et al. 2018, arXiv:1710.10196), every piece a switch.

    4x4 --stabilise--> fade in 8x8 --stabilise--> fade in 16x16 --> ... --> the target size

Both networks start at 4x4 and grow by doubling. A new block fades in: its output is mixed with
the old network's (upsampled in G, downsampled in D) by a weight alpha that rises linearly over
`fade_kimg` thousand images shown, then the grown networks train alone for `stab_kimg`. The
schedule is a pure function of the step (`set_progress`), so a resumed run lands exactly where the
interrupted one was, mid-fade included. The paper's pieces are switches for its ablation (table 1):
`progressive`, `minibatch_std` (sec. 3), `equalized_lr` (sec. 4.1), `pixel_norm` (sec. 4.2), the
WGAN-GP loss with the drift term (sec. A.1), and EMA of G (train.ema_decay; sec. A.1 uses 0.999).

Batch sizes per resolution: the trainer draws `train.batch_size` examples every step; at level l
the model uses the first `batch_sizes[l]` of them (all of them when batch_sizes is empty), and the
schedule counts the images actually shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import get_gan_loss, penalties
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm


@dataclass
class ProGANConfig:
    nz: int = 128  # latent size (the paper: 512)
    channels: tuple[int, ...] = (128, 128, 64, 32, 16)  # feature maps at 4x4, 8x8, 16x16, ...;
    #                              the last entry serves every larger resolution
    progressive: bool = True  # grow from 4x4 (off: the full-resolution networks from the start)
    minibatch_std: bool = True  # minibatch standard-deviation channel before D's last block
    mbstd_group: int = 4  # group size of that statistic
    equalized_lr: bool = True  # runtime weight scaling by He's constant, N(0, 1) init
    pixel_norm: bool = True  # pixelwise feature normalisation after every conv in G
    loss: Literal["wgan-gp", "nsgan", "hinge", "lsgan"] = "wgan-gp"  # objective by name
    gp: Literal["wgan-gp", "r1", "none"] = "wgan-gp"  # gradient penalty on D
    gp_weight: float = 10.0  # lambda of WGAN-GP; gamma of R1 (applied as gamma / 2)
    drift: float = 1e-3  # epsilon_drift * E D(x)^2 keeps the critic near 0 (sec. A.1)
    fade_kimg: float = 4.0  # thousands of images over which a new resolution fades in
    stab_kimg: float = 4.0  # thousands of images of each stabilisation phase (and of 4x4)
    batch_sizes: tuple[int, ...] = ()  # examples per step at 4x4, 8x8, ... (a prefix of the
    #                                    drawn batch; the last entry serves larger sizes; ():
    #                                    the whole drawn batch at every resolution)

    def check(self) -> None:
        if self.nz < 1 or not self.channels or min(self.channels) < 1:
            raise GenzooError("nz and every entry of channels must be at least 1")
        if self.mbstd_group < 1:
            raise GenzooError(f"mbstd_group={self.mbstd_group} must be at least 1")
        if self.fade_kimg <= 0 or self.stab_kimg <= 0:
            raise GenzooError("fade_kimg and stab_kimg must be positive (thousands of images)")
        if min(self.gp_weight, self.drift) < 0:
            raise GenzooError("gp_weight and drift must be >= 0")
        if self.batch_sizes and min(self.batch_sizes) < 1:
            raise GenzooError(f"batch_sizes={self.batch_sizes}: every entry must be >= 1")


# ----------------------------------------------------------------------------- the schedule

def growth_levels(spec) -> int:
    """Doublings from 4x4 to the data's size: 32x32 -> 3. Sizes 8..1024, square, powers of 2."""
    c, h, w = spec.shape
    if h != w or h not in [2 ** k for k in range(3, 11)]:
        raise GenzooError(f"progressive and style-based GANs need square images of a power-of-two"
                          f" size from 8 to 1024, got {h}x{w}; set image_size (and resize=pad or"
                          f" bilinear)")
    return int(math.log2(h)) - 2


def per_level(values: tuple[int, ...], level: int) -> int:
    return values[min(level, len(values) - 1)]


def growth_state(step: int, levels: int, fade_kimg: float, stab_kimg: float,
                 batches: list[int]) -> tuple[int, float]:
    """(level, alpha) at `step`: level 0 is 4x4; alpha < 1 while level `level` fades in.

    The phases are 4x4 stabilise, then (fade, stabilise) per doubling, the last stabilisation
    open-ended. Each phase lasts its images at that level's batch size (rounded up to steps), so
    alpha rises linearly in images shown (arXiv:1710.10196, sec. 3 and A.1)."""
    phases = [(0, False, stab_kimg)]
    for lv in range(1, levels + 1):
        phases += [(lv, True, fade_kimg), (lv, False, stab_kimg)]
    for lv, fading, kimg in phases:
        n = math.ceil(kimg * 1000 / batches[lv])  # steps of this phase
        if step < n or (lv == levels and not fading):
            return lv, (step / n if fading else 1.0)
        step -= n
    return levels, 1.0


# ----------------------------------------------------------------------------- networks

def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")  # (B, C, 2H, 2W)


class GBlock(nn.Module):
    """Upsample 2x, then two 3x3 convs, each followed by LeakyReLU(0.2) and pixel norm."""

    def __init__(self, cin: int, cout: int, eq: bool, pn: bool):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cout, 3, equalized=eq)
        self.conv2 = EqualizedConv2d(cout, cout, 3, equalized=eq)
        self.norm = PixelNorm() if pn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(_act(self.conv1(upsample(x))))
        return self.norm(_act(self.conv2(x)))  # (B, cout, 2H, 2W)


class ProGANGenerator(nn.Module):
    """(B, nz) -> (B, C, 4 * 2^level, same) at the current level, with the fade-in."""

    def __init__(self, nz: int, chans: list[int], out_ch: int, levels: int, *, eq: bool,
                 pn: bool, progressive: bool):
        super().__init__()
        self.nz, self.c0 = nz, chans[0]
        self.norm = PixelNorm() if pn else nn.Identity()
        # the latent to a 4x4 map: the paper's 4x4 "conv" on a 1x1 input is this dense layer;
        # gain sqrt(2)/4 as in the authors' code, so the 16 outputs per channel start at He's scale
        self.dense = EqualizedLinear(nz, chans[0] * 16, gain=2 ** 0.5 / 4, equalized=eq)
        self.conv = EqualizedConv2d(chans[0], chans[0], 3, equalized=eq)
        self.blocks = nn.ModuleList(GBlock(chans[i], chans[i + 1], eq, pn) for i in range(levels))
        # one toRGB (1x1 conv, linear) per resolution the network passes through
        keep = range(levels + 1) if progressive else [levels]
        self.to_rgb = nn.ModuleDict({str(i): EqualizedConv2d(chans[i], out_ch, 1, gain=1.0,
                                                             equalized=eq) for i in keep})

    def features(self, z: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The last two stages' maps: (level's input map, level's output map)."""
        h = self.norm(_act(self.dense(self.norm(z)))).view(-1, self.c0, 4, 4)  # (B, c0, 4, 4)
        h = self.norm(_act(self.conv(h)))
        prev = h
        for block in self.blocks[:level]:
            prev, h = h, block(h)
        return prev, h

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        prev, h = self.features(z, level)
        new = self.to_rgb[str(level)](h)  # (B, C, S, S)
        if alpha >= 1.0:
            return new  # the new layers alone
        old = upsample(self.to_rgb[str(level - 1)](prev))  # the old network's image, upsampled
        return old + alpha * (new - old)  # linear fade (arXiv:1710.10196, fig. 2)


class DBlock(nn.Module):
    """Two 3x3 convs with LeakyReLU(0.2), then 2x average pooling: (B, cin, S, S) ->
    (B, cout, S/2, S/2)."""

    def __init__(self, cin: int, cout: int, eq: bool):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cin, 3, equalized=eq)
        self.conv2 = EqualizedConv2d(cin, cout, 3, equalized=eq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(_act(self.conv2(_act(self.conv1(x)))), 2)


class ProGANDiscriminator(nn.Module):
    """(B, C, 4 * 2^level, same) -> (B,) scores at the current level, with the fade-in; the
    mirror image of the generator (also StyleGAN's discriminator, arXiv:1812.04948 sec. 2)."""

    def __init__(self, in_ch: int, chans: list[int], levels: int, *, eq: bool, mbstd: bool,
                 group: int, progressive: bool):
        super().__init__()
        keep = range(levels + 1) if progressive else [levels]
        self.from_rgb = nn.ModuleDict({str(i): EqualizedConv2d(in_ch, chans[i], 1, equalized=eq)
                                       for i in keep})
        self.blocks = nn.ModuleList(DBlock(chans[i + 1], chans[i], eq) for i in range(levels))
        self.mbstd = MinibatchStdDev(group) if mbstd else nn.Identity()
        c0 = chans[0]
        self.conv = EqualizedConv2d(c0 + int(mbstd), c0, 3, equalized=eq)
        self.dense = EqualizedLinear(c0 * 16, c0, equalized=eq)
        self.out = EqualizedLinear(c0, 1, gain=1.0, equalized=eq)

    def forward(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        h = _act(self.from_rgb[str(level)](x))
        if level > 0:
            h = self.blocks[level - 1](h)  # (B, chans[level-1], S/2, S/2)
            if alpha < 1.0:  # the old fromRGB on the downsampled image, mixed in
                old = _act(self.from_rgb[str(level - 1)](F.avg_pool2d(x, 2)))
                h = old + alpha * (h - old)
            for block in reversed(self.blocks[:level - 1]):
                h = block(h)
        h = _act(self.conv(self.mbstd(h)))  # (B, c0, 4, 4)
        return self.out(_act(self.dense(h.flatten(1)))).view(-1)  # (B,)


# ----------------------------------------------------------------------------- the model

@register_model("progan")
class ProGAN(GenerativeModel):
    description = "progressive growing GAN (WGAN-GP + drift, minibatch stddev, equalized LR, " \
                  "pixel norm; each a switch)"
    Config = ProGANConfig
    ema_modules = ("generator",)

    def __init__(self, cfg: ProGANConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        self.levels = growth_levels(spec)
        chans = [per_level(cfg.channels, i) for i in range(self.levels + 1)]
        c = spec.shape[0]
        self.objective = get_gan_loss(cfg.loss)
        self.generator = ProGANGenerator(cfg.nz, chans, c, self.levels, eq=cfg.equalized_lr,
                                         pn=cfg.pixel_norm, progressive=cfg.progressive)
        self.discriminator = ProGANDiscriminator(
            c, chans, self.levels, eq=cfg.equalized_lr, mbstd=cfg.minibatch_std,
            group=cfg.mbstd_group, progressive=cfg.progressive)
        # the growth state, saved with the weights so a loaded model samples where it stopped
        self.register_buffer("level", torch.tensor(0 if cfg.progressive else self.levels))
        self.register_buffer("alpha", torch.tensor(1.0))

    # --- growth ------------------------------------------------------------------------------
    def batch_at(self, level: int, drawn: int) -> int:
        return per_level(self.cfg.batch_sizes, level) if self.cfg.batch_sizes else drawn

    def set_progress(self, step: int) -> None:
        self._step = step
        advance_stage(self, None)

    def stage(self) -> tuple[int, float]:
        return int(self.level), float(self.alpha)

    def reals(self, x: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        return fade_reals(x, self.levels, level, alpha)

    # --- training ----------------------------------------------------------------------------
    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("D", ("discriminator",)), Phase("G", ("generator",)))

    def _batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, float]:
        """The step's examples at the current level (a prefix of the drawn batch), the level
        and alpha; the schedule is resolved here, where the drawn batch size is known."""
        x = batch["x"]
        advance_stage(self, x.shape[0])
        lv, a = self.stage()
        return x[:self.batch_at(lv, x.shape[0])], lv, a

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x, lv, a = self._batch(batch)
        z = self.randn(x.shape[0], self.cfg.nz)
        logs = {"res": torch.tensor(4.0 * 2 ** lv), "alpha": torch.tensor(a)}
        if phase == "G":
            out_f = self.discriminator(self.generator(z, lv, a), lv, a)
            return {"loss": self.objective.g(out_f), **logs}
        real = self.reals(x, lv, a)
        with torch.no_grad():
            fake = self.generator(z, lv, a)
        out_r, out_f = self.discriminator(real, lv, a), self.discriminator(fake, lv, a)
        loss = self.objective.d(out_r, out_f)
        logs.update(d_real=out_r.mean().detach(), d_fake=out_f.mean().detach())
        return {"loss": d_regularised(self, loss, real, fake, out_r, logs, lv, a), **logs}

    # --- sampling ----------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.cfg.nz

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images at the data's size for latents z (B, nz): the current resolution's output,
        upsampled by pixel repetition, clamped to [-1, 1]."""
        lv, a = self.stage()
        x = self.generator(z.to(self.device), lv, a)
        if lv < self.levels:
            x = F.interpolate(x, scale_factor=2 ** (self.levels - lv), mode="nearest")
        return x.clamp(-1, 1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        return self.decode(self.randn(n, self.cfg.nz, generator=generator))


def fade_reals(x: torch.Tensor, levels: int, level: int, alpha: float) -> torch.Tensor:
    """Real images at the current resolution, faded like the fakes: during a fade the
    discriminator sees a mix of the image and its 2x-blurred (pooled, upsampled) version."""
    x = F.avg_pool2d(x, 2 ** (levels - level)) if level < levels else x
    if alpha < 1.0:
        blurred = upsample(F.avg_pool2d(x, 2))
        x = blurred + alpha * (x - blurred)
    return x  # (B, C, 4 * 2^level, same)


def advance_stage(model, drawn: int | None) -> None:
    """Set a growing model's `level` and `alpha` buffers (ProGAN, StyleGAN) to the schedule at
    its last set_progress step; with `drawn` unknown (None) the stage waits for the batch."""
    st = stage_at(model.cfg, model.levels, getattr(model, "_step", 0), drawn)
    if st is not None:
        model.level.fill_(st[0])
        model.alpha.fill_(st[1])


def stage_at(cfg, levels: int, step: int, drawn: int | None) -> tuple[int, float] | None:
    """(level, alpha) of a growing model at `step`; None when it depends on the drawn batch
    size and that is not known yet (batch_sizes empty, before the step's batch is drawn)."""
    if not cfg.progressive:
        return levels, 1.0
    if not cfg.batch_sizes and drawn is None:
        return None
    if cfg.batch_sizes and drawn is not None and max(cfg.batch_sizes) > drawn:
        raise GenzooError(f"batch_sizes={cfg.batch_sizes} asks for more examples than "
                          f"train.batch_size={drawn} draws; raise batch_size or lower batch_sizes")
    batches = [per_level(cfg.batch_sizes, i) if cfg.batch_sizes else drawn
               for i in range(levels + 1)]
    return growth_state(step, levels, cfg.fade_kimg, cfg.stab_kimg, batches)


def d_regularised(model, loss, real, fake, out_r, logs, lv, a):
    """D's loss plus the gradient penalty and the drift term, shared with StyleGAN."""
    c = model.cfg

    def D(t):
        return model.discriminator(t, lv, a)
    if c.gp == "wgan-gp":  # Gulrajani et al. 2017 (arXiv:1704.00028)
        gp = penalties.wgan_gp(D, real, fake)
        loss = loss + c.gp_weight * gp
        logs["gp"] = gp.detach()
    elif c.gp == "r1":  # Mescheder et al. 2018 (arXiv:1801.04406): gamma/2 E||grad D(x)||^2
        gp = penalties.r1(D, real)
        loss = loss + c.gp_weight / 2 * gp
        logs["gp"] = gp.detach()
    if c.drift:  # keeps the critic's output from drifting far from 0 (arXiv:1710.10196, A.1)
        drift = out_r.pow(2).mean()
        loss = loss + c.drift * drift
        logs["drift"] = drift.detach()
    return loss
