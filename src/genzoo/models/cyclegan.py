"""CycleGAN: unpaired image-to-image translation with cycle consistency (Zhu et al. 2017,
arXiv:1703.10593).

    G: A -> B, F: B -> A          two ResNet generators (translation_nets.ResnetGenerator)
    D_A, D_B                      two PatchGAN discriminators, D_B judges real B vs G(A)
    G phase:  L_gan(D_B(G(a))) + L_gan(D_A(F(b)))                  fool both discriminators
              + lambda_A |F(G(a)) - a|_1 + lambda_B |G(F(b)) - b|_1    cycle consistency (eq. 2)
              + lambda_id (lambda_B |G(b) - b|_1 + lambda_A |F(a) - a|_1)   identity (sec. 5.2)
              + lambda_inv sum_T |F(T(b)) - F(b)|_1 (and for G)   optional invariances
    D phase:  L_gan(D_B(b), D_B(pool_B(G(a)))) + L_gan(D_A(a), D_A(pool_A(F(b))))

The GAN objective is chosen by name from genzoo.losses (`loss=lsgan`, the paper's choice, sec.
4), applied to every patch output. The discriminators see generated images through a history pool
of 50 (sec. 4; Shrivastava et al. 2017, arXiv:1612.07828), kept in registered buffers so that a
checkpoint holds it and a resumed run is bit-exact. A batch holds both domains: `x` (domain A)
and `x_b` (domain B), unpaired.

`sample(n)` translates stored preview inputs (the first training batch's images, also buffers):
quads (a, G(a), b, F(b)) in order, so a sample grid shows inputs beside their translations.
`translate(x, "AtoB" | "BtoA")` translates any images.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import get_gan_loss
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.translation_nets import ImagePool, PatchDiscriminator, ResnetGenerator

DIRECTIONS = ("AtoB", "BtoA")
PREVIEW = 16  # stored inputs of each domain shown by sample()


def domains(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(domain A images, domain B images) of a two-domain batch."""
    if "x_b" not in batch:
        raise GenzooError("this model needs two domains: give the second with --set "
                          "target=DATASET (e.g. --data mnist5k --set target=mnist-m)")
    return batch["x"], batch["x_b"]


def check_two_domains(spec, model: str, *, paired: bool) -> None:
    """At training time the data's spec names its domains; a one-domain dataset fails here,
    before any work. (A spec rebuilt from a checkpoint carries no extras and is not checked.)"""
    if not spec.extras:
        return
    if "domains" not in spec.extras:
        raise GenzooError(f"{model} needs two image domains; give the second with --set "
                          "target=DATASET (e.g. --data mnist5k --set target=mnist-m)"
                          + (" --set paired=true, or --data edges2mnist" if paired else ""))
    if paired and not spec.extras.get("paired"):
        a, b = spec.extras["domains"]
        raise GenzooError(f"{model} needs paired data (each input with its own target), but "
                          f"{a} -> {b} is unpaired; use --set paired=true (same-index pairs), "
                          "--data edges2mnist or --data paired-folder")


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise GenzooError(f"direction {direction!r} is not valid; choose AtoB or BtoA")


@dataclass
class CycleGANConfig:
    ngf: int = 64  # generator width of the first layer (doubles at each downsampling)
    ndf: int = 64  # discriminator width of the first layer
    blocks: int = 9  # residual blocks per generator (paper: 6 at 128 px, 9 at 256 px)
    downs: int = 2  # stride-2 downsamplings in each generator (image sides: multiples of 2^downs)
    d_layers: int = 3  # PatchGAN stride-2 layers (3: the 70x70 PatchGAN)
    norm: Literal["instance", "batch", "none"] = "instance"  # normalisation of all four networks
    loss: str = "lsgan"  # GAN objective by name (`genzoo list`): lsgan as in the paper
    lambda_cycle: float = 10.0  # weight of the cycle-consistency L1 terms (paper: 10)
    lambda_cycle_b: float | None = None  # weight of the B -> A -> B cycle alone (None: the
    #   same as lambda_cycle); the reference code's separate lambda_A / lambda_B. Lower it when
    #   B holds information A lacks (mnist-m's photo patch), which that cycle can only keep by
    #   hiding it in F(b)
    lambda_identity: float = 0.5  # identity L1 weight, as a fraction of lambda_cycle (0: off)
    identity_follows: Literal["cycle", "lambda_cycle"] = "cycle"  # what G's identity term
    #   scales with: `cycle` as the reference code (G's with lambda_cycle_b, F's with
    #   lambda_cycle); `lambda_cycle`: both with lambda_cycle, so lowering lambda_cycle_b loosens
    #   the B cycle without also loosening G's identity
    pool_size: int = 50  # generated images kept for the discriminators (0: no pool)
    pool_prob: float = 0.5  # chance that a pool query returns a stored image instead
    d_minibatch_std: bool = False  # a minibatch standard-deviation channel before the
    #   discriminators' last conv (ProGAN, arXiv:1710.10196 sec. 3), against a generator that
    #   covers only part of the other domain (G drawing only dark mnist-m patches)
    cycle_noise: float = 0.0  # std of Gaussian noise added to G(a) and F(b) before they are
    #   mapped back in the cycle terms (0: the paper). Noise drowns the faint high-frequency
    #   code in which a generator hides what the other domain lacks (Chu et al. 2017,
    #   arXiv:1712.02950), the defence of Bashkirova, Usman & Saenko (NeurIPS 2019)

    invariance_a: tuple[str, ...] = ()  # content-keeping changes of domain A images that G
    #   must not react to: |G(a) - G(T(a))|_1 for each T named here (INVARIANCES); `auto`: the
    #   changes domain A's dataset declares (build_config writes them out)
    invariance_b: tuple[str, ...] = ()  # the same for F on domain B: |F(b) - F(T(b))|_1.
    #   `invert` for mnist-m, whose blend |digit - patch| is a digit on the inverted patch when
    #   inverted: F must then read dark strokes on a bright patch as it reads bright ones on a
    #   dark patch (a photometric form of GcGAN's consistency, Fu et al. 2019, arXiv:1809.05852)
    lambda_invariance: float = 10.0  # weight of each invariance term
    cycle_modulo_invariance: bool = False  # a translation that must ignore T cannot tell the
    #   other side whether T was applied, so the cycle back to that side is scored against the
    #   nearest of the input's T-variants: min over the group T generates (identity included) of
    #   |G(F(b)) - T(b)|, per image; without it the cycle keeps asking F to encode what the
    #   invariance forbids it to
    cycle_augment: bool = False  # each image goes back through the cycle as a random variant
    #   of itself under the other side's changes: F(T(G(a))) must give a for T drawn from the
    #   group of invariance_b (identity included), and G(T(F(b))) b under invariance_a. F then
    #   learns every colouring of what G draws, with a known answer, even when G draws one kind
    #   of patch (training only)

    def check(self) -> None:
        for k in ("ngf", "ndf", "d_layers"):
            if getattr(self, k) < 1:
                raise GenzooError(f"{k}={getattr(self, k)} must be at least 1")
        if self.cycle_noise < 0:
            raise GenzooError(f"cycle_noise={self.cycle_noise} must be >= 0")
        if self.blocks < 0 or self.downs < 0 or self.pool_size < 0:
            raise GenzooError("blocks, downs and pool_size must be >= 0")
        if min(self.lambda_cycle, self.lambda_identity, self.cycle_weights[1],
               self.lambda_invariance) < 0:
            raise GenzooError("lambda_cycle, lambda_cycle_b, lambda_identity and "
                              "lambda_invariance must be >= 0")
        if not 0 <= self.pool_prob <= 1:
            raise GenzooError(f"pool_prob={self.pool_prob} must be in [0, 1]")
        if get_gan_loss(self.loss).kind == "energy":
            raise GenzooError(f"loss={self.loss} needs an autoencoder discriminator; CycleGAN's "
                              "are PatchGANs: use lsgan, nsgan or hinge")
        for side in ("a", "b"):
            for name in getattr(self, f"invariance_{side}"):
                if name == "auto":
                    raise GenzooError(f"invariance_{side}: 'auto' is resolved from the data when "
                                      "the run's config is built (genzoo.config.build_config)")
                if name not in INVARIANCES:
                    raise GenzooError(f"invariance_{side}: {name!r} is not a known change; "
                                      f"choose from {', '.join(INVARIANCES)}")

    @property
    def cycle_weights(self) -> tuple[float, float]:
        """(weight of A -> B -> A, weight of B -> A -> B)."""
        b = self.lambda_cycle if self.lambda_cycle_b is None else self.lambda_cycle_b
        return self.lambda_cycle, b


# Content-keeping changes of an image in [-1, 1] (B, C, H, W), for the invariance terms.
INVARIANCES = {
    "invert": lambda x: -x,  # negative: 255 - v in pixel units
    "invert-first": lambda x: torch.cat([-x[:, :1], x[:, 1:]], 1),  # the first channel only;
    #   with channel-roll it generates every subset of inverted channels
    "channel-roll": lambda x: x.roll(1, dims=1),  # RGB -> BRG: the same figure, other colours
    "half-contrast": lambda x: 0.5 * x,  # halfway to mid-grey: on mnist-m the same digit on a
    #   patch of half the contrast (255 - p and p move together toward 127.5)
}
ONE_WAY = ("half-contrast",)  # repeating it never comes back: left out of orbits
#   (cycle_augment, cycle_modulo_invariance), used in the invariance terms only


@cache
def group_words(changes: tuple[str, ...], channels: int) -> tuple[tuple[str, ...], ...]:
    """The distinct compositions of the named changes on images of `channels` channels (the
    group they generate, identity first, breadth-first), as sequences of change names. Worked
    out once on a random probe, so a step does not compare batches to find them. Changes in
    ONE_WAY (a contrast cut: repeating it never comes back) are left out."""
    changes = tuple(c for c in changes if c not in ONE_WAY)
    probe = torch.randn(1, channels, 3, 3, generator=torch.Generator().manual_seed(0))
    seen, words, frontier = [probe], [()], [((), probe)]
    while frontier:
        new = []
        for word, v in frontier:
            for name in changes:
                u = INVARIANCES[name](v)
                if not any(torch.equal(u, w) for w in seen):
                    seen.append(u)
                    words.append(word + (name,))
                    new.append((word + (name,), u))
        frontier = new
    return tuple(words)


def orbit(x: torch.Tensor, changes: tuple[str, ...]) -> list[torch.Tensor]:
    """x under every element of the group the named changes generate (group_words): invert +
    channel-roll on RGB gives 6 variants, identity first."""
    out = []
    for word in group_words(tuple(changes), x.shape[1]):
        v = x
        for name in word:
            v = INVARIANCES[name](v)
        out.append(v)
    return out


def cycle_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Mean absolute error |x_rec - x|_1 per pixel (paper eq. 2, averaged)."""
    return (x_rec - x).abs().mean()


def identity_loss(x: torch.Tensor, x_same: torch.Tensor) -> torch.Tensor:
    """|G(b) - b|_1 per pixel: a generator given its own target domain should change nothing
    (paper sec. 5.2, after Taigman et al. 2017, arXiv:1611.02200)."""
    return (x_same - x).abs().mean()


@register_model("cyclegan")
class CycleGAN(GenerativeModel):
    description = "CycleGAN: unpaired translation A <-> B, cycle + identity losses, image pool"
    Config = CycleGANConfig
    ema_modules = ("gen_ab", "gen_ba")
    directions = DIRECTIONS  # translate() goes both ways
    two_domains = True

    @classmethod
    def complete_config(cls, run_cfg) -> None:
        """`auto` in invariance_a / invariance_b -> the changes that data.name / data.target
        declare content-keeping (DatasetEntry.invariances); none for an unregistered or
        two-domain dataset (folders), so a preset's `auto` is safe with the user's own data."""
        from genzoo.data import DATASETS, _ensure_loaded

        _ensure_loaded()
        mc, data = run_cfg.model_cfg, run_cfg.data
        for side, name in (("a", data.name), ("b", data.target)):
            names = getattr(mc, f"invariance_{side}")
            if "auto" in names:
                entry = DATASETS.get(name) if name else None
                declared = entry.invariances if entry else ()
                setattr(mc, f"invariance_{side}",
                        tuple(dict.fromkeys([n for n in names if n != "auto"] + list(declared))))

    def __init__(self, cfg: CycleGANConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        check_two_domains(spec, "cyclegan", paired=False)
        c, h, w = spec.shape
        if h % 2 ** cfg.downs or w % 2 ** cfg.downs:
            raise GenzooError(f"cyclegan with downs={cfg.downs} needs image sides that are "
                              f"multiples of {2 ** cfg.downs}, got {h}x{w}; set image_size or "
                              "downs")
        self.objective = get_gan_loss(cfg.loss)

        def gen():
            return ResnetGenerator(c, c, cfg.ngf, cfg.blocks, cfg.downs, cfg.norm)

        def disc():
            return PatchDiscriminator(c, cfg.ndf, cfg.d_layers, cfg.norm, cfg.d_minibatch_std)
        self.gen_ab, self.gen_ba = gen(), gen()  # G: A -> B, F: B -> A
        self.disc_a, self.disc_b = disc(), disc()  # D_A judges domain A, D_B domain B
        for net in (self.gen_ab, self.gen_ba, self.disc_a, self.disc_b):
            net.apply(_init)
        self.pool_a = ImagePool(cfg.pool_size, spec.shape, cfg.pool_prob)  # past F(b)
        self.pool_b = ImagePool(cfg.pool_size, spec.shape, cfg.pool_prob)  # past G(a)
        self.register_buffer("preview_a", torch.zeros(PREVIEW, *spec.shape))
        self.register_buffer("preview_b", torch.zeros(PREVIEW, *spec.shape))
        self.register_buffer("preview_n", torch.zeros((), dtype=torch.long))
        self._fakes = None  # (batch, G(a), F(b)) of the G phase, reused by the D phase

    @property
    def phases(self) -> tuple[Phase, ...]:
        # G before D, as in the reference code: D learns from the fakes G just made
        return (Phase("G", ("gen_ab", "gen_ba")), Phase("D", ("disc_a", "disc_b")))

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Images of one domain (B, C, H, W) in [-1, 1] -> the other domain's."""
        check_direction(direction)
        return (self.gen_ab if direction == "AtoB" else self.gen_ba)(x)

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        a, b = domains(batch)
        if phase == "G":
            return self._g_loss(batch, a, b)
        return self._d_loss(batch, a, b)

    def _adv(self, disc: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return disc(x).flatten()  # every patch is one judgement: (B * H' * W',)

    def _g_loss(self, batch, a, b) -> dict[str, torch.Tensor]:
        c, obj = self.cfg, self.objective
        if self.training and int(self.preview_n) == 0:
            self._store_preview(a, b)
        fake_b, fake_a = self.gen_ab(a), self.gen_ba(b)  # G(a), F(b)
        adv = obj.g(self._adv(self.disc_b, fake_b)) + obj.g(self._adv(self.disc_a, fake_a))
        if c.loss == "lsgan":  # the paper's E(D(G(a)) - 1)^2, where lsgan_g halves it (Mao)
            adv = 2.0 * adv
        lam_a, lam_b = c.cycle_weights
        back_a = self._augment(self._noisy(fake_b), c.invariance_b)  # G(a), maybe as T(G(a))
        back_b = self._augment(self._noisy(fake_a), c.invariance_a)
        cyc_a = self._cycle(a, self.gen_ba(back_a), c.invariance_a)  # |F(G(a)) - a|
        cyc_b = self._cycle(b, self.gen_ab(back_b), c.invariance_b)  # |G(F(b)) - b|
        loss = adv + lam_a * cyc_a + lam_b * cyc_b
        logs = {"adv": adv.detach(), "cycle": (cyc_a + cyc_b).detach()}
        if c.lambda_identity > 0:
            # as the reference code: G's identity term scales with B's cycle weight, F's with A's
            idt_g, idt_f = identity_loss(b, self.gen_ab(b)), identity_loss(a, self.gen_ba(a))
            lam_g = lam_b if c.identity_follows == "cycle" else c.lambda_cycle
            loss = loss + c.lambda_identity * (lam_g * idt_g + lam_a * idt_f)
            logs["identity"] = (idt_g + idt_f).detach()
        inv = self._invariance(a, b, fake_b, fake_a)
        if inv is not None:
            loss = loss + c.lambda_invariance * inv
            logs["invariance"] = inv.detach()
        self._fakes = (batch["x"], fake_b.detach(), fake_a.detach())
        return {"loss": loss, **logs}

    def _invariance(self, a, b, fake_b, fake_a) -> torch.Tensor | None:
        """Sum over the configured changes T of |G(T(a)) - G(a)| and |F(T(b)) - F(b)| (per
        pixel means); both translations get gradients. None when no change is configured."""
        terms = [(self.gen_ab(INVARIANCES[t](a)) - fake_b).abs().mean()
                 for t in self.cfg.invariance_a]
        terms += [(self.gen_ba(INVARIANCES[t](b)) - fake_a).abs().mean()
                  for t in self.cfg.invariance_b]
        return torch.stack(terms).sum() if terms else None

    def _cycle(self, x: torch.Tensor, x_rec: torch.Tensor, changes: tuple[str, ...]):
        """cycle_loss, or with cycle_modulo_invariance the mean over images of the smallest
        per-image L1 to any variant of x in the group the changes generate."""
        if not (self.cfg.cycle_modulo_invariance and changes):
            return cycle_loss(x, x_rec)
        errs = torch.stack([(x_rec - v).abs().flatten(1).mean(1)
                            for v in orbit(x, changes)])  # (variants, B)
        return errs.min(0).values.mean()

    def _augment(self, x: torch.Tensor, changes: tuple[str, ...]) -> torch.Tensor:
        """With cycle_augment (training only): each image replaced by a uniformly drawn member
        of its orbit under `changes` (global RNG, so a resumed run draws the same)."""
        if not (self.cfg.cycle_augment and changes and self.training):
            return x
        variants = torch.stack(orbit(x, changes))  # (V, B, C, H, W)
        pick = torch.randint(len(variants), (x.shape[0],)).to(x.device)
        return variants[pick, torch.arange(x.shape[0], device=x.device)]

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        """x plus N(0, cycle_noise^2) per pixel, in training only (the cycle's input)."""
        if self.cfg.cycle_noise == 0 or not self.training:
            return x
        return x + self.cfg.cycle_noise * torch.randn_like(x)

    def _d_loss(self, batch, a, b) -> dict[str, torch.Tensor]:
        obj = self.objective
        if self._fakes is not None and self._fakes[0] is batch["x"]:
            _, fake_b, fake_a = self._fakes  # made by this step's G phase
        else:  # D called on its own (tests, a D-only step): make them now
            with torch.no_grad():
                fake_b, fake_a = self.gen_ab(a), self.gen_ba(b)
        self._fakes = None
        fake_b, fake_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
        out_rb, out_fb = self._adv(self.disc_b, b), self._adv(self.disc_b, fake_b)
        out_ra, out_fa = self._adv(self.disc_a, a), self._adv(self.disc_a, fake_a)
        # lsgan_d is the paper's objective halved, which the paper does "to slow down the rate
        # at which D learns" (sec. 7.1); under Adam a constant factor changes nothing anyway
        loss_b, loss_a = obj.d(out_rb, out_fb), obj.d(out_ra, out_fa)
        return {"loss": loss_a + loss_b, "d_a": loss_a.detach(), "d_b": loss_b.detach(),
                "d_real": 0.5 * (out_ra.mean() + out_rb.mean()).detach(),
                "d_fake": 0.5 * (out_fa.mean() + out_fb.mean()).detach()}

    @torch.no_grad()
    def _store_preview(self, a: torch.Tensor, b: torch.Tensor) -> None:
        k = min(PREVIEW, a.shape[0], b.shape[0])
        idx = torch.arange(PREVIEW) % k  # repeat the first k when the batch is smaller
        self.preview_a.copy_(a[idx.to(a.device)])
        self.preview_b.copy_(b[idx.to(b.device)])
        self.preview_n.fill_(k)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               x: torch.Tensor | None = None, direction: str = "AtoB", **cond) -> torch.Tensor:
        """With `x`: its translations (`direction`). Without: n images in quads (a, G(a), b,
        F(b)) of the stored preview inputs (the first training batch), deterministic."""
        if x is not None:
            return self.translate(x.to(self.device), direction)
        q = -(-n // 4)  # quads needed
        idx = torch.arange(q, device=self.device) % PREVIEW
        a, b = self.preview_a[idx], self.preview_b[idx]  # (q, C, H, W)
        quads = torch.stack([a, self.gen_ab(a), b, self.gen_ba(b)], 1)  # (q, 4, C, H, W)
        return quads.flatten(0, 1)[:n]  # (n, C, H, W)


def _init(m: nn.Module) -> None:
    """N(0, 0.02) weights as in the reference code (and DCGAN); norm scales N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


__all__ = ["INVARIANCES", "CycleGAN", "CycleGANConfig", "check_two_domains", "cycle_loss",
           "domains", "identity_loss", "orbit"]
