"""GAN networks: DCGAN-style convolutional and MLP generators and discriminators.

Networks know nothing about objectives. Every switch here is one of the field's training tricks
(normalisation, activations, up/down-sampling, spectral norm, minibatch layers, packing); which
loss trains the networks is chosen in genzoo.losses.

Discriminators are split into a `body` that maps inputs to features (B, F) and a `head` that maps
features to one output per example; auxiliary heads (AC-GAN's classifier, InfoGAN's Q) and
feature matching use the same features.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genzoo.errors import GenzooError
from genzoo.models.layers import MinibatchDiscrimination, MinibatchStdDev, norm1d, norm2d


def dcgan_stages(size: int) -> int:
    """Number of stride-2 stages between 4x4 and size x size (DCGAN sizes 8..128)."""
    if size not in (8, 16, 32, 64, 128):
        raise GenzooError(f"the dcgan networks need square images of 8, 16, 32, 64 or 128 pixels,"
                          f" got {size}; set image_size")
    return int(math.log2(size)) - 2


def _act(kind: str) -> nn.Module:
    return nn.ReLU(True) if kind == "relu" else nn.LeakyReLU(0.2, True)


def _sn(m: nn.Module, on: bool) -> nn.Module:
    # spectral normalisation (Miyato et al. 2018, arXiv:1802.05957): one power iteration per call
    return spectral_norm(m) if on else m


class DCGANGenerator(nn.Module):
    """(B, nz) -> (B, C, S, S). At 32x32, nz=100, ngf=64, batch norm, ReLU, transposed convs this
    is the standard DCGAN generator: 100 -> 256 -> 128 -> 64 -> C with 4x4 kernels."""

    def __init__(self, nz: int, ngf: int, channels: int, size: int, *, norm: str = "batch",
                 act: str = "relu", up: str = "transposed", output: str = "tanh"):
        super().__init__()
        n = dcgan_stages(size)
        ch = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),
                                   norm2d(norm, ch), _act(act)]  # (B, ch, 4, 4)
        for i in range(n):
            last = i == n - 1
            out = channels if last else ch // 2
            if up == "pixelshuffle":  # conv to 4x channels, then rearrange into 2x2 blocks
                layers += [nn.Conv2d(ch, out * 4, 3, 1, 1, bias=last), nn.PixelShuffle(2)]
            else:
                layers.append(nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=False))
            if not last:
                layers += [norm2d(norm, out), _act(act)]
            ch = out
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.nz, 1, 1))  # (B, nz, 1, 1) -> (B, C, S, S)


class DCGANBody(nn.Module):
    """(B, C_in, S, S) -> (B, F) features: strided 4x4 convs (or 3x3 conv + 2x2 average pool),
    LeakyReLU(0.2), no normalisation on the input layer; ends at a 4x4 map, flattened."""

    def __init__(self, in_ch: int, ndf: int, size: int, *, norm: str = "batch",
                 down: str = "strided", sn: bool = False, minibatch_std: bool = False):
        super().__init__()
        n = dcgan_stages(size)
        layers: list[nn.Module] = []
        ch_in, ch = in_ch, ndf
        for i in range(n):
            if down == "avgpool":
                layers += [_sn(nn.Conv2d(ch_in, ch, 3, 1, 1, bias=False), sn), nn.AvgPool2d(2)]
            else:
                layers.append(_sn(nn.Conv2d(ch_in, ch, 4, 2, 1, bias=False), sn))
            if i > 0:
                layers.append(norm2d(norm, ch))
            layers.append(nn.LeakyReLU(0.2, True))
            ch_in, ch = ch, ch * 2
        if minibatch_std:
            layers.append(MinibatchStdDev())
            ch_in += 1
        self.net = nn.Sequential(*layers)
        self.features = ch_in * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)  # (B, ch, 4, 4) -> (B, ch * 16)


class MLPGenerator(nn.Module):
    """(B, nz) -> (B, D) through `layers` hidden layers of width `hidden`."""

    def __init__(self, nz: int, hidden: int, layers: int, out: int, *, norm: str = "none",
                 act: str = "relu", output: str = "linear"):
        super().__init__()
        mods: list[nn.Module] = []
        d = nz
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), norm1d(norm, hidden), _act(act)]
            d = hidden
        mods.append(nn.Linear(d, out))
        if output == "tanh":
            mods.append(nn.Tanh())
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPBody(nn.Module):
    """(B, D_in) -> (B, hidden) features with LeakyReLU(0.2)."""

    def __init__(self, d_in: int, hidden: int, layers: int, *, norm: str = "none",
                 sn: bool = False, minibatch_std: bool = False):
        super().__init__()
        mods: list[nn.Module] = []
        d = d_in
        for i in range(layers):
            mods.append(_sn(nn.Linear(d, hidden), sn))
            if i > 0:
                mods.append(norm1d(norm, hidden))
            mods.append(nn.LeakyReLU(0.2, True))
            d = hidden
        if minibatch_std:
            mods.append(MinibatchStdDev())
            d += 1
        self.net = nn.Sequential(*mods)
        self.features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Discriminator(nn.Module):
    """body -> [minibatch discrimination] -> linear head: one output per example, (B,)."""

    def __init__(self, body: nn.Module, *, sn: bool = False, minibatch_disc: bool = False):
        super().__init__()
        self.body = body
        f = body.features
        self.mbd = MinibatchDiscrimination(f) if minibatch_disc else nn.Identity()
        self.features = f + (self.mbd.n_kernels if minibatch_disc else 0)
        # a linear map of the flattened 4x4 map is the DCGAN paper's final 4x4 valid convolution
        self.head = _sn(nn.Linear(self.features, 1, bias=False), sn)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mbd(self.body(x))  # (B, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)).view(-1)


class AutoencoderDiscriminator(nn.Module):
    """EBGAN/BEGAN discriminator: an autoencoder whose reconstruction error is the energy.

    forward(x) -> (reconstruction shaped like x, code (B, code_dim)).
    """

    def __init__(self, body: nn.Module, decoder: nn.Module, code_dim: int):
        super().__init__()
        self.body = body
        self.to_code = nn.Linear(body.features, code_dim)
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.to_code(self.body(x))  # (B, code_dim)
        return self.decoder(code).view_as(x), code


def dcgan_init(m: nn.Module) -> None:
    """DCGAN initialisation: conv and linear weights N(0, 0.02), norm scales N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
        nn.init.normal_(w, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)) \
            and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
