"""Building blocks shared by the families: MLP and small conv bodies, time embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


def mlp(
    in_dim: int, out_dim: int, width: int, depth: int, act: type[nn.Module] | str = nn.SiLU
) -> nn.Sequential:
    """in -> [Linear, act] x depth -> Linear -> out (``act`` a module class or its name)."""
    act = ACTIVATIONS[act] if isinstance(act, str) else act
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def image_dims(
    shape: tuple[int, ...], body: str = "model.arch.body: 'conv'"
) -> tuple[int, int, int]:
    """(C, H, W) of an image shape given as (H, W) or (C, H, W); ``body`` names the choice
    that needs it in the error."""
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    raise ValueError(f"{body} needs image data of shape [H, W] or [C, H, W]; got {list(shape)}")


def conv_stages(shape: tuple[int, ...], depth: int) -> int:
    """How many stride-2 stages fit: at most ``depth``, halving H and W while they stay even."""
    _, h, w = image_dims(shape)
    stages = 0
    while stages < depth and h % 2 == 0 and w % 2 == 0 and min(h, w) > 2:
        h, w, stages = h // 2, w // 2, stages + 1
    return stages


class ConvEncoder(nn.Module):
    """(B, *shape) image -> (B, out_dim): conv stages halving resolution, then a linear head."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int, depth: int):
        super().__init__()
        c, h, w = image_dims(shape)
        self.c = c
        layers: list[nn.Module] = [nn.Conv2d(c, width, 3, padding=1), nn.SiLU()]
        ch = width
        for _ in range(conv_stages(shape, depth)):
            layers += [nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), nn.SiLU()]
            ch, h, w = ch * 2, h // 2, w // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(ch * h * w, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], self.c, *x.shape[-2:])  # (B, C, H, W)
        return self.head(self.body(x).flatten(1))


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, *shape) image: a linear stem, then transposed convs doubling size."""

    def __init__(self, in_dim: int, shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        c, h, w = image_dims(shape)
        stages = conv_stages(shape, depth)
        self.shape = shape
        self.ch, self.h0, self.w0 = width * 2**stages, h // 2**stages, w // 2**stages
        self.stem = nn.Linear(in_dim, self.ch * self.h0 * self.w0)
        layers: list[nn.Module] = [nn.SiLU()]
        ch = self.ch
        for _ in range(stages):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1), nn.SiLU()]
            ch //= 2
        layers.append(nn.Conv2d(ch, c, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        x = self.stem(z).reshape(z.shape[0], self.ch, self.h0, self.w0)
        return self.body(x).reshape(z.shape[0], *self.shape)  # (B, *shape)


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """Transformer-style embedding of timesteps t (B,) -> (B, dim) (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
