"""An autoregressive model over quantised values (pixels, or a discretised grid for points).

Each sample is a sequence of D tokens, each value rounded to one of ``bins`` evenly spaced levels
over the data's range; the model predicts token i from tokens < i, with the cross_entropy slot;
sampling is ancestral with a temperature. The network (``model.autoregressive.body``) is a small
causal transformer (a start token, then tokens < i), MADE, a masked MLP, or for colour images
PixelCNN, masked convolutions (:mod:`genai.models.pixelcnn`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai.losses import LossSpec, LossTerms, pointwise_loss, weighted_total
from genai.model_config import AutoregressiveModel
from genai.models.base import DataSpec, GenerativeModel
from genai.models.blocks import ACTIVATIONS, image_dims
from genai.models.pixelcnn import PixelCNN


class MaskedLinear(nn.Linear):
    """A linear layer whose weight (out, in) keeps only the links from an input of degree ``d``
    to an output of degree ``e`` with ``e >= d`` (``strict``: ``e > d``).

    The degrees are small buffers; the 0/1 mask built from them is cached beside them, not a
    buffer: under DDP a module's buffers are broadcast every step, and a mask is as large as the
    weight (rebuilt when the module moves to another device)."""

    def __init__(self, inputs: Tensor, outputs: Tensor, *, strict: bool):
        super().__init__(len(inputs), len(outputs))
        self.strict = strict
        self.register_buffer("inputs", inputs, persistent=False)
        self.register_buffer("outputs", outputs, persistent=False)
        self.cached: Tensor | None = None

    def mask(self) -> Tensor:
        if self.cached is None or self.cached.device != self.weight.device:
            out, inp = self.outputs[:, None], self.inputs[None, :]
            self.cached = (out > inp if self.strict else out >= inp).to(self.weight.dtype)
        return self.cached

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask(), self.bias)


def hidden_degrees(width: int, length: int) -> Tensor:
    """Degrees of ``width`` hidden units over ``length`` tokens: cycling over 0..D-2 when there
    are at least D-1 units; else spread over 0..D-2 with both ends kept, so every token but the
    last still reaches the hidden layers (cycling would leave tokens >= width to the skip)."""
    if width >= length - 1:
        return torch.arange(width) % max(length - 1, 1)
    return torch.arange(width) * (length - 2) // max(width - 1, 1)


class Made(nn.Module):
    """MADE (Germain et al. 2015, arXiv:1502.03509) over D tokens in their natural order: every
    conditional in one pass of a masked MLP, output i seeing tokens < i only.

    Token j enters as its level scaled to [-1, 1] (the levels are ordered) with degree j; hidden
    units take degrees over 0..D-2 (:func:`hidden_degrees`) and see the units below of degree <=
    their own; the ``bins`` logits of output i see hidden units of degree < i, and the inputs < i
    directly (a masked linear skip). Output 0 sees nothing: the first value's marginal.
    """

    def __init__(self, length: int, bins: int, width: int, depth: int, activation: str):
        super().__init__()
        self.length, self.bins = length, bins
        inputs = torch.arange(length)  # each token's degree
        outputs = inputs.repeat_interleave(bins)  # each logit's
        hidden = hidden_degrees(width, length)
        layers: list[nn.Module] = []
        below = inputs
        for _ in range(depth):
            layers += [MaskedLinear(below, hidden, strict=False), ACTIVATIONS[activation]()]
            below = hidden
        self.body = nn.Sequential(*layers)
        self.head = MaskedLinear(below, outputs, strict=True)
        self.skip = MaskedLinear(inputs, outputs, strict=True)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits (B, D, bins) for tokens (B, D); row i depends on tokens[:, :i] only."""
        x = tokens.float() * (2 / (self.bins - 1)) - 1
        out = self.head(self.body(x)) + self.skip(x)
        return out.reshape(tokens.shape[0], self.length, self.bins)


class Autoregressive(GenerativeModel):
    family = "autoregressive"

    def __init__(self, cfg: AutoregressiveModel, losses: Mapping[str, LossSpec], data: DataSpec):
        super().__init__(data)
        arch, self.opts, self.losses = cfg.arch, cfg.autoregressive, dict(losses)
        self.bins, self.length = self.opts.bins, data.dim
        self.nll = pointwise_loss(self.losses["nll"])
        self.pixelcnn: PixelCNN | None = None
        if self.opts.body == "pixelcnn":
            self.made = None
            self.image = image_dims(data.shape, "model.autoregressive.body: 'pixelcnn'")
            self.pixelcnn = PixelCNN(self.image[0], self.bins, arch.width, arch.depth)
            return
        if self.opts.body == "made":
            self.made = Made(self.length, self.bins, arch.width, arch.depth, arch.activation)
            return
        self.made = None
        self.token = nn.Embedding(self.bins + 1, arch.d_model)  # + a start token
        self.position = nn.Embedding(self.length, arch.d_model)
        layer = nn.TransformerEncoderLayer(
            arch.d_model,
            arch.heads,
            dim_feedforward=4 * arch.d_model,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, arch.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(arch.d_model)
        self.head = nn.Linear(arch.d_model, self.bins)
        mask = torch.triu(torch.full((self.length, self.length), float("-inf")), diagonal=1)
        self.register_buffer("causal", mask, persistent=False)

    # -- quantisation: `bins` levels spanning [low, high], ends included (0 and 1 exact for images)
    def quantise(self, x: Tensor) -> Tensor:
        lo, hi = self.data.low, self.data.high
        k = torch.round((x.flatten(1) - lo) / (hi - lo) * (self.bins - 1))
        return k.clamp(0, self.bins - 1).long()  # (B, D)

    def dequantise(self, tokens: Tensor) -> Tensor:
        lo, hi = self.data.low, self.data.high
        x = lo + tokens.float() * (hi - lo) / (self.bins - 1)
        return x.reshape(tokens.shape[0], *self.data.shape)

    def logits(self, tokens: Tensor) -> Tensor:
        """Next-token logits (B, T, bins) for inputs (B, T): row i depends on tokens < i only.
        (MADE and PixelCNN take the whole sequence, T = D; the transformer any T <= D.)
        PixelCNN's order is its own: pixels in raster order, a pixel's channels in turn; its
        rows come in the tokens' (C, H, W) order, row (c, i, j) from the values before it."""
        if self.pixelcnn is not None:
            logits = self.pixelcnn(tokens.reshape(tokens.shape[0], *self.image))
            return logits.reshape(tokens.shape[0], self.length, self.bins)  # (C, H, W) order
        if self.made is not None:
            return self.made(tokens)
        start = torch.full((tokens.shape[0], 1), self.bins, device=tokens.device, dtype=torch.long)
        inp = torch.cat([start, tokens[:, :-1]], dim=1)  # (B, T)
        t = inp.shape[1]
        h = self.token(inp) + self.position(torch.arange(t, device=inp.device))[None]
        h = self.blocks(h, mask=self.causal[:t, :t], is_causal=True)
        return self.head(self.norm(h))

    def training_step(self, batch: Tensor, player: str = "model") -> LossTerms:
        tokens = self.quantise(batch)
        return weighted_total({"nll": self.nll(self.logits(tokens), tokens)}, self.losses)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float | None = None,
    ) -> Tensor:
        temp = temperature or self.opts.temperature
        if self.pixelcnn is not None:
            _, h, w = self.image
            tokens = self.pixelcnn.sample(n, h, w, temperature=temp, generator=generator)
            return self.dequantise(tokens.flatten(1))
        device = next(self.parameters()).device
        tokens = torch.zeros(n, 0, dtype=torch.long, device=device)
        for i in range(self.length):
            # slots from i on are ignored: one for the transformer, all the rest for MADE
            pad = self.length - i if self.made is not None else 1
            padded = torch.cat([tokens, tokens.new_zeros(n, pad)], dim=1)
            probs = torch.softmax(self.logits(padded)[:, i] / temp, dim=-1)  # (n, bins)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
            tokens = torch.cat([tokens, nxt], dim=1)
        return self.dequantise(tokens)
