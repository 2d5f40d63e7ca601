"""What every model family provides, and the data facts a model is built for."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genai.losses import LossTerms


@dataclass(frozen=True)
class DataSpec:
    """Shape, kind and value range (in normalised units) of the data a model is built for."""

    shape: tuple[int, ...]
    kind: str = "points"  # image | points | vector
    low: float = -3.0
    high: float = 3.0

    @property
    def dim(self) -> int:
        return math.prod(self.shape)

    @property
    def unit_interval(self) -> bool:
        """Values live in [0, 1] (min-max normalised images): outputs use a sigmoid."""
        return self.low >= -1e-6 and self.high <= 1 + 1e-6

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> DataSpec:
        norm, train = manifest["normalisation"], manifest["stats"]["train"]
        lows = [
            (lo - s) / c
            for lo, s, c in zip(train["min"], norm["shift"], norm["scale"], strict=True)
        ]
        highs = [
            (hi - s) / c
            for hi, s, c in zip(train["max"], norm["shift"], norm["scale"], strict=True)
        ]
        return cls(tuple(manifest["shape"]), manifest["kind"], float(min(lows)), float(max(highs)))


class GenerativeModel(nn.Module):
    """A family: named loss slots, a training step per player, and sampling.

    ``forward(batch, player)`` *is* the training step, so DistributedDataParallel sees it and
    synchronises gradients; the training loop always calls the (possibly wrapped) module.
    """

    family: ClassVar[str]
    players: ClassVar[tuple[str, ...]] = ("model",)

    def __init__(self, data: DataSpec):
        super().__init__()
        self.data = data

    def player_parameters(self, player: str) -> list[nn.Parameter]:
        """The parameters one player's optimiser updates."""
        return [p for p in self.parameters() if p.requires_grad]

    def players_at(self, step: int) -> tuple[str, ...]:
        """Which players take an optimiser step on training step ``step``, in order."""
        return self.players

    def training_step(self, batch: Tensor, player: str = "model") -> LossTerms:
        raise NotImplementedError

    def forward(self, batch: Tensor, player: str = "model") -> LossTerms:
        return self.training_step(batch, player)

    @torch.no_grad()
    def validation_loss(self, batch: Tensor) -> LossTerms:
        """The training objective on held-out data (not comparable across families)."""
        return self.training_step(batch, self.players[0])

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n samples (n, *shape) in normalised data units."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_batched(
        self,
        n: int,
        *,
        batch_size: int = 512,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
        **options: Any,
    ) -> Tensor:
        """n samples drawn ``batch_size`` at a time from one generator (reproducible for a
        seed); ``progress(done, n)`` after each batch; ``options`` go to :meth:`sample` (from
        :meth:`sampler_options`)."""
        parts = []
        for i in range(0, n, batch_size):
            parts.append(self.sample(min(batch_size, n - i), generator=generator, **options))
            if progress is not None:
                progress(i + len(parts[-1]), n)
        return torch.cat(parts) if parts else torch.empty(0, *self.data.shape)

    def sampler_options(
        self, kind: str, ddim_steps: int, eta: float | None = None
    ) -> tuple[dict[str, Any], str]:
        """(options for :meth:`sample`, a name for what samples) of ``kind`` "fast" or "model":
        one sampler for every family but diffusion (:class:`genai.models.diffusion.Diffusion`)."""
        return {}, self.family

    def _noise(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        device = next(self.parameters()).device
        if generator is not None and generator.device != device:
            return torch.randn(*shape, generator=generator).to(device)
        return torch.randn(*shape, generator=generator, device=device)
