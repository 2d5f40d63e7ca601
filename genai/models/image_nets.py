"""Bodies for colour images of 32-64 px: DCGAN-style up- and down-sampling stacks (the GAN's
generator and critic, the VAE's decoder and encoder) and a small UNet (the DDPM's noise
predictor). ``width`` is the base channel count, ``depth`` the stride-2 stages (a UNet's levels
below full resolution); the DCGAN stacks' channels double per stage up to 8 x width, the UNet's
are 1x width at full resolution and 2x below (as DDPM's 32 px model)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai.models.blocks import (
    ConvDecoder,
    ConvEncoder,
    conv_stages,
    image_dims,
    sinusoidal_embedding,
)

MAX_MULT = 8  # channels stop doubling at 8 x width


def stage_channels(width: int, stages: int) -> list[int]:
    """Channels at full resolution (index 0) and after each stride-2 stage."""
    return [width * min(2**i, MAX_MULT) for i in range(stages + 1)]


def groups(channels: int) -> int:
    """GroupNorm groups: 8 when they divide the channels (Wu & He 2018 use 32 at wider nets)."""
    return math.gcd(channels, 8)


class DcganUp(nn.Module):
    """(B, in_dim) -> (B, *shape): a linear stem to the lowest resolution, then per stage a
    4x4 transposed conv doubling H and W, BatchNorm and ReLU (Radford et al. 2016,
    arXiv:1511.06434); a 3x3 conv to the image's channels at full resolution."""

    def __init__(self, in_dim: int, shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        c, h, w = image_dims(shape, "model.arch.body: 'dcgan'")
        stages = conv_stages(shape, depth)
        chans = stage_channels(width, stages)
        self.shape, self.top = shape, (chans[-1], h // 2**stages, w // 2**stages)
        self.stem = nn.Sequential(
            nn.Linear(in_dim, math.prod(self.top)),
            nn.Unflatten(1, self.top),
            nn.BatchNorm2d(chans[-1]),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i in range(stages, 0, -1):
            layers += [
                nn.ConvTranspose2d(chans[i], chans[i - 1], 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(chans[i - 1]),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(chans[0], c, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.stem(z)).reshape(z.shape[0], *self.shape)  # (B, *shape)


class DcganDown(nn.Module):
    """(B, *shape) -> (B, out_dim): a 3x3 conv at full resolution, then per stage a 4x4 stride-2
    conv and LeakyReLU(0.2), with GroupNorm after every stage but the first (a critic under a
    gradient penalty must not mix a batch's rows, so no BatchNorm); a linear head over the
    lowest resolution. The GAN's critic and the VAE's encoder."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int, depth: int):
        super().__init__()
        c, h, w = image_dims(shape, "model.arch.body: 'dcgan'")
        stages = conv_stages(shape, depth)
        chans = stage_channels(width, stages)
        self.c = c
        layers: list[nn.Module] = [nn.Conv2d(c, chans[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for i in range(stages):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1))
            if i > 0:
                layers.append(nn.GroupNorm(groups(chans[i + 1]), chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * (h // 2**stages) * (w // 2**stages), out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], self.c, *x.shape[-2:])  # (B, C, H, W)
        return self.head(self.body(x).flatten(1))


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv; the time embedding added; again; a (1x1) skip."""

    def __init__(self, cin: int, cout: int, tdim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups(cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Self-attention over the H x W positions (one head), with a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        att = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.out(att.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps(x_t, t) for images (Ho et al. 2020, arXiv:2006.11239, made small): a residual block
    per level on the way down, stride-2 convs between levels, two blocks (attention between
    them, ``attention``) at the lowest resolution, and on the way up a block per level over the
    upsampled features and the skip from the same level. The time embedding (sinusoidal, then
    an MLP) enters every block."""

    def __init__(self, shape: tuple[int, ...], width: int, depth: int, attention: bool = False):
        super().__init__()
        self.c = image_dims(shape, "model.arch.body: 'unet'")[0]
        levels = conv_stages(shape, depth)
        chans = [width * min(2**i, 2) for i in range(levels + 1)]  # 1x, 2x, 2x, ... as DDPM
        tdim = 4 * width
        self.twidth = width + width % 2  # a sinusoidal embedding has an even size
        self.time = nn.Sequential(nn.Linear(self.twidth, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inp = nn.Conv2d(self.c, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        cin = width
        for i in range(levels + 1):
            self.down.append(ResBlock(cin, chans[i], tdim))
            cin = chans[i]
            if i < levels:
                self.pool.append(nn.Conv2d(cin, cin, 3, stride=2, padding=1))
        self.mid1 = ResBlock(cin, cin, tdim)
        self.attn = Attention(cin) if attention else nn.Identity()
        self.mid2 = ResBlock(cin, cin, tdim)
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i in range(levels, -1, -1):
            self.up.append(ResBlock(cin + chans[i], chans[i], tdim))
            cin = chans[i]
            if i > 0:
                self.unpool.append(nn.Conv2d(cin, chans[i - 1], 3, padding=1))
                cin = chans[i - 1]
        self.out = nn.Sequential(
            nn.GroupNorm(groups(cin), cin), nn.SiLU(), nn.Conv2d(cin, self.c, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)  # starts predicting eps = 0, as DDPM's code does
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time(sinusoidal_embedding(t, self.twidth))  # (B, 4 width)
        h = self.inp(x.reshape(x.shape[0], self.c, *x.shape[-2:]))  # (B, width, H, W)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.unpool):
                h = self.unpool[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(h).reshape(x.shape)


# model.arch.body -> (the image -> vector stack, the vector -> image stack) of a VAE and a GAN;
# each down stack is built as Down(shape, out_dim, width, depth), each up as Up(in_dim, shape, ...)
STACKS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "conv": (ConvEncoder, ConvDecoder),
    "dcgan": (DcganDown, DcganUp),
}
