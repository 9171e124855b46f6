"""Image-to-image translation networks: the ResNet generator (CycleGAN), the U-Net generator
(pix2pix), the PatchGAN discriminator (both), and the history pool of generated images.

Networks know nothing about objectives: cyclegan.py and pix2pix.py combine them with the LSGAN
and conditional-GAN losses of genzoo.losses, the cycle, identity and L1 terms.
"""

from __future__ import annotations

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.layers import MinibatchStdDev, norm2d


def _check_size(h: int, w: int, downs: int, what: str) -> None:
    if h % 2 ** downs or w % 2 ** downs:
        raise GenzooError(f"{what} halves the image {downs} times, so its sides must be "
                          f"multiples of {2 ** downs}; got {h}x{w} (set image_size, e.g. "
                          f"image_size=32 resize=pad, or fewer downsamplings)")


# ------------------------------------------------------------------------------ ResNet generator

class ResBlock(nn.Module):
    """x + [reflect-pad, conv3, norm, ReLU, reflect-pad, conv3, norm](x): the residual block of
    Johnson et al. 2016 (arXiv:1603.08155) used by CycleGAN; reflection padding avoids the
    border artefacts of zero padding (arXiv:1703.10593, appendix 7.2)."""

    def __init__(self, ch: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), norm2d(norm, ch),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), norm2d(norm, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H, W) in [-1, 1]: c7s1-k, `downs` x stride-2 conv (doubling),
    `blocks` residual blocks, `downs` x transposed conv (halving), c7s1-C_out, tanh.

    CycleGAN's generator (arXiv:1703.10593, appendix 7.2: c7s1-64, d128, d256, R256 x 6 or 9,
    u128, u64, c7s1-3) is ngf=64, downs=2, blocks=6 or 9. The convolutions before a norm carry no
    bias: the norm's shift would cancel it."""

    def __init__(self, c_in: int, c_out: int, ngf: int = 64, blocks: int = 6, downs: int = 2,
                 norm: str = "instance"):
        super().__init__()
        self.downs = downs
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, ngf, 7, bias=False),
                                   norm2d(norm, ngf), nn.ReLU(True)]  # (B, ngf, H, W)
        ch = ngf
        for _ in range(downs):  # (B, ch, H, W) -> (B, 2ch, H/2, W/2)
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=False), norm2d(norm, ch * 2),
                       nn.ReLU(True)]
            ch *= 2
        layers += [ResBlock(ch, norm) for _ in range(blocks)]
        for _ in range(downs):  # (B, ch, h, w) -> (B, ch/2, 2h, 2w)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=False),
                       norm2d(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, c_out, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[2] % 2 ** self.downs == 0, \
            f"expected (B, C, H, W) with H a multiple of {2 ** self.downs}, got {tuple(x.shape)}"
        return self.net(x)


# ------------------------------------------------------------------------------ U-Net generator

class UNetGenerator(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H, W) in [-1, 1]: an encoder of `depth` stride-2 4x4 convs
    (C64-C128-C256-C512-..., no norm on the first) and a decoder of transposed convs, each
    decoder level concatenated with the encoder map of the same size (the skips of pix2pix,
    arXiv:1611.07004 sec. 3.2.1 and appendix 6.1.1). Dropout 0.5 in the innermost decoder levels
    is the generator's only noise, at training and test time alike (sec. 3.1)."""

    def __init__(self, c_in: int, c_out: int, ngf: int = 64, depth: int = 5,
                 norm: str = "instance", dropout: float = 0.5, dropout_levels: int = 3):
        super().__init__()
        self.depth = depth
        chans = [min(ngf * 2 ** i, ngf * 8) for i in range(depth)]  # encoder widths
        self.down = nn.ModuleList()
        prev = c_in
        for i, ch in enumerate(chans):  # level i: (B, prev, h, w) -> (B, ch, h/2, w/2)
            inner = i == depth - 1  # the bottleneck: no norm (a 1x1 map at 256 px)
            first = i == 0
            self.down.append(nn.Sequential(
                *([] if first else [nn.LeakyReLU(0.2, True)]),
                nn.Conv2d(prev, ch, 4, 2, 1, bias=first or inner),
                *([] if first or inner else [norm2d(norm, ch)])))
            prev = ch
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # level i: (B, in, h, w) -> (B, out, 2h, 2w)
            c_up_in = chans[i] if i == depth - 1 else chans[i] * 2  # concat with the skip
            last = i == 0
            out = c_out if last else chans[i - 1]
            drop = dropout > 0 and depth - 1 - i < dropout_levels and not last
            self.up.append(nn.Sequential(
                nn.ReLU(True), nn.ConvTranspose2d(c_up_in, out, 4, 2, 1, bias=last),
                *([nn.Tanh()] if last else [norm2d(norm, out)]),
                *([nn.Dropout(dropout)] if drop else [])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[2] % 2 ** self.depth == 0, \
            f"expected (B, C, H, W) with H a multiple of {2 ** self.depth}, got {tuple(x.shape)}"
        skips = []
        h = x
        for d in self.down:
            h = d(h)  # (B, ch_i, H / 2^(i+1), W / 2^(i+1))
            skips.append(h)
        h = self.up[0](skips[-1])  # from the bottleneck
        for up, skip in zip(self.up[1:], reversed(skips[:-1])):
            h = up(torch.cat([h, skip], 1))  # (B, 2 ch_i, h, w): decoder map + encoder skip
        return h


# ------------------------------------------------------------------------------ PatchGAN

class PatchDiscriminator(nn.Module):
    """(B, C, H, W) -> (B, 1, H', W'): one real/fake score per overlapping patch (the PatchGAN
    of pix2pix, arXiv:1611.07004 sec. 3.2.2: C64-C128-C256-C512, 4x4 convs, LeakyReLU 0.2, no
    norm on the first layer). `layers` stride-2 convs, then a stride-1 conv and the 1-channel
    output conv; layers=3 is the paper's 70x70 PatchGAN (receptive_field(3) == 70)."""

    def __init__(self, c_in: int, ndf: int = 64, layers: int = 3, norm: str = "instance",
                 minibatch_std: bool = False):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(c_in, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, layers + 1):  # stride 2 for the first layers - 1, then stride 1
            out = min(ndf * 2 ** i, ndf * 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), norm2d(norm, out),
                     nn.LeakyReLU(0.2, True)]
            ch = out
        if minibatch_std:  # the batch's feature spread as one more channel (ProGAN sec. 3):
            # a generator that gives every input the same look (one kind of patch) shows up
            mods.append(MinibatchStdDev())
            ch += 1
        mods.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, H', W')


def receptive_field(layers: int) -> int:
    """Side of the input patch one PatchGAN output sees: walk back from the output, each k x k
    conv of stride s growing the field r -> (r - 1) * s + k."""
    convs = [(4, 2)] * layers + [(4, 1), (4, 1)]  # (kernel, stride) from input to output
    r = 1
    for k, s in reversed(convs):
        r = (r - 1) * s + k
    return r


# ------------------------------------------------------------------------------ image pool

class ImagePool(nn.Module):
    """A history of generated images for the discriminator (Shrivastava et al. 2017,
    arXiv:1612.07828, sec. 2.3; CycleGAN keeps 50, arXiv:1703.10593 sec. 4).

    query(images): while the pool holds fewer than `size` images, each image is stored and
    returned as is (the fill phase). Once full, each image is, with probability `p`, swapped for
    a uniformly chosen stored image (the stored one is returned, the new one takes its place),
    and otherwise returned as is. The images and the count are registered buffers, so the pool
    is saved with the weights (safetensors) and a resumed run continues with the same history;
    its random draws use the global RNG, whose state the checkpoint also keeps.
    """

    def __init__(self, size: int, shape: tuple[int, ...], p: float = 0.5):
        super().__init__()
        self.size, self.p = size, p
        self.register_buffer("images", torch.zeros(size, *shape))  # (size, C, H, W)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = images.detach().clone()  # (B, C, H, W)
        for i in range(images.shape[0]):
            n = int(self.count)
            if n < self.size:  # fill phase: keep it, return it
                self.images[n] = images[i]
                self.count.fill_(n + 1)
            elif float(torch.rand(())) < self.p:  # swap with a stored image
                j = int(torch.randint(0, self.size, ()))
                out[i] = self.images[j]
                self.images[j] = images[i]
        return out
