"""GANs: one model for the whole loss zoo and the training tricks, on MLP or DCGAN networks.

    D phase (every step):        D learns real vs fake with the chosen objective (+ penalty)
    G phase (every n_critic):    G learns to fool D

The objective comes from genzoo.losses by name (`loss=`); conditional variants (cgan, acgan,
infogan) add labels or codes; the tricks are config switches. Presets (`genzoo train wgan-gp`)
set each paper's own hyper-parameters. Data scale: `data_scale` divides the data before the
networks and multiplies samples after, so samples and metrics stay in the dataset's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.losses import GAN_LOSSES, get_gan_loss, penalties
from genzoo.losses import gan as L
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.gan_nets import (
    AutoencoderDiscriminator,
    DCGANBody,
    DCGANGenerator,
    Discriminator,
    MLPBody,
    MLPGenerator,
    dcgan_init,
)

Norm = Literal["batch", "instance", "layer", "none"]
Opt = Literal["adam", "adamw", "sgd", "rmsprop"]


@dataclass
class GANConfig:
    # --- networks
    arch: Literal["dcgan", "mlp"] = "dcgan"  # conv DCGAN for images, MLP for 2-D points
    nz: int = 100  # latent size
    ngf: int = 64  # dcgan: generator width
    ndf: int = 64  # dcgan: discriminator width
    hidden: int = 256  # mlp: hidden width
    layers: int = 3  # mlp: hidden layers in G and in D
    norm_g: Norm = "batch"  # generator normalisation (mlp: batch, layer or none)
    norm_d: Norm = "batch"  # discriminator normalisation; none/layer suit gradient penalties
    act_g: Literal["relu", "leaky"] = "relu"  # leaky: LeakyReLU(0.2) everywhere
    up: Literal["transposed", "pixelshuffle"] = "transposed"  # dcgan G upsampling
    down: Literal["strided", "avgpool"] = "strided"  # dcgan D downsampling
    g_output: Literal["auto", "tanh", "linear"] = "auto"  # auto: tanh for images, linear points
    spectral_norm: bool = False  # spectral normalisation of D's layers
    minibatch: Literal["none", "stddev", "discrimination"] = "none"  # minibatch layer in D
    pack: int = 1  # PacGAN: D judges `pack` samples at once (arXiv:1712.04086)
    # --- objective
    loss: str = "nsgan"  # objective by name; `genzoo list` shows the zoo
    # gradient penalty, usable with any loss; auto: the one that defines the loss (wgan-gp,
    # dragan), none otherwise
    gp: Literal["auto", "none", "wgan-gp", "dragan", "r1"] = "auto"
    gp_weight: float = 10.0  # lambda of WGAN-GP/DRAGAN; gamma of R1 (applied as gamma/2)
    clip: float | None = None  # clip D's weights to [-clip, clip] after each step; None: 0.01
    #                            for wgan (its Lipschitz constraint), off otherwise
    n_critic: int = 1  # D steps per G step
    # G's step at step t uses the fakes D saw at step t, made once with G's graph kept (the
    # DCGAN reference loop); false: G draws fresh noise (one more G forward per G step)
    reuse_fakes: bool = False
    # --- tricks
    latent: Literal["gaussian", "sphere"] = "gaussian"  # sphere: z normalised to radius sqrt(nz)
    d_batch: Literal["separate", "mixed"] = "separate"  # real and fake through D's norm apart
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (BCE losses)
    label_flip: float = 0.0  # probability of swapping a real/fake target (BCE losses)
    replay: int = 0  # experience replay: buffer of past fakes (0: off)
    replay_prob: float = 0.5  # fraction of each fake batch drawn from the buffer
    instance_noise: float = 0.0  # std of Gaussian noise on D's inputs, decays to 0 ...
    instance_noise_steps: int = 0  # ... linearly over this many steps (0: constant)
    feature_matching: bool = False  # G matches D's mean features of real data (Salimans 2016)
    data_scale: float = 1.0  # networks see data / data_scale
    lr_d: float | None = None  # D's learning rate (None: train.lr)
    lr_g: float | None = None  # G's learning rate (None: train.lr)
    opt_d: Opt | None = None  # D's optimizer (None: train.optimizer)
    opt_g: Opt | None = None  # G's optimizer (None: train.optimizer)
    # --- loss-specific
    margin: float = 10.0  # ebgan: energy margin m
    pt_weight: float = 0.1  # ebgan: pulling-away term weight
    began_gamma: float = 0.5  # began: diversity ratio gamma
    began_lambda_k: float = 0.001  # began: learning rate of k_t
    code_dim: int = 64  # ebgan/began: autoencoder code size
    aux_weight: float = 1.0  # acgan: classification loss weight
    embed_dim: int = 16  # cgan/acgan: label embedding size
    n_cat: int = 10  # infogan: categories of the categorical code
    n_cont: int = 2  # infogan: continuous codes ~ U(-1, 1)
    info_weight: float = 1.0  # infogan: mutual-information term lambda

    def check(self) -> None:
        if self.loss not in GAN_LOSSES:
            get_gan_loss(self.loss)  # raises with the choices
        ints = {"nz": self.nz, "ngf": self.ngf, "ndf": self.ndf, "hidden": self.hidden,
                "layers": self.layers, "pack": self.pack, "n_critic": self.n_critic,
                "code_dim": self.code_dim, "embed_dim": self.embed_dim}
        for k, v in ints.items():
            if v < 1:
                raise GenzooError(f"{k}={v} must be at least 1")
        for k in ("label_smoothing", "label_flip", "replay_prob"):
            if not 0 <= getattr(self, k) < 1:
                raise GenzooError(f"{k}={getattr(self, k)} must be in [0, 1)")
        if min(self.gp_weight, self.clip or 0.0, self.instance_noise, self.replay,
               self.margin) < 0:
            raise GenzooError("gp_weight, clip, instance_noise, replay and margin must be >= 0")
        if self.data_scale <= 0:
            raise GenzooError(f"data_scale={self.data_scale} must be positive")
        kind = GAN_LOSSES[self.loss].kind
        if (self.label_smoothing or self.label_flip) and self.loss not in BCE_LOSSES:
            raise GenzooError(f"label_smoothing/label_flip apply to the BCE losses "
                              f"({', '.join(sorted(BCE_LOSSES))}), not {self.loss}")
        if self.replay and self.loss in ("cgan", "acgan"):
            raise GenzooError("replay keeps past images without their labels, so it cannot be "
                              f"combined with {self.loss}; use it with unconditional losses")
        if kind == "energy" and (self.minibatch != "none" or self.feature_matching):
            raise GenzooError(f"{self.loss} has an autoencoder discriminator; minibatch layers "
                              "and feature matching need a classifier discriminator")


    @property
    def penalty(self) -> str:
        """The gradient penalty in force ('auto' resolved)."""
        if self.gp != "auto":
            return self.gp
        return self.loss if self.loss in ("wgan-gp", "dragan") else "none"

    @property
    def weight_clip(self) -> float:
        """The weight-clipping bound in force (None resolved)."""
        if self.clip is not None:
            return self.clip
        return 0.01 if self.loss == "wgan" else 0.0


BCE_LOSSES = {"nsgan", "gan", "dragan", "cgan", "acgan", "infogan"}


@register_model("gan")
class GAN(GenerativeModel):
    description = "GAN with the whole loss zoo and training tricks (DCGAN or MLP networks)"
    Config = GANConfig
    data_kinds = ("image", "points")
    ema_modules = ("generator",)

    def __init__(self, cfg: GANConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        self.objective = get_gan_loss(cfg.loss)
        self.num_classes = spec.num_classes
        if cfg.loss in ("cgan", "acgan") and not spec.num_classes:
            raise GenzooError(f"{cfg.loss} needs a labelled dataset (digits, mnist5k, ...)")
        if cfg.arch == "dcgan" and spec.kind != "image":
            raise GenzooError("arch=dcgan needs image data; use arch=mlp for 2-D points")
        is_img = spec.kind == "image"
        cond_g = cfg.embed_dim if cfg.loss in ("cgan", "acgan") else 0
        codes = cfg.n_cat + cfg.n_cont if cfg.loss == "infogan" else 0
        nz_in = cfg.nz + cond_g + codes
        out = cfg.g_output if cfg.g_output != "auto" else ("tanh" if is_img else "linear")
        cond_d = cfg.embed_dim if cfg.loss == "cgan" else 0  # label channels into D
        if cfg.arch == "dcgan":
            c, h, w = spec.shape
            if h != w:
                raise GenzooError(f"arch=dcgan needs square images, got {h}x{w}; set image_size")
            self.generator = DCGANGenerator(nz_in, cfg.ngf, c, h, norm=cfg.norm_g,
                                            act=cfg.act_g, up=cfg.up, output=out)

            def body(in_ch):
                return DCGANBody(in_ch, cfg.ndf, h, norm=cfg.norm_d, down=cfg.down,
                                 sn=cfg.spectral_norm, minibatch_std=cfg.minibatch == "stddev")
            d_in = (c + cond_d) * cfg.pack
        else:
            self.generator = MLPGenerator(nz_in, cfg.hidden, cfg.layers, spec.dim,
                                          norm=cfg.norm_g, act=cfg.act_g, output=out)

            def body(d):
                return MLPBody(d, cfg.hidden, cfg.layers, norm=cfg.norm_d, sn=cfg.spectral_norm,
                               minibatch_std=cfg.minibatch == "stddev")
            d_in = (spec.dim + cond_d) * cfg.pack
        if self.objective.kind == "energy":
            # the decoder is part of D: it follows D's normalisation setting
            dec = (DCGANGenerator(cfg.code_dim, cfg.ngf, d_in, spec.shape[1], norm=cfg.norm_d,
                                  output="linear") if cfg.arch == "dcgan" else
                   MLPGenerator(cfg.code_dim, cfg.hidden, cfg.layers, d_in, norm=cfg.norm_d))
            self.discriminator = AutoencoderDiscriminator(body(d_in), dec, cfg.code_dim)
            self.register_buffer("k", torch.zeros(()))  # BEGAN's k_t, saved for exact resume
        else:
            self.discriminator = Discriminator(body(d_in), sn=cfg.spectral_norm,
                                               minibatch_disc=cfg.minibatch == "discrimination")
        f = getattr(self.discriminator, "features", 0)
        if cfg.loss in ("cgan", "acgan"):
            self.embed_g = nn.Embedding(spec.num_classes, cfg.embed_dim)
        if cfg.loss == "cgan":
            self.embed_d = nn.Embedding(spec.num_classes, cfg.embed_dim)
        if cfg.loss == "acgan":
            self.aux = nn.Linear(f, spec.num_classes)  # D's auxiliary classifier head
        if cfg.loss == "infogan":
            self.q_head = nn.Sequential(nn.Linear(f, 128), nn.LeakyReLU(0.2, True),
                                        nn.Linear(128, cfg.n_cat + cfg.n_cont))
        if cfg.replay:
            self.register_buffer("replay_buf", torch.zeros(cfg.replay, *spec.shape))
            self.register_buffer("replay_n", torch.zeros((), dtype=torch.long))
        if cfg.arch == "dcgan":
            self.apply(dcgan_init)
        self.noise_std = cfg.instance_noise

    # --- phases ------------------------------------------------------------------------------
    @property
    def phases(self) -> tuple[Phase, ...]:
        c = self.cfg
        d_mods = ("discriminator",) + tuple(m for m in ("embed_d", "aux") if hasattr(self, m))
        g_mods = ("generator",) + tuple(m for m in ("embed_g", "q_head") if hasattr(self, m))
        return (Phase("D", d_mods, lr=c.lr_d, optimizer=c.opt_d),
                Phase("G", g_mods, interval=c.n_critic, lr=c.lr_g, optimizer=c.opt_g))

    def set_progress(self, step: int) -> None:
        c = self.cfg
        self._step = step
        if c.instance_noise and c.instance_noise_steps:
            self.noise_std = c.instance_noise * max(0.0, 1.0 - step / c.instance_noise_steps)

    def post_step(self, phase: str) -> None:
        c = self.cfg.weight_clip
        if phase == "D" and c > 0:  # WGAN's Lipschitz constraint by weight clipping
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-c, c)

    # --- latents and conditioning ------------------------------------------------------------
    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = self.randn(n, self.cfg.nz, generator=generator)
        if self.cfg.latent == "sphere":  # on the sphere where Gaussian z concentrates
            z = F.normalize(z, dim=1) * self.cfg.nz ** 0.5
        return z

    def codes(self, n: int, generator: torch.Generator | None = None):
        """InfoGAN codes: a categorical index (n,) and continuous codes (n, n_cont) ~ U(-1, 1)."""
        def rand(*s):
            if generator is None:
                return torch.rand(*s, device=self.device)
            return torch.rand(*s, generator=generator).to(self.device)
        cat = (rand(n) * self.cfg.n_cat).long().clamp_(max=self.cfg.n_cat - 1)
        return cat, rand(n, self.cfg.n_cont) * 2 - 1

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None,
                 cat: torch.Tensor | None = None, cont: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """G's output in network space for latents z (and labels or codes)."""
        parts = [z]
        if hasattr(self, "embed_g"):
            parts.append(self.embed_g(y))
        if self.cfg.loss == "infogan":
            parts += [F.one_hot(cat, self.cfg.n_cat).float(), cont]
        return self.generator(torch.cat(parts, 1) if len(parts) > 1 else z)

    def _d_input(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Add label channels (cgan), then pack `pack` examples into one: (B, ...) -> (B/m, ...)."""
        if hasattr(self, "embed_d"):
            e = self.embed_d(y)  # (B, E)
            if x.dim() == 4:  # upsampled to the image size and added as channels
                e = e.view(*e.shape, 1, 1).expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, e], 1)
        m = self.cfg.pack
        if m > 1:
            b = x.shape[0] - x.shape[0] % m
            x = x[:b].reshape(b // m, m * x.shape[1], *x.shape[2:])  # (B/m, m*C, ...)
        if self.noise_std > 0:  # instance noise (Sonderby et al. 2016, arXiv:1610.04490)
            x = x + self.noise_std * torch.randn_like(x)
        return x

    def d_out(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """D's output per (packed) example and its features; energy for autoencoder D's."""
        xin = self._d_input(x, y)
        if self.objective.kind == "energy":
            recon, code = self.discriminator(xin)
            err = (recon - xin).flatten(1)
            energy = err.pow(2).mean(1) if self.cfg.loss == "ebgan" else err.abs().mean(1)
            return energy, code
        feats = self.discriminator.forward_features(xin)
        return self.discriminator.head(feats).view(-1), feats

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's raw output for data-space x (points or images), for plots: (B,)."""
        x = x / self.cfg.data_scale
        if self.cfg.pack > 1:  # judge each point as a pack of copies of itself
            x = x.repeat_interleave(self.cfg.pack, 0)
        return self.d_out(x)[0]

    # --- the objective -----------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        c = self.cfg
        real = batch["x"] / c.data_scale
        b = real.shape[0]
        y = batch.get("y")
        y_fake = cat = cont = None
        if hasattr(self, "embed_g"):
            y_fake = torch.randint(0, self.num_classes, (b,), device=real.device)
        if c.loss == "infogan":
            cat, cont = self.codes(b)
        z = self.latent(b)
        if phase == "D":
            if c.reuse_fakes and getattr(self, "_step", 0) % c.n_critic == 0:
                # G's phase follows in this step: make the fakes once, with G's graph
                fake = self._generate_for_g(batch, z, y_fake, cat, cont).detach()
            else:
                with torch.no_grad():
                    fake = self.generate(z, y_fake, cat, cont)
            if c.replay:
                fake = self._replay(fake)
            return self._d_loss(real, fake, y, y_fake)
        if phase == "G":
            kept, self._kept = getattr(self, "_kept", None), None
            if kept is not None and kept[0] is batch:  # the fakes of this step's D phase
                _, fake, y_fake, cat, cont = kept
            else:
                fake = self.generate(z, y_fake, cat, cont)
            return self._g_loss(real, y, fake, y_fake, cat, cont)
        raise ValueError(f"unknown phase {phase!r}")

    def _generate_for_g(self, batch, z, y_fake, cat, cont) -> torch.Tensor:
        """Fakes with G's autograd graph, kept for the G phase of the same step. The trainer
        froze G's parameters for phase D; they record a graph here and get their gradients in
        phase G (D's update in between does not touch G's saved activations)."""
        g_params = [p for ph in self.phases if ph.name == "G" for p in self.phase_parameters(ph)]
        frozen = [p for p in g_params if not p.requires_grad]
        for p in frozen:
            p.requires_grad_(True)
        try:
            fake = self.generate(z, y_fake, cat, cont)
        finally:
            for p in frozen:
                p.requires_grad_(False)
        self._kept = (batch, fake, y_fake, cat, cont)
        return fake

    def _both(self, real, fake, y, y_fake):
        if self.cfg.d_batch == "mixed":  # one pass: batch norm statistics of a mixed batch
            m = self.cfg.pack  # whole packs of each, so no pack holds both real and fake
            b = real.shape[0] - real.shape[0] % m
            real, fake = real[:b], fake[:b]
            y = None if y is None else y[:b]
            y_fake = None if y_fake is None else y_fake[:b]
            yy = None if y is None or y_fake is None else torch.cat([y, y_fake])
            out, feats = self.d_out(torch.cat([real, fake]), yy if hasattr(self, "embed_d")
                                    else None)
            n = out.shape[0] // 2
            return out[:n], out[n:], feats[:n], feats[n:]
        o_r, f_r = self.d_out(real, y)
        o_f, f_f = self.d_out(fake, y_fake)
        return o_r, o_f, f_r, f_f

    def _d_loss(self, real, fake, y, y_fake) -> dict[str, torch.Tensor]:
        c, obj = self.cfg, self.objective
        out_r, out_f, feat_r, feat_f = self._both(real, fake, y, y_fake)
        logs: dict[str, torch.Tensor] = {}
        if c.loss == "began":
            loss = L.began_d(out_r, out_f, k=self.k.clone())  # k is updated in place below
            with torch.no_grad():
                logs["M"] = L.began_convergence(out_r, out_f, gamma=c.began_gamma)
                self.k.copy_(L.began_k_update(self.k, out_r, out_f, gamma=c.began_gamma,
                                              lambda_k=c.began_lambda_k))
                logs["k"] = self.k.clone()
        elif c.loss == "ebgan":
            loss = L.ebgan_d(out_r, out_f, margin=c.margin)
        elif c.loss in BCE_LOSSES:
            t_real = torch.full_like(out_r, 1.0 - c.label_smoothing)
            t_fake = torch.zeros_like(out_f)
            if c.label_flip:  # swap targets of a random fraction of examples
                t_real = torch.where(torch.rand_like(t_real) < c.label_flip, 0.0, t_real)
                t_fake = torch.where(torch.rand_like(t_fake) < c.label_flip, 1.0, t_fake)
            loss = L.bce_d(out_r, out_f, real_label=t_real, fake_label=t_fake)
        else:
            loss = obj.d(out_r, out_f)
        if c.loss == "acgan":
            aux = F.cross_entropy(self.aux(feat_r), y) + F.cross_entropy(self.aux(feat_f), y_fake)
            loss = loss + c.aux_weight * aux
            logs["aux"] = aux.detach()
        if c.penalty != "none":
            gp = self._penalty(real, fake, y, y_fake)
            loss = loss + gp * (c.gp_weight / 2 if c.penalty == "r1" else c.gp_weight)
            logs["gp"] = gp.detach()
        if obj.kind == "logit":
            logs["d_real"] = torch.sigmoid(out_r).mean().detach()
            logs["d_fake"] = torch.sigmoid(out_f).mean().detach()
        else:
            logs["d_real"], logs["d_fake"] = out_r.mean().detach(), out_f.mean().detach()
        return {"loss": loss, **logs}

    def _penalty(self, real, fake, y, y_fake) -> torch.Tensor:
        c = self.cfg

        def D(x, labels):  # the penalty differentiates D's output w.r.t. its data input
            return self.d_out(x, labels)[0]
        if c.penalty == "wgan-gp":
            same = y if hasattr(self, "embed_d") else None  # interpolate under the real labels
            return penalties.wgan_gp(lambda x: D(x, same), real, fake)
        if c.penalty == "dragan":
            return penalties.dragan(lambda x: D(x, y), real)
        return penalties.r1(lambda x: D(x, y), real)

    def _g_loss(self, real, y, fake, y_fake, cat, cont) -> dict[str, torch.Tensor]:
        c = self.cfg
        out_f, feat_f = self.d_out(fake, y_fake)
        logs: dict[str, torch.Tensor] = {}
        if c.feature_matching:  # match the mean of D's features on real data
            with torch.no_grad():
                feat_r = self.d_out(real, y)[1]
            loss = (feat_r.mean(0) - feat_f.mean(0)).pow(2).sum()
        else:
            loss = self.objective.g(out_f)
        if c.loss == "ebgan" and c.pt_weight:
            pt = L.pulling_away(feat_f)
            loss = loss + c.pt_weight * pt
            logs["pt"] = pt.detach()
        if c.loss == "acgan":
            aux = F.cross_entropy(self.aux(feat_f), y_fake)
            loss = loss + c.aux_weight * aux
            logs["aux"] = aux.detach()
        if c.loss == "infogan":  # lower bound on I(c; G(z, c)): log Q(c|x) for both codes
            q = self.q_head(feat_f)
            info = F.cross_entropy(q[:, :c.n_cat], cat) \
                + 0.5 * (q[:, c.n_cat:] - cont).pow(2).sum(1).mean()
            loss = loss + c.info_weight * info
            logs["info"] = info.detach()
        return {"loss": loss, **logs}

    @torch.no_grad()
    def _replay(self, fake: torch.Tensor) -> torch.Tensor:
        """Experience replay (Shrivastava et al. 2017, arXiv:1612.07828): show D a mix of current
        and past fakes; the buffer keeps a random selection of all fakes seen."""
        size, n = self.cfg.replay, int(self.replay_n)
        out = fake.clone()
        if n > 0:
            use = torch.rand(fake.shape[0], device=fake.device) < self.cfg.replay_prob
            idx = torch.randint(0, min(n, size), (fake.shape[0],), device=fake.device)
            out[use] = self.replay_buf[idx[use]]
        for i in range(fake.shape[0]):  # reservoir sampling over the stream of fakes
            j = n + i if n + i < size else int(torch.randint(0, n + i + 1, ()))
            if j < size:
                self.replay_buf[j] = fake[i]
        self.replay_n.fill_(n + fake.shape[0])
        return out

    @property
    def latent_dim(self) -> int:
        return self.cfg.nz

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Data-space images/points for given latents (labels cycle through the classes; InfoGAN
        codes are fixed to category 0 and zero continuous codes so only z varies)."""
        n = z.shape[0]
        if hasattr(self, "embed_g") and y is None:
            y = torch.arange(n, device=self.device) % self.num_classes
        cat = cont = None
        if self.cfg.loss == "infogan":
            cat = torch.zeros(n, dtype=torch.long, device=self.device)
            cont = torch.zeros(n, self.cfg.n_cont, device=self.device)
        return self.generate(z, y, cat, cont) * self.cfg.data_scale

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               y: torch.Tensor | None = None, **cond) -> torch.Tensor:
        """n samples in data space; labelled models cycle through the classes unless y given."""
        z = self.latent(n, generator)
        if hasattr(self, "embed_g") and y is None:
            y = torch.arange(n, device=self.device) % self.num_classes
        cat = cont = None
        if self.cfg.loss == "infogan":
            cat, cont = self.codes(n, generator)
        return self.generate(z, y, cat, cont) * self.cfg.data_scale
