"""The driver of a run: plan it (data, feature network, model check, id) before any worker
starts, then train it on Ray Train (:func:`train`) or in this process (:func:`train_local`), and
leave the same files in the store (:mod:`genai.train.runs`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ray
from torch import nn

from genai import layout
from genai.cluster import ensure_ray
from genai.config import RunConfig
from genai.data.prepare import PreparedDataset, prepare
from genai.lease import hold
from genai.plots import loss_curves
from genai.progress import heartbeat, say
from genai.storage import ArtifactStore, StoreError
from genai.strict import ConfigError
from genai.tracking import TrackedRun, store_files, tracked_beside, tracking_for
from genai.train.hooks import Hook, RunRecorder, watching
from genai.train.loop import fit
from genai.train.runs import (
    TrainResult,
    finished_run,
    read_history,
    run_id_for,
    write_config,
    write_metrics,
    write_result,
)
from genai.train.session import StoreSession
from genai.train.state import load_fit_data
from genai.train.trained import build_for, feature_layers
from genai.train.trainer import TrainError, build_trainer, check_capacity, resolve_use_gpu

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """A run ready to train: its id, its prepared dataset, its data's feature layers."""

    run_id: str
    dataset: PreparedDataset
    features: nn.Module | None


def plan_run(
    cfg: RunConfig, store: ArtifactStore, *, ray_address: str | None = None, wait: bool = True
) -> RunPlan:
    """Prepare the data (idempotent), the feature network if a loss needs it, check that the
    model fits the data, and name the run; all before any worker starts. An image dataset's
    feature network is trained here too, on this run's Ray."""
    prepared = prepare(cfg.data, store, ray_address=ray_address, wait=wait)
    features = feature_layers(store, cfg, prepared.key, train=True, ray_address=ray_address)
    try:
        build_for(cfg, prepared.manifest, features)
    except ValueError as err:  # the data does not fit the architecture: a config error
        raise ConfigError(f"{err} (dataset {prepared.dataset}/{prepared.version})") from None
    return RunPlan(run_id_for(cfg, prepared.version), prepared, features)


def _finish(
    store: ArtifactStore,
    cfg: RunConfig,
    plan: RunPlan,
    checkpoint: str | None,
    resumed: int,
    seconds: float,
) -> TrainResult:
    history = read_history(store, plan.run_id)
    if len(history) != cfg.train.epochs:
        raise StoreError(
            f"run {plan.run_id}: metrics hold {len(history)} of {cfg.train.epochs} epochs"
        )
    write_metrics(store, plan.run_id, history)  # the final, complete table
    result = TrainResult(
        run_id=plan.run_id,
        uri=store.key_uri(layout.run(plan.run_id)),
        epochs=len(history),
        metrics={k: v for k, v in history[-1].items() if k != "epoch"},
        checkpoint=checkpoint,
        dataset=plan.dataset.summary(),
        resumed_from_epoch=resumed or None,
    )
    write_result(store, result, seconds)
    return result


def train(
    cfg: RunConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    hooks: Sequence[Hook] = (),
    wait: bool = True,
) -> TrainResult:
    """Train ``cfg`` on Ray Train (preparing its data first if the store lacks it).

    ``hooks`` run in every worker after the run's own (e.g. a callback of yours). One command
    at a time produces a run: another holding its lease is waited for (:mod:`genai.lease`), or
    with ``wait=False`` named in a :class:`genai.lease.LeaseHeld` error."""
    use_gpu = cluster_holds(cfg, ray_address)  # before the data is prepared
    plan = plan_run(cfg, store, ray_address=ray_address, wait=wait)
    return _once(store, plan, lambda: _train(cfg, store, plan, hooks, use_gpu=use_gpu), wait=wait)


def cluster_holds(cfg: RunConfig, ray_address: str | None) -> bool:
    """Join the cluster and check it can hold the run's workers (a config error naming the
    field otherwise); whether the run trains on GPUs."""
    ensure_ray(ray_address)
    resources = ray.cluster_resources()
    use_gpu = resolve_use_gpu(cfg, resources)
    check_capacity(cfg, resources, use_gpu)
    return use_gpu


def _once(
    store: ArtifactStore, plan: RunPlan, produce: Callable[[], TrainResult], *, wait: bool
) -> TrainResult:
    """The run's stored result if it is finished, else what ``produce`` makes of it while this
    command holds the run's lease (the one place a run is found finished or produced)."""
    done = finished_run(store, plan.run_id)
    if done is not None:
        log.info("run %s is already finished at %s", plan.run_id, done.uri)
        return done
    with hold(store, layout.lease(layout.run(plan.run_id)), f"run {plan.run_id}", wait=wait):
        # the holder we waited for may have finished it, or left checkpoints to resume from
        done = finished_run(store, plan.run_id)
        if done is not None:
            say("train", f"{plan.run_id}: finished by the command we waited for")
            return done
        return produce()


def _train(
    cfg: RunConfig, store: ArtifactStore, plan: RunPlan, hooks: Sequence[Hook], *, use_gpu: bool
) -> TrainResult:
    resumed = len(read_history(store, plan.run_id))
    write_config(store, plan.run_id, cfg, plan.dataset.summary())
    tracking = tracking_for(store)
    params = cfg.model_dump(mode="json")
    tags = {"genai.kind": "run", "genai.dataset": f"{plan.dataset.dataset}/{plan.dataset.version}"}
    # the MLflow run opens while Ray Train starts; the epochs are logged from this process
    with tracked_beside(tracking, layout.run(plan.run_id), plan.run_id, params, tags) as opened:
        trainer = build_trainer(
            cfg,
            store,
            plan.dataset.key,
            storage_key=layout.run(plan.run_id),
            name=layout.run_checkpoints(plan.run_id).rsplit("/", 1)[-1],
            hooks=[RunRecorder(store.uri, plan.run_id), *hooks],
            use_gpu=use_gpu,
        )
        start = time.perf_counter()
        where = f"{cfg.train.num_workers} Ray Train worker{'s' * (cfg.train.num_workers > 1)}"
        device = "GPU" if use_gpu else "CPU"
        try:  # never silent for 10 s: Ray Train's start-up and a long epoch are heartbeats
            with heartbeat("train") as status:
                status(f"{plan.run_id}: {cfg.train.epochs} epochs on {where} ({device})")
                epochs = cfg.train.epochs
                with watching(store, plan.run_id, epochs, status, mlflow_run=opened):
                    result = trainer.fit()
        except Exception as err:
            raise TrainError(f"run {plan.run_id} failed: {type(err).__name__}: {err}") from err
        path = result.checkpoint.path if result.checkpoint is not None else None
        checkpoint = f"s3://{path}" if path and store.protocol == "s3" else path
        out = _finish(store, cfg, plan, checkpoint, resumed, time.perf_counter() - start)
        mlflow_run = opened()
        if mlflow_run is not None:
            track_result(mlflow_run, store, out)
        return out


def track_result(mlflow_run: TrackedRun, store: ArtifactStore, result: TrainResult) -> None:
    """The finished run's files on its MLflow run: config, result, metrics, loss curves."""
    history = read_history(store, result.run_id)
    mlflow_run.log_files(
        {
            **store_files(
                store,
                layout.run_config(result.run_id),
                layout.run_result(result.run_id),
                layout.run_metrics(result.run_id),
            ),
            "loss_curves.png": loss_curves(history, title=result.run_id),
        }
    )


def train_local(cfg: RunConfig, store: ArtifactStore, hooks: Sequence[Hook] = ()) -> TrainResult:
    """Fit ``cfg`` in this process with the one loop (no Ray Train) and store it as a run, under
    the run's lease as :func:`train` (waiting for another holder: no CLI path reaches this)."""
    if cfg.train.num_workers != 1:
        raise ConfigError("train.num_workers: a local fit runs in this process; set it to 1")
    plan = plan_run(cfg, store)
    return _once(store, plan, lambda: _fit_local(cfg, store, plan, hooks), wait=True)


def _fit_local(
    cfg: RunConfig, store: ArtifactStore, plan: RunPlan, hooks: Sequence[Hook]
) -> TrainResult:
    resumed = len(read_history(store, plan.run_id))
    write_config(store, plan.run_id, cfg, plan.dataset.summary())
    session = StoreSession(store, plan.run_id, cfg.train.keep_checkpoints)
    start = time.perf_counter()
    fit(
        cfg,
        load_fit_data(store, plan.dataset.key, buffer_mb=cfg.train.buffer_mb),
        session,
        hooks=[RunRecorder(store.uri, plan.run_id), *hooks],
        features=plan.features,
    )
    checkpoint = store.key_uri(layout.run_checkpoints(plan.run_id))
    return _finish(store, cfg, plan, checkpoint, resumed, time.perf_counter() - start)
