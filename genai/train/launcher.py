"""The driver of a run: checks, then the one TorchTrainer builder over the one worker function.

``runs/{run_id}/`` holds ``config.json`` (resolved config), ``metrics.parquet`` (rewritten by
rank 0 after every checkpoint, from the history kept in the checkpoint), Ray Train's
``checkpoints/`` (the last ``train.keep_checkpoints``), and ``result.json``, written last: a run
with it is finished and is never trained again; a run without it resumes from its last checkpoint.
:func:`train_local` fits a run in this process with the same loop and leaves the same layout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from genai import layout
from genai.config import RunConfig
from genai.progress import heartbeat, milestone, note, say, step
from genai.runs import (
    TrainResult,
    finished_run,
    history_of,
    needs_features,
    run_id_for,
    write_metrics,
)
from genai.storage import ArtifactStore, StoreError
from genai.strict import ConfigError
from genai.tracking import (
    TrackedRun,
    Tracking,
    numeric,
    quiet,
    safely,
    store_files,
    tracked,
    tracking_for,
)
from genai.train.loop import EpochContext, FitState, Hook, Session

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


def progress_line(epoch: int, epochs: int, entry: dict[str, Any]) -> str:
    skip = {"epoch", "epoch_s", "samples_per_s", "param_divergence", "steps"}
    terms = "  ".join(f"{k} {v:.4g}" for k, v in entry.items() if k not in skip)
    return f"epoch {epoch + 1}/{epochs}  {terms}  {entry['samples_per_s']:,.0f} samples/s"


@dataclass
class RunRecorder(Hook):
    """A run's hook: after each committed epoch, rank 0 rewrites metrics.parquet from the
    history and says how the epoch went (shown when the loop runs in the command's process;
    for a Ray Train run the driver shows the metrics file as it grows, :func:`watching`)."""

    store_uri: str
    run_id: str

    def on_report(self, ctx: EpochContext) -> None:
        if ctx.session.rank != 0:
            return
        write_metrics(ArtifactStore(self.store_uri, check=False), self.run_id, ctx.state.history)
        epochs = ctx.cfg.train.epochs
        step(
            "train",
            ctx.epoch,
            epochs,
            f"{self.run_id} {progress_line(ctx.epoch, epochs, ctx.entry)}",
        )


@dataclass
class EpochsToMlflow(Hook):
    """A run's hook: rank 0 logs each committed epoch to the run's MLflow run, which the driver
    opened and Ray's ``setup_mlflow`` takes up in the worker (through ``MLFLOW_RUN_ID``)."""

    tracking: Tracking
    mlflow_run_id: str
    run_name: str
    mlflow: Any = field(default=None, init=False, repr=False)

    def setup(self, cfg: RunConfig, session: Session, data: Any) -> None:
        if session.rank == 0:
            self.mlflow = safely(self.tracking, self._start, "setup_mlflow failed")

    def _start(self) -> Any:
        from ray.air.integrations.mlflow import setup_mlflow

        quiet()
        os.environ["MLFLOW_RUN_ID"] = self.mlflow_run_id  # start_run resumes it, not a new run
        return setup_mlflow(
            tracking_uri=self.tracking.uri,
            experiment_name=self.tracking.experiment,
            run_name=self.run_name,
        )

    def on_report(self, ctx: EpochContext) -> None:
        if self.mlflow is None:
            return
        values = numeric({k: v for k, v in ctx.entry.items() if k != "epoch"})
        safely(self.tracking, lambda: self.mlflow.log_metrics(values, step=ctx.epoch))


@contextlib.contextmanager
def watching(
    store: ArtifactStore, run_id: str, epochs: int, status: Callable[..., None], every: float = 1.0
) -> Iterator[None]:
    """While the block runs, give ``status`` (a :func:`genai.progress.heartbeat`'s) each epoch
    the run's metrics.parquet gains (the workers write it after every checkpoint), from this
    process: Ray Train's workers print elsewhere. Milestone epochs are said; the others go to
    the log, and the heartbeat repeats the latest when the console has been quiet for 10 s."""
    stop = threading.Event()
    shown = previous_epochs(store, run_id)

    def show() -> None:
        nonlocal shown
        try:
            history = history_of(store.read_table(layout.run_metrics(run_id)))
        except StoreError:  # not written yet
            return
        for entry in history[shown:]:
            epoch = int(entry["epoch"])
            line = f"{run_id} {progress_line(epoch, epochs, entry)}"
            if milestone(epoch, epochs):
                status(line)
            else:
                note("train", line)
                status(line, shown=False)
        shown = max(shown, len(history))

    def loop() -> None:
        while not stop.wait(every):
            show()

    thread = threading.Thread(target=loop, name="genai-train-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        show()


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
):
    """The one TorchTrainer builder: :func:`train_loop_per_worker` on ``train.num_workers``
    workers, checkpoints in the store under ``storage_key/name`` (every node reads them).
    ``replay``: a restored run reports its restored epochs again (see RayTrainSession)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from genai.train.worker import train_loop_per_worker

    fs, path = store.arrow_filesystem(storage_key)
    return TorchTrainer(
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


def previous_epochs(store: ArtifactStore, run_id: str) -> int:
    key = layout.run_metrics(run_id)
    return len(history_of(store.read_table(key))) if store.exists(key) else 0


@dataclass(frozen=True)
class RunPlan:
    """A run ready to train: its id, its prepared dataset, its data's feature layers."""

    run_id: str
    dataset: Any  # genai.data.prepare.PreparedDataset
    features: Any


def plan_run(cfg: RunConfig, store: ArtifactStore, *, ray_address: str | None = None) -> RunPlan:
    """Prepare the data (idempotent), the feature network if a loss needs it, check that the
    model fits the data, and name the run; all before any worker starts. An image dataset's
    feature network is trained here too, on this run's Ray, so that ``evaluate`` (which has no
    Ray of its own) finds it."""
    from genai.data.prepare import ensure_feature_net, prepare
    from genai.models import DataSpec, build_model

    prepared = prepare(cfg.data, store, ray_address=ray_address)
    features = None
    if needs_features(cfg):
        trained = ensure_feature_net(store, prepared.key, ray_address=ray_address)
        if trained is None:
            raise ConfigError(
                "loss: 'perceptual' needs a domain feature network, which only image data has;"
                f" {prepared.dataset} is {prepared.manifest['kind']}"
            )
        features = trained.net.layers
    try:
        build_model(
            cfg.model, cfg.loss, DataSpec.from_manifest(prepared.manifest), features=features
        )
    except ValueError as err:  # the data does not fit the architecture: a config error
        raise ConfigError(f"{err} (dataset {prepared.dataset}/{prepared.version})") from None
    return RunPlan(run_id_for(cfg, prepared.version), prepared, features)


def _result(
    store: ArtifactStore,
    cfg: RunConfig,
    plan: RunPlan,
    checkpoint: str | None,
    resumed: int,
    seconds: float,
) -> TrainResult:
    history = history_of(store.read_table(layout.run_metrics(plan.run_id)))
    if len(history) != cfg.train.epochs:
        raise StoreError(
            f"run {plan.run_id}: metrics hold {len(history)} of {cfg.train.epochs} epochs"
        )
    write_metrics(store, plan.run_id, history)  # the final, complete table
    out = TrainResult(
        run_id=plan.run_id,
        uri=store.key_uri(layout.run(plan.run_id)),
        epochs=len(history),
        metrics={k: v for k, v in history[-1].items() if k != "epoch"},
        checkpoint=checkpoint,
        dataset=plan.dataset.summary(),
        resumed_from_epoch=resumed or None,
    )
    saved = {k: v for k, v in out.__dict__.items() if k != "reused"}
    store.write_json(layout.run_result(plan.run_id), {**saved, "train_s": round(seconds, 2)})
    return out


def _write_config(store: ArtifactStore, cfg: RunConfig, plan: RunPlan) -> None:
    store.write_json(
        layout.run_config(plan.run_id),
        {
            "run_id": plan.run_id,
            "config": cfg.model_dump(mode="json"),
            "dataset": plan.dataset.summary(),
        },
    )


def train(
    cfg: RunConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    hooks: Sequence[Hook] = (),
) -> TrainResult:
    """Train ``cfg`` on Ray Train (preparing its data first if the store lacks it).

    ``hooks`` run in every worker after the run's own (e.g. a callback of yours). One command
    at a time produces a run: another holding its lease is waited for (:mod:`genai.lease`)."""
    from genai.lease import hold

    plan = plan_run(cfg, store, ray_address=ray_address)
    done = finished_run(store, plan.run_id)
    if done is not None:
        log.info("run %s is already finished at %s", plan.run_id, done.uri)
        return done
    with hold(store, layout.lease(layout.run(plan.run_id)), f"run {plan.run_id}"):
        # the holder we waited for may have finished it, or left checkpoints to resume from
        done = finished_run(store, plan.run_id)
        if done is not None:
            say("train", f"{plan.run_id}: finished by the command we waited for")
            return done
        return _train(cfg, store, plan, ray_address, hooks)


def _train(
    cfg: RunConfig,
    store: ArtifactStore,
    plan: RunPlan,
    ray_address: str | None,
    hooks: Sequence[Hook],
) -> TrainResult:
    import ray

    from genai.cluster import ensure_ray

    ensure_ray(ray_address)
    resources = ray.cluster_resources()
    use_gpu = resolve_use_gpu(cfg, resources)
    check_capacity(cfg, resources, use_gpu)

    resumed = previous_epochs(store, plan.run_id)
    _write_config(store, cfg, plan)
    tracking = tracking_for(store)
    params = cfg.model_dump(mode="json")
    tags = {"genai.kind": "run", "genai.dataset": f"{plan.dataset.dataset}/{plan.dataset.version}"}
    with tracked(tracking, layout.run(plan.run_id), plan.run_id, params, tags) as mlflow_run:
        tracking_hooks = (
            [] if mlflow_run is None else [EpochsToMlflow(tracking, mlflow_run.run_id, plan.run_id)]
        )
        trainer = build_trainer(
            cfg,
            store,
            plan.dataset.key,
            storage_key=layout.run(plan.run_id),
            name=layout.run_checkpoints(plan.run_id).rsplit("/", 1)[-1],
            hooks=[RunRecorder(store.uri, plan.run_id), *tracking_hooks, *hooks],
            use_gpu=use_gpu,
        )
        start = time.perf_counter()
        where = f"{cfg.train.num_workers} Ray Train worker{'s' * (cfg.train.num_workers > 1)}"
        device = "GPU" if use_gpu else "CPU"
        try:  # never silent for 10 s: Ray Train's start-up and a long epoch are heartbeats
            with heartbeat("train") as status:
                status(f"{plan.run_id}: {cfg.train.epochs} epochs on {where} ({device})")
                with watching(store, plan.run_id, cfg.train.epochs, status):
                    result = trainer.fit()
        except Exception as err:
            raise TrainError(f"run {plan.run_id} failed: {type(err).__name__}: {err}") from err
        path = result.checkpoint.path if result.checkpoint is not None else None
        checkpoint = f"s3://{path}" if path and store.protocol == "s3" else path
        out = _result(store, cfg, plan, checkpoint, resumed, time.perf_counter() - start)
        if mlflow_run is not None:
            track_result(mlflow_run, store, out)
        return out


def track_result(mlflow_run: TrackedRun, store: ArtifactStore, result: TrainResult) -> None:
    """The finished run's files on its MLflow run: config, result, metrics, loss curves."""
    from genai.plots import loss_curves

    history = history_of(store.read_table(layout.run_metrics(result.run_id)))
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


class StoreSession(Session):
    """This process, checkpointing into the store as Ray Train does for a run (the local fit of
    benchmarks and tests): ``runs/{id}/checkpoints/epoch-NNNNN/state.pt``, the last k kept."""

    def __init__(self, store: ArtifactStore, run_id: str, keep: int) -> None:
        self.store, self.run_id, self.keep = store, run_id, keep

    def restored(self) -> dict[str, Any] | None:
        from genai.train import checkpoint

        key = checkpoint.latest_key(self.store, layout.run_checkpoints(self.run_id))
        return None if key is None else checkpoint.load(self.store.read_bytes(key))

    def report(self, entry: dict[str, Any], state: FitState) -> None:
        import io

        import torch

        from genai.train import checkpoint

        buf = io.BytesIO()
        torch.save(checkpoint.to_dict(state), buf)
        self.store.write_bytes(layout.run_checkpoint(self.run_id, state.epoch), buf.getvalue())
        for old in range(state.epoch - self.keep, -1, -1):
            stale = layout.run_checkpoint(self.run_id, old).rsplit("/", 1)[0]
            if not self.store.exists(stale):
                break
            self.store.delete(stale)


def train_local(cfg: RunConfig, store: ArtifactStore, hooks: Sequence[Hook] = ()) -> TrainResult:
    """Fit ``cfg`` in this process with the one loop (no Ray Train) and store it as a run."""
    from genai.train.loop import fit
    from genai.train.worker import load_fit_data

    if cfg.train.num_workers != 1:
        raise ConfigError("train.num_workers: a local fit runs in this process; set it to 1")
    plan = plan_run(cfg, store)
    done = finished_run(store, plan.run_id)
    if done is not None:
        return done
    resumed = previous_epochs(store, plan.run_id)
    _write_config(store, cfg, plan)
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
    return _result(store, cfg, plan, checkpoint, resumed, time.perf_counter() - start)
