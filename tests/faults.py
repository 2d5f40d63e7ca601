"""Test-only hooks on the one training loop (genai.train.hooks.Hook): faults injected into Ray
Train workers without any test scaffolding in the product. Pickled by value, so Ray workers need
not import the tests package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ray.cloudpickle

from genai.train.hooks import EpochContext, Hook


class DieOnce(Hook):
    """The worker of ``rank`` exits (as if killed) after training ``epoch``, before its report,
    once: a marker file remembers that it did."""

    def __init__(self, epoch: int, rank: int, marker: Path) -> None:
        self.epoch, self.rank, self.marker = epoch, rank, str(marker)

    def on_epoch(self, ctx: EpochContext) -> dict:
        if ctx.epoch == self.epoch and ctx.session.rank == self.rank:
            marker = Path(self.marker)
            if not marker.exists():
                marker.write_text(f"rank {self.rank} died at epoch {self.epoch}\n")
                print(f"[test fault] rank {self.rank} exits at epoch {self.epoch}", file=sys.stderr)
                os._exit(1)
        return {}


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
