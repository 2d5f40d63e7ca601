"""PixelCNN (van den Oord et al. 2016, arXiv:1601.06759, made small) over quantised colour pixels:
pixels in raster order, a pixel's channels one after another.

A masked 7x7 conv that sees only the pixels before each one (type A), then ``depth`` residual
masked 3x3 convs that also see the pixel's own features (type B): the trunk's features at a
pixel depend on the pixels before it alone. A head per channel turns them, with the values of
the pixel's earlier channels, into that channel's ``bins`` logits (1x1 convs): the channels of
one pixel are modelled in order without masking the trunk by channel.

Sampling runs the trunk on the pixel's receptive field only (the rows above it as far as the
masks reach, and as far left and right), which gives the same logits as the whole image: the
cost of a pixel does not grow with the image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

FIRST_KERNEL = 7


class MaskedConv2d(nn.Conv2d):
    """A conv whose kernel sees the rows above and, in its own row, the columns left of the
    centre (type A) or up to the centre (type B)."""

    def __init__(self, cin: int, cout: int, kernel: int, *, include_centre: bool):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        mask = torch.zeros(kernel, kernel)
        mask[: kernel // 2] = 1
        mask[kernel // 2, : kernel // 2 + int(include_centre)] = 1
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    """Logits (B, C, H, W, bins) for tokens (B, C, H, W) in 0..bins-1."""

    def __init__(self, channels: int, bins: int, width: int, depth: int):
        super().__init__()
        self.channels, self.bins = channels, bins
        self.first = MaskedConv2d(channels, width, FIRST_KERNEL, include_centre=False)
        self.blocks = nn.ModuleList(
            MaskedConv2d(width, width, 3, include_centre=True) for _ in range(depth)
        )
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width + c, width, 1), nn.ReLU(), nn.Conv2d(width, bins, 1))
            for c in range(channels)
        )
        # how far up (and left and right) a pixel's features reach
        self.reach = FIRST_KERNEL // 2 + depth

    def values(self, tokens: Tensor) -> Tensor:
        x = tokens.to(self.first.weight.dtype)
        return x * (2 / (self.bins - 1)) - 1  # levels scaled to [-1, 1]

    def trunk(self, x: Tensor) -> Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = h + block(F.relu(h))
        return F.relu(h)  # (B, width, H, W): each pixel from the pixels before it

    def head(self, h: Tensor, x: Tensor, c: int) -> Tensor:
        """Channel c's logits from the trunk's features and the pixel's channels < c."""
        return self.heads[c](torch.cat([h, x[:, :c]], dim=1))  # (B, bins, H, W)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.values(tokens)
        h = self.trunk(x)
        logits = torch.stack([self.head(h, x, c) for c in range(self.channels)], dim=1)
        return logits.permute(0, 1, 3, 4, 2)  # (B, C, H, W, bins)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        height: int,
        width: int,
        *,
        temperature: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Tokens (n, C, H, W), pixel by pixel."""
        device = self.first.weight.device
        tokens = torch.zeros(n, self.channels, height, width, dtype=torch.long, device=device)
        r = self.reach
        for i in range(height):
            top = max(0, i - r)
            for j in range(width):
                left, right = max(0, j - r), min(width, j + r + 1)
                x = self.values(tokens[:, :, top : i + 1, left:right])
                h = self.trunk(x)[:, :, i - top, j - left][:, :, None, None]  # (n, width, 1, 1)
                here = x[:, :, i - top, j - left][:, :, None, None]  # (n, C, 1, 1)
                for c in range(self.channels):
                    logits = self.head(h, here, c)[:, :, 0, 0] / temperature  # (n, bins)
                    probs = torch.softmax(logits.float(), dim=-1).cpu()
                    k = torch.multinomial(probs, 1, generator=generator).to(device)[:, 0]
                    tokens[:, c, i, j] = k
                    here = here.clone()
                    here[:, c, 0, 0] = self.values(k)
        return tokens
