"""The one function Ray Train workers run, for a run (``genai train``) and a multi-worker trial.

``train_loop_per_worker(config)`` re-validates the run config, reads the data, and calls the one
loop (:func:`genai.train.loop.fit`) in a :class:`RayTrainSession`: DDP through Ray Train's
``prepare_model``, every rank reports every epoch (a barrier), rank 0 attaches the checkpoint.
What differs between a run and a trial is only the hooks in ``config["hooks"]``.
"""

from __future__ import annotations

import tempfile
from typing import Any

import ray.train
import ray.train.torch
import torch

from genai import layout
from genai.config import RunConfig
from genai.models import GenerativeModel
from genai.storage import ArtifactStore
from genai.train import checkpoint
from genai.train.hooks import REPORTED
from genai.train.loop import fit
from genai.train.session import Session
from genai.train.state import FitState, load_fit_data
from genai.train.trained import feature_layers


class RayTrainSession(Session):
    """One rank of a Ray Train worker group.

    ``replay``: after a restore, report the restored epochs again (without checkpoints). A
    multi-worker trial wants it: its checkpoints are Ray Train's and may be ahead of what Tune
    recorded when the sweep's driver died, or hold every epoch already.
    """

    def __init__(self, *, replay: bool = False) -> None:
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self.replay = replay

    def wrap(self, model: GenerativeModel) -> torch.nn.Module:
        return ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": len(model.players) > 1}
        )

    def restored(self) -> dict[str, Any] | None:
        saved = ray.train.get_checkpoint()
        if saved is None:
            return None
        with saved.as_directory() as directory:
            return checkpoint.load(directory, self.device)

    def resumed(self, state: FitState) -> None:
        if self.replay:
            for entry in state.history:  # every rank: each report is a barrier
                if entry.get(REPORTED) is not False:  # as fit() left them unreported
                    ray.train.report(entry)

    def report(self, entry: dict[str, Any], state: FitState) -> None:
        if self.rank != 0:
            ray.train.report(entry)  # every rank reports: Ray Train's barrier
            return
        with tempfile.TemporaryDirectory(prefix="genai-ckpt-") as directory:
            checkpoint.save(state, directory)
            ray.train.report(  # uploads synchronously, so the directory may go afterwards
                entry,
                checkpoint=ray.train.Checkpoint.from_directory(directory),
                checkpoint_dir_name=layout.checkpoint_dir_name(state.epoch),
            )


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Entry point of every Ray Train worker (a run's or a multi-worker trial's)."""
    cfg = RunConfig.model_validate(config["run"])  # re-validated across the process boundary
    store = ArtifactStore(config["store"], check=False)
    session = RayTrainSession(replay=config["replay"])
    data = load_fit_data(
        store, config["dataset_key"], session.rank, session.world, buffer_mb=cfg.train.buffer_mb
    )
    features = feature_layers(store, cfg, config["dataset_key"], device=session.device)
    fit(cfg, data, session, seeds=config["seeds"], hooks=config["hooks"], features=features)
