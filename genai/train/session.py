"""Where a fit runs: a :class:`Session` says the rank, the device, and where epochs are reported
and checkpoints kept.

The base class is this process alone (tests, benchmarks); :class:`StoreSession` is a local fit
that checkpoints into the store as Ray Train does for a run. The two sessions that live inside a
Ray process sit beside the entry point that makes them: ``RayTrainSession`` in
:mod:`genai.train.worker` (one rank of a Ray Train worker group), ``TuneSession`` in
:mod:`genai.tune.trial` (an in-process Tune trial).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genai import layout
from genai.models import GenerativeModel
from genai.storage import ArtifactStore
from genai.train import checkpoint
from genai.train.state import FitState


class Session:
    """This process alone: rank 0 of 1, nothing reported."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    def wrap(self, model: GenerativeModel) -> nn.Module:
        """The module the loop calls (Ray Train's prepare_model: DDP and the device)."""
        return model

    def restored(self) -> dict[str, Any] | None:
        """The saved state (:mod:`genai.train.checkpoint`) to resume from, if any."""
        return None

    def resumed(self, state: FitState) -> None:
        """Called once after ``state`` was restored, before the next epoch."""

    def report(self, entry: dict[str, Any], state: FitState) -> None:
        """Hand the epoch's entry (and, from rank 0, a checkpoint of ``state``) on."""


class StoreSession(Session):
    """This process, checkpointing into the store as Ray Train does for a run (the local fit of
    benchmarks and tests): ``runs/{id}/checkpoints/epoch-NNNNN/state.pt``, the last k kept."""

    def __init__(self, store: ArtifactStore, run_id: str, keep: int) -> None:
        self.store, self.run_id, self.keep = store, run_id, keep

    def restored(self) -> dict[str, Any] | None:
        key = checkpoint.latest_key(self.store, layout.run_checkpoints(self.run_id))
        return None if key is None else checkpoint.load(self.store.read_bytes(key))

    def report(self, entry: dict[str, Any], state: FitState) -> None:
        checkpoint.save_to_store(self.store, self.run_id, state, self.keep)
