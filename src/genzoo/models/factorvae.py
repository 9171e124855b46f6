"""FactorVAE (Kim & Mnih 2018, arXiv:1802.05983): a VAE whose aggregate posterior q(z) is pushed
towards the product of its marginals q_bar(z) = prod_j q(z_j), by a discriminator.

    main phase (encoder, decoder):
        loss = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)) + gamma * TC(z)           (eq. 2)
        TC(z) = KL(q(z) || q_bar(z)) ~ E_q(z)[log D(z) / (1 - D(z))] = E[logit D(z)]  (sec. 3)
    D phase (discriminator):
        logistic regression: z ~ q(z) (label 1) against permute_dims(z) ~ q_bar(z) (label 0)

`permute_dims` (Algorithm 1) shuffles each latent dimension independently across the batch:
every dimension keeps exactly its values (its marginal), while the link between dimensions is
broken, so the permuted vectors are samples of the product of the marginals. The paper permutes
a second batch; this permutes the D phase's own encoding of the step's batch, which gives
samples of the same q_bar(z) without a second batch.

The encoder and decoder are the VAE's networks (genzoo.models.vae.autoencoder_nets); the
discriminator is the paper's MLP (6 layers of 1000 units, LeakyReLU 0.2, appendix A) with one
logit output, trained with Adam lr 1e-4, betas (0.5, 0.9), while the VAE uses train.lr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models import register_model
from genzoo.models.base import GenerativeModel, Phase
from genzoo.models.vae import autoencoder_nets


@dataclass
class FactorVAEConfig:
    arch: Literal["mlp", "conv"] = "conv"  # the VAE's networks: MLP, or conv for images
    latent_dim: int = 10  # size of z (the paper: 10 on dSprites)
    hidden: tuple[int, ...] = (400,)  # MLP hidden layer sizes (decoder mirrors the encoder)
    channels: tuple[int, ...] = (32, 32, 64, 64)  # conv: channels of each stride-2 stage
    fc: int = 128  # conv: width of the fully connected layer after the conv stages (0: none)
    gamma: float = 30.0  # weight of the total-correlation term (the paper: 10 .. 100)
    d_hidden: int = 1000  # discriminator width (the paper: 1000)
    d_layers: int = 6  # discriminator hidden layers (the paper: 6)
    d_lr: float = 1e-4  # discriminator Adam learning rate (the paper: 1e-4, betas 0.5, 0.9)

    def check(self) -> None:
        if self.latent_dim < 2:
            raise GenzooError(f"latent_dim={self.latent_dim}: total correlation needs at least "
                              "2 latent dimensions")
        if self.gamma < 0:
            raise GenzooError(f"gamma={self.gamma} must be >= 0 (0: a plain VAE)")
        if self.d_hidden < 1 or self.d_layers < 1 or not self.d_lr > 0:
            raise GenzooError("d_hidden and d_layers must be >= 1 and d_lr positive")
        if any(h < 1 for h in self.hidden + self.channels) or self.fc < 0:
            raise GenzooError("hidden and channels sizes must be positive")


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, L) -> (B, L): each column shuffled by its own random permutation of the batch
    (Kim & Mnih 2018, Algorithm 1). Column j holds exactly the values of z[:, j]."""
    assert z.dim() == 2, f"permute_dims takes (B, L) codes, got {tuple(z.shape)}"
    B, L = z.shape
    perms = torch.stack([torch.randperm(B, generator=generator) for _ in range(L)], 1)  # (B, L)
    return z.gather(0, perms.to(z.device))


def mlp_discriminator(dim: int, hidden: int, layers: int) -> nn.Sequential:
    """(B, dim) -> (B, 1) logits; LeakyReLU(0.2) hidden layers (FactorVAE appendix A)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(dim if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    mods.append(nn.Linear(hidden, 1))
    return nn.Sequential(*mods)


@register_model("factorvae")
class FactorVAE(GenerativeModel):
    description = "FactorVAE: VAE + a discriminator penalising total correlation (gamma)"
    Config = FactorVAEConfig
    data_kinds = ("image",)

    def __init__(self, cfg: FactorVAEConfig, spec):
        super().__init__(cfg, spec)
        cfg.check()
        L = cfg.latent_dim
        self.encoder, self.decoder = autoencoder_nets(spec, cfg, code_out=2 * L, code_in=L)
        self.discriminator = mlp_discriminator(L, cfg.d_hidden, cfg.d_layers)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("main", ("encoder", "decoder")),
                Phase("D", ("discriminator",), lr=self.cfg.d_lr, betas=(0.5, 0.9)))

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, *shape) -> mean and log-variance of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decoder_out(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits shaped like the data: (B, *shape)."""
        return self.decoder(z).view(z.shape[0], *self.spec.shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder_out(z)) * 2 - 1  # P(pixel on) -> [-1, 1]

    def _posterior_sample(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar  # reparameterised

    def loss(self, batch: dict[str, torch.Tensor], phase: str) -> dict[str, torch.Tensor]:
        x = batch["x"]
        if phase == "D":
            with torch.no_grad():  # the codes are inputs only: no gradient reaches the encoder
                z, _, _ = self._posterior_sample(x)  # (B, L) ~ q(z)
            z_perm = permute_dims(z)  # (B, L) ~ q_bar(z)
            d_joint, d_perm = self.discriminator(z), self.discriminator(z_perm)  # (B, 1) logits
            loss = 0.5 * (F.binary_cross_entropy_with_logits(d_joint, torch.ones_like(d_joint))
                          + F.binary_cross_entropy_with_logits(d_perm, torch.zeros_like(d_perm)))
            acc = 0.5 * ((d_joint > 0).float().mean() + (d_perm < 0).float().mean())
            return {"loss": loss, "d_accuracy": acc.detach()}
        z, mu, logvar = self._posterior_sample(x)
        target = (x + 1) / 2  # [-1, 1] -> Bernoulli targets
        recon = F.binary_cross_entropy_with_logits(self.decoder_out(z), target,
                                                   reduction="none").flatten(1).sum(1)  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)  # (B,), closed form
        # the density-ratio trick: log D/(1-D) is the logit; its mean estimates TC (sec. 3)
        tc = self.discriminator(z).squeeze(1)  # (B,)
        loss = (recon + kl + self.cfg.gamma * tc).mean()
        return {"loss": loss, "recon": recon.mean().detach(), "kl": kl.mean().detach(),
                "tc": tc.mean().detach(), "nelbo": (recon + kl).mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **cond) -> torch.Tensor:
        return self.decode(self.randn(n, self.cfg.latent_dim, generator=generator))
