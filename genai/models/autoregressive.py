"""A small causal transformer over quantised values (pixels, or a discretised grid for points).

Each sample is a sequence of D tokens, each value rounded to one of ``bins`` evenly spaced levels
over the data's range; the model predicts token i from a start token and tokens < i, with the
cross_entropy slot; sampling is ancestral with a temperature.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from genai.config import ModelConfig
from genai.losses import LossSpec, LossTerms, pointwise_loss, weighted_total
from genai.models.base import DataSpec, GenerativeModel


class Autoregressive(GenerativeModel):
    family = "autoregressive"

    def __init__(self, cfg: ModelConfig, losses: Mapping[str, LossSpec], data: DataSpec, **_):
        super().__init__(data)
        arch, self.opts, self.losses = cfg.arch, cfg.autoregressive, dict(losses)
        self.bins, self.length = self.opts.bins, data.dim
        self.nll = pointwise_loss(self.losses["nll"])
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
        """Next-token logits (B, T, bins) for inputs (B, T): start token then tokens < T."""
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
        device = next(self.parameters()).device
        tokens = torch.zeros(n, 0, dtype=torch.long, device=device)
        for _ in range(self.length):
            padded = torch.cat([tokens, tokens.new_zeros(n, 1)], dim=1)  # last slot is ignored
            probs = torch.softmax(self.logits(padded)[:, -1] / temp, dim=-1)  # (n, bins)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
            tokens = torch.cat([tokens, nxt], dim=1)
        return self.dequantise(tokens)
