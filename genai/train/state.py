"""What a fit holds: its replicas (model, optimisers, step, EMA), the epochs done, and its data.

A replica is one seed's model; a run has one, a sweep trial with ``repeats`` K has K. The
checkpoint format (:mod:`genai.train.checkpoint`) is this state written down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from genai.data.dataset import BUDGET_MB, SplitReader, read_manifest
from genai.models import DataSpec, GenerativeModel
from genai.storage import ArtifactStore
from genai.train.ema import EMA


def unwrap(model: nn.Module) -> GenerativeModel:
    """The family behind a DDP wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model  # type: ignore[return-value]


@dataclass
class Replica:
    """One seed's model (DDP-wrapped in a worker group), its optimisers, its step counter and,
    with ``train.ema_decay``, the moving average of its weights."""

    seed: int
    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    step: int = 0
    ema: EMA | None = None

    @property
    def family(self) -> GenerativeModel:
        return unwrap(self.model)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[GenerativeModel]:
        """The family in eval mode with the weights it samples with (the EMA's, if any)."""
        family = self.family
        family.eval()
        if self.ema is None:
            yield family
        else:
            with self.ema.applied(family):
                yield family


@dataclass
class FitState:
    """Everything a checkpoint holds: the replicas, the last finished epoch, the history."""

    replicas: list[Replica]
    epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FitData:
    """The train split (every rank slices it per epoch) and this rank's share of val.

    ``train`` is the whole split (N, *shape) when it fits the worker's buffer
    (``train.buffer_mb``), else a :class:`genai.data.dataset.SplitReader` that streams each
    rank's share of an epoch in row groups, shuffled within windows of the buffer."""

    train: Any  # Tensor (N, *shape) | SplitReader
    val: Tensor  # (M, *shape)
    spec: DataSpec


def load_fit_data(
    store: ArtifactStore,
    dataset_key: str,
    rank: int = 0,
    world: int = 1,
    *,
    buffer_mb: int = BUDGET_MB,
) -> FitData:
    """The train split (whole when it fits ``buffer_mb``, else a streaming reader; ranks take
    their share per epoch) and this rank's share of val (at most a quarter of the buffer)."""
    manifest = read_manifest(store, dataset_key)
    budget = buffer_mb << 20
    train = SplitReader(store, dataset_key, "train", budget_bytes=budget, manifest=manifest)
    held = torch.from_numpy(train.read_all()[0]) if train.whole else train
    val = SplitReader(store, dataset_key, "val", budget_bytes=budget // 4, manifest=manifest)
    rows = val.read_all()[0] if val.whole else val.head(budget // 4 // (4 * val.width))[0]
    return FitData(held, torch.from_numpy(rows)[rank::world], DataSpec.from_manifest(manifest))
