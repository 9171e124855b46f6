"""Variational autoencoder (Kingma & Welling 2013, arXiv:1312.6114), with beta (Higgins et al.
2017) and KL warm-up (Sonderby et al. 2016, arXiv:1602.02282) as config values; the plain and
the denoising autoencoder (Vincent et al. 2008) are config values of the same model:

    kind=ae                      deterministic code z = mu(x), loss = reconstruction only
    noise=gaussian|masking|salt-pepper, noise_level=p
                                 the encoder sees a corrupted x~, the loss reconstructs the clean x
                                 (a denoising AE with kind=ae; a denoising VAE with kind=vae)

    q(z|x) = N(mu(x), diag sigma(x)^2)          Gaussian encoder (MLP or conv)
    p(z)   = N(0, I)
    p(x|z) = Bernoulli(logits(z)) | N(mu(z), diag sigma^2)
    loss   = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))          (nats per example)

The KL term is analytic; the expectation uses one reparameterised sample z = mu + sigma * eps.
`log_prob` estimates log p(x) by importance sampling with q as the proposal (Burda et al. 2015,
arXiv:1509.00519): log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase

LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEConfig:
    arch: Literal["mlp", "conv"] = "conv"  # MLP for any data; conv for images
    latent_dim: int = 20  # size of z
    hidden: tuple[int, ...] = (400,)  # MLP hidden layer sizes (decoder mirrors the encoder)
    channels: tuple[int, ...] = (32, 64)  # conv: channels of each stride-2 stage
    fc: int = 256  # conv: width of the fully connected layer after the conv stages (0: none)
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"  # likelihood p(x|z)
    beta: float = 1.0  # weight of the KL term (beta-VAE when > 1)
    kl_warmup: int = 0  # steps over which the KL weight rises linearly from 0 to beta
    kind: Literal["vae", "ae"] = "vae"  # ae: plain (deterministic) autoencoder, no KL, no prior
    noise: Literal["none", "gaussian", "masking", "salt-pepper"] = "none"  # input corruption
    noise_level: float = 0.3  # gaussian: std (data units); masking/salt-pepper: probability

    def check(self) -> None:
        if self.latent_dim < 1:
            raise GenzooError(f"latent_dim={self.latent_dim} must be at least 1")
        if self.beta < 0 or self.kl_warmup < 0:
            raise GenzooError("beta and kl_warmup must be >= 0")
        if any(h < 1 for h in self.hidden + self.channels) or self.fc < 0:
            raise GenzooError("hidden and channels sizes must be positive")
        if self.arch == "conv" and not self.channels:
            raise GenzooError("arch=conv needs at least one stage in channels, e.g. 32,64")
        if self.noise != "none" and not self.noise_level > 0:
            raise GenzooError(f"noise_level={self.noise_level} must be positive")
        if self.noise in ("masking", "salt-pepper") and self.noise_level >= 1:
            raise GenzooError(f"noise_level={self.noise_level} is a probability for "
                              f"noise={self.noise}; use a value in (0, 1)")


def corrupt(x: torch.Tensor, noise: str, level: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """The denoising autoencoder's corruption x -> x~ (Vincent et al. 2008; data in [-1, 1]):
    gaussian adds N(0, level^2); masking sets a fraction `level` of the values to the background
    -1 ("zero" in [0, 1] pixels); salt-pepper sets a fraction `level` to -1 or 1 at random."""
    if noise == "none":
        return x

    def rand(*like_shape):
        return torch.rand(like_shape, generator=generator, device=x.device, dtype=x.dtype)

    if noise == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, device=x.device,
                                       dtype=x.dtype)
    hit = rand(*x.shape) < level
    if noise == "masking":
        return torch.where(hit, torch.full_like(x, -1.0), x)
    salt = torch.where(rand(*x.shape) < 0.5, 1.0, -1.0).to(x.dtype)
    return torch.where(hit, salt, x)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out): stride-2 4x4 convolutions halve the size at each stage."""

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...], fc: int, out: int):
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, 4, 2, 1), nn.ReLU()]
            c = ch
        self.conv = nn.Sequential(*layers)
        flat = c * (h >> len(channels)) * (w >> len(channels))
        self.head = _mlp([flat, fc, out]) if fc else nn.Linear(flat, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))  # (B, C'*H'*W') -> (B, out)


class ConvDecoder(nn.Module):
    """(B, latent) -> (B, C, H, W) logits/means: the encoder mirrored with transposed convs."""

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...], fc: int,
                 latent: int):
        super().__init__()
        c, h, w = shape
        self.base = (channels[-1], h >> len(channels), w >> len(channels))
        flat = self.base[0] * self.base[1] * self.base[2]
        self.head = nn.Sequential(_mlp([latent, fc, flat]) if fc else nn.Linear(latent, flat),
                                  nn.ReLU())
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for a, b in zip(rev[:-1], rev[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(rev[-1], c, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.head(z).view(-1, *self.base)  # (B, C', H', W')
        return self.deconv(h)  # (B, C, H, W)


def autoencoder_nets(spec, cfg, code_out: int, code_in: int) -> tuple[nn.Module, nn.Module]:
    """The VAE's encoder (data -> code_out numbers) and decoder (code_in numbers -> data-shaped
    logits/means; flat (B, D) for the MLP), built from a config's arch, hidden, channels and fc.
    Shared by the models that reuse these networks (factorvae, aae) instead of subclassing."""
    if cfg.arch == "conv":
        if spec.kind != "image":
            raise GenzooError("arch=conv needs image data; use arch=mlp for points")
        c, h, w = spec.shape
        k = 2 ** len(cfg.channels)
        if h % k or w % k:
            raise GenzooError(f"arch=conv with {len(cfg.channels)} stages needs image sides "
                              f"divisible by {k}, got {h}x{w}; change channels or image_size")
        return (ConvEncoder(spec.shape, cfg.channels, cfg.fc, code_out),
                ConvDecoder(spec.shape, cfg.channels, cfg.fc, code_in))
    return (nn.Sequential(nn.Flatten(), _mlp([spec.dim, *cfg.hidden, code_out])),
            _mlp([code_in, *reversed(cfg.hidden), spec.dim]))


@register_model("vae")
class VAE(GenerativeModel):
    description = "variational autoencoder (MLP or conv; Bernoulli or Gaussian decoder; beta)"
    Config = VAEConfig
    data_kinds = ("image", "points")

    def __init__(self, cfg: VAEConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        L, D = cfg.latent_dim, spec.dim
        if cfg.decoder == "bernoulli" and spec.kind != "image":
            raise GenzooError("decoder=bernoulli models pixel intensities; use decoder=gaussian "
                              f"for {spec.kind} data")
        self.encoder, self.decoder = autoencoder_nets(spec, cfg, code_out=2 * L, code_in=L)
        if cfg.decoder == "gaussian":
            # one learned log standard deviation per data dimension, shared across z
            self.log_sigma = nn.Parameter(torch.zeros(D))
        self.kl_weight = cfg.beta if cfg.kl_warmup == 0 else 0.0
        if cfg.kind == "ae":
            # an AE has no prior: samples come from a Gaussian fitted to the codes of the training
            # data (ex-post density estimation, Ghosh et al. 2019, arXiv:1903.12436), kept as a
            # running mean/variance of the batches' codes
            self.register_buffer("code_mean", torch.zeros(L))
            self.register_buffer("code_var", torch.ones(L))

    @property
    def phases(self) -> tuple[Phase, ...]:
        extra = ("log_sigma",) if self.cfg.decoder == "gaussian" else ()
        return (Phase("main", ("encoder", "decoder", *extra)),)

    def set_progress(self, step: int) -> None:
        if self.cfg.kl_warmup:
            self.kl_weight = self.cfg.beta * min(1.0, step / self.cfg.kl_warmup)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    # --- encoder / decoder ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, *shape) -> mean and log-variance of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decoder_out(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits or Gaussian means, shaped like the data: (B, *shape)."""
        return self.decoder(z).view(z.shape[0], *self.spec.shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z) in data space."""
        out = self.decoder_out(z)
        if self.cfg.decoder == "bernoulli":
            return torch.sigmoid(out) * 2 - 1  # P(pixel on) in [0, 1] -> [-1, 1]
        return out.clamp(-1, 1) if self.spec.kind == "image" else out

    def log_px_z(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over data dimensions, (B,)."""
        if self.cfg.decoder == "bernoulli":
            target = (x + 1) / 2  # data space [-1, 1] -> Bernoulli targets [0, 1]
            return -F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1)\
                .sum(1)
        ls = self.log_sigma.view(1, *self.spec.shape)
        ll = -0.5 * (((x - out) / ls.exp()) ** 2 + 2 * ls + LOG_2PI)
        return ll.flatten(1).sum(1)

    @staticmethod
    def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, diag e^logvar) || N(0, I)) in closed form, summed over latents: (B,)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)

    # --- the contract ---------------------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mu, logvar = self.encode(corrupt(x, self.cfg.noise, self.cfg.noise_level))
        if self.cfg.kind == "ae":
            recon = -self.log_px_z(x, self.decoder_out(mu))  # (B,), the clean x as target
            with torch.no_grad():  # the codes' Gaussian for sampling (momentum 0.01)
                self.code_mean.lerp_(mu.mean(0), 0.01)
                self.code_var.lerp_(mu.var(0, unbiased=False), 0.01)
            return {"loss": recon.mean(), "recon": recon.mean().detach()}
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
        recon = -self.log_px_z(x, self.decoder_out(z))  # (B,)
        kl = self.kl_divergence(mu, logvar)  # (B,)
        loss = (recon + self.kl_weight * kl).mean()
        return {"loss": loss, "recon": recon.mean().detach(), "kl": kl.mean().detach(),
                "nelbo": (recon + kl).mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        z = self.randn(n, self.cfg.latent_dim, generator=generator)
        if self.cfg.kind == "ae":
            z = self.code_mean + z * self.code_var.sqrt()
        if self.spec.kind == "image":
            return self.decode(z)  # images are shown as decoder means, as is customary
        mean = self.decoder_out(z)  # points: draw from p(x|z), the spread is part of the model
        return mean + self.randn(*mean.shape, generator=generator) * self.log_sigma.exp() \
            if self.cfg.decoder == "gaussian" else self.decode(z)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, k: int = 500, chunk: int = 100,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-sampled log p(x) in nats, (B,); exact as k -> infinity, a bound below."""
        if self.cfg.kind == "ae":
            raise GenzooError("a plain autoencoder (kind=ae) defines no likelihood; nll needs "
                              "kind=vae")
        B = x.shape[0]
        mu, logvar = self.encode(x)
        std = (0.5 * logvar).exp()
        parts = []
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            eps = self.randn(c, B, self.cfg.latent_dim, generator=generator)  # (c, B, L)
            z = mu + eps * std
            log_q = (-0.5 * (eps.pow(2) + LOG_2PI) - 0.5 * logvar).sum(-1)  # (c, B)
            log_pz = (-0.5 * (z.pow(2) + LOG_2PI)).sum(-1)  # (c, B)
            out = self.decoder_out(z.reshape(c * B, -1))  # (c*B, *shape)
            xr = x.unsqueeze(0).expand(c, *x.shape).reshape(c * B, *x.shape[1:])
            log_px = self.log_px_z(xr, out).view(c, B)
            parts.append(log_px + log_pz - log_q)
        log_w = torch.cat(parts, 0)  # (k, B)
        return torch.logsumexp(log_w, 0) - math.log(k)
