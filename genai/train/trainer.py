"""The one ``TorchTrainer`` builder (a run's and a multi-worker trial's) and the checks of what
the cluster can hold, made before any worker starts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ray.train
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks import DatasetsCallback

from genai.config import RunConfig
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.train.hooks import Hook
from genai.train.worker import train_loop_per_worker

os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")


class _TorchTrainer(TorchTrainer):
    """A ``TorchTrainer`` that starts no Ray Data actor when it is given no Ray Dataset: genai's
    workers read their Parquet shards themselves, and Ray Train 2.60 starts a DatasetManager
    actor for every fit regardless (one more process beside the workers; on two cores it shares
    them with the workers' start)."""

    def _create_default_callbacks(self) -> list[Any]:
        callbacks = super()._create_default_callbacks()
        if self.datasets:
            return callbacks
        return [c for c in callbacks if not isinstance(c, DatasetsCallback)]


class TrainError(RuntimeError):
    """Training failed after Ray Train's retries; the message names the run and the cause."""


def resolve_use_gpu(cfg: RunConfig, resources: dict[str, float]) -> bool:
    """``auto``: GPUs when the cluster has one per worker; ``true`` without GPUs is an error."""
    gpus, workers = resources.get("GPU", 0), cfg.train.num_workers
    if cfg.train.use_gpu == "auto":
        use = gpus >= workers
    elif cfg.train.use_gpu and gpus < workers:
        raise ConfigError(
            f"train.use_gpu: true needs {workers} GPU(s) (one per worker) but the cluster has"
            f" {gpus:g}; set use_gpu to auto or false"
        )
    else:
        use = bool(cfg.train.use_gpu)
    if cfg.train.mixed_precision and not use:
        raise ConfigError("train.mixed_precision: only on GPU; this run trains on CPU")
    return use


def check_capacity(cfg: RunConfig, resources: dict[str, float], use_gpu: bool) -> None:
    """More workers than the cluster can ever hold would wait forever: say so now."""
    cpus, workers = resources.get("CPU", 0), cfg.train.num_workers
    if not use_gpu and workers > cpus:
        raise ConfigError(
            f"train.num_workers: {workers} workers need {workers} CPUs but the cluster has"
            f" {cpus:g}; use at most {int(cpus)} or add nodes"
        )


def build_trainer(
    cfg: RunConfig,
    store: ArtifactStore,
    dataset_key: str,
    *,
    storage_key: str,
    name: str,
    hooks: Sequence[Hook],
    use_gpu: bool,
    seeds: Sequence[int] | None = None,
    max_failures: int | None = None,
    keep: int | None = None,
    callbacks: Sequence[Any] = (),
    replay: bool = False,
) -> TorchTrainer:
    """The one TorchTrainer builder: :func:`train_loop_per_worker` on ``train.num_workers``
    workers, checkpoints in the store under ``storage_key/name`` (every node reads them).
    ``replay``: a restored run reports its restored epochs again (see RayTrainSession)."""
    fs, path = store.arrow_filesystem(storage_key)
    return _TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "run": cfg.model_dump(mode="json"),
            "store": store.uri,
            "dataset_key": dataset_key,
            "seeds": list(seeds) if seeds is not None else [cfg.train.seed],
            "hooks": list(hooks),
            "replay": replay,
        },
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=use_gpu),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=path,
            storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(
                max_failures=cfg.train.max_failures if max_failures is None else max_failures
            ),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.train.keep_checkpoints if keep is None else keep
            ),
            callbacks=list(callbacks),
        ),
    )
