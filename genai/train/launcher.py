"""The driver: checks, then Ray Train's TorchTrainer over :func:`train_loop_per_worker`.

``runs/{run_id}/`` holds ``config.json`` (resolved config), ``metrics.parquet`` (rewritten by
rank 0 after every checkpoint, from the history kept in the checkpoint), Ray Train's
``checkpoints/`` (the last ``train.keep_checkpoints``), and ``result.json``, written last: a run
with it is finished and is never trained again; a run without it resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import ray
import ray.train
from ray.train.torch import TorchTrainer

from genai.cluster import ensure_ray
from genai.config import RunConfig
from genai.data.prepare import prepare
from genai.evaluate.features import ensure_feature_net
from genai.models import DataSpec, build_model
from genai.runs import TrainResult, history_of, needs_features, run_id_for, run_key, write_metrics
from genai.storage import ArtifactStore, StoreError
from genai.strict import ConfigError
from genai.train.worker import train_loop_per_worker

log = logging.getLogger(__name__)
os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")


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


def load_result(store: ArtifactStore, run_id: str) -> TrainResult | None:
    key = f"{run_key(run_id)}/result.json"
    if not store.exists(key):
        return None
    saved = store.read_json(key)
    fields = {k: saved[k] for k in TrainResult.__dataclass_fields__ if k in saved}
    return TrainResult(**{**fields, "reused": True})


def previous_epochs(store: ArtifactStore, run_id: str) -> int:
    key = f"{run_key(run_id)}/metrics.parquet"
    return len(history_of(store.read_table(key))) if store.exists(key) else 0


def train(
    cfg: RunConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    fault: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``cfg`` on Ray Train (preparing its data first if the store lacks it)."""
    prepared = prepare(cfg.data, store, ray_address=ray_address)  # idempotent; starts Ray
    features = None
    if needs_features(cfg):
        trained = ensure_feature_net(store, prepared.key)
        if trained is None:
            raise ConfigError(
                "loss: 'perceptual' needs a domain feature network, which only labelled image"
                f" data has; {prepared.dataset} is {prepared.manifest['kind']}"
            )
        features = trained.net.layers
    try:
        build_model(
            cfg.model, cfg.loss, DataSpec.from_manifest(prepared.manifest), features=features
        )
    except ValueError as err:  # the data does not fit the architecture: a config error
        raise ConfigError(f"{err} (dataset {prepared.dataset}/{prepared.version})") from None
    run_id = run_id_for(cfg, prepared.version)
    done = load_result(store, run_id)
    if done is not None:
        log.info("run %s is already finished at %s", run_id, done.uri)
        return done

    ensure_ray(ray_address)
    resources = ray.cluster_resources()
    use_gpu = resolve_use_gpu(cfg, resources)
    check_capacity(cfg, resources, use_gpu)

    key = run_key(run_id)
    resumed = previous_epochs(store, run_id)
    store.write_json(
        f"{key}/config.json",
        {"run_id": run_id, "config": cfg.model_dump(mode="json"), "dataset": prepared.summary()},
    )
    fs, path = store.arrow_filesystem(key)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "run": cfg.model_dump(mode="json"),
            "run_id": run_id,
            "store": store.uri,
            "dataset_key": prepared.key,
            "fault": fault,
        },
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=use_gpu),
        run_config=ray.train.RunConfig(
            name="checkpoints",
            storage_path=path,
            storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.train.keep_checkpoints),
        ),
    )
    start = time.perf_counter()
    try:
        result = trainer.fit()
    except Exception as err:
        raise TrainError(f"run {run_id} failed: {type(err).__name__}: {err}") from err
    history = history_of(store.read_table(f"{key}/metrics.parquet"))
    if len(history) != cfg.train.epochs:
        raise StoreError(f"run {run_id}: metrics hold {len(history)} of {cfg.train.epochs} epochs")
    write_metrics(store, run_id, history)  # the final, complete table
    checkpoint = result.checkpoint.path if result.checkpoint is not None else None
    final = {k: v for k, v in history[-1].items() if k != "epoch"}
    out = TrainResult(
        run_id=run_id,
        uri=store.key_uri(key),
        epochs=len(history),
        metrics=final,
        checkpoint=f"{store.protocol}://{checkpoint}"
        if checkpoint and store.protocol == "s3"
        else checkpoint,
        dataset=prepared.summary(),
        resumed_from_epoch=resumed or None,
    )
    saved = {k: v for k, v in out.__dict__.items() if k != "reused"}
    store.write_json(
        f"{key}/result.json", {**saved, "train_s": round(time.perf_counter() - start, 2)}
    )
    return out
