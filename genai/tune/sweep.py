"""The sweep driver: Ray Tune's Tuner over :func:`run_trial`, ASHA, random or Optuna search.

``sweeps/{sweep_id}/``: ``tune/`` (Tune's experiment state, so an interrupted sweep resumes),
``trials.parquet`` (one row per trial), ``best.json`` and ``plot.png``, written last.
``sweep_id`` is a hash of the base config, the space file's content and the sweep settings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import ray
from ray import tune
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.basic_variant import BasicVariantGenerator

from genai import layout
from genai.cluster import ensure_ray
from genai.config import RunConfig, SweepConfig
from genai.data.prepare import prepare
from genai.lease import hold
from genai.progress import say
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.tracking import (
    PARENT_TAG,
    TrackedRun,
    Tracking,
    globals_kept,
    numeric,
    safely,
    store_files,
    tracked,
    tracking_for,
)
from genai.train.trainer import check_capacity, resolve_use_gpu
from genai.tune.record import SweepResult, finished_sweep, ranking, sweep_id_for
from genai.tune.space import SearchSpace, load_space, most_epochs, trial_config, trial_epochs
from genai.tune.table import plot_sweep, trials_table
from genai.tune.trial import run_trial

log = logging.getLogger(__name__)
DRIVER_MEMORY = 256 * 1024**2  # bytes a multi-worker trial's driver reserves (it holds no CPU)


def to_tune(param) -> Any:
    a = param.args
    match param.kind:
        case "choice":
            return tune.choice(list(a))
        case "grid":
            return tune.grid_search(list(a))
        case "uniform":
            return tune.uniform(a[0], a[1])
        case "loguniform":
            return tune.loguniform(a[0], a[1])
        case "randint":  # ours includes high; Tune's excludes it
            return tune.randint(int(a[0]), int(a[1]) + 1)
        case "quniform":
            return tune.quniform(a[0], a[1], a[2])
    raise ConfigError(f"{param.path}: unknown distribution {param.kind!r}")


class Progress(tune.Callback):
    """A line at the start, when a trial ends or fails, and when the best score moves (at most
    every 10 s): trials finished / stopped early / failed / running, the best so far.

    Tune calls on_trial_complete before it marks the trial terminated, so the callback keeps its
    own sets of ended trials.
    """

    def __init__(self, total: int, epochs: int, metric: str = "score", mode: str = "min"):
        self.total, self.epochs, self.metric = total, epochs, metric
        self.sign = 1 if mode == "min" else -1
        self.best, self.best_trial = math.inf, None
        self.finished: set[str] = set()
        self.stopped: set[str] = set()
        self.failed: set[str] = set()
        self.shown: tuple = ()
        self.shown_at = 0.0

    def _line(self, trials, *, moved: bool = False) -> None:
        ended = self.finished | self.stopped | self.failed
        running = sum(t.status == "RUNNING" and t.trial_id not in ended for t in trials)
        counts = (len(self.finished), len(self.stopped), len(self.failed), running)
        if counts[:3] == self.shown and not (moved and time.monotonic() - self.shown_at >= 10):
            return  # a trial merely starting is not news
        self.shown, self.shown_at = counts[:3], time.monotonic()
        best = (
            f"best {self.metric} {self.sign * self.best:.4g} ({self.best_trial})"
            if self.best_trial
            else "no score yet"
        )
        say(
            "sweep",
            f"{len(ended)}/{self.total} trials done ({counts[0]} finished, {counts[1]} stopped"
            f" early, {counts[2]} failed), {running} running; {best}",
        )

    def on_trial_result(self, iteration, trials, trial, result, **info):
        moved = "score" in result and self.sign * result["score"] < self.best
        if moved:
            self.best, self.best_trial = self.sign * result["score"], trial.trial_id
        self._line(trials, moved=moved)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._line(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        own = trial_epochs(trial.config or {}, self.epochs)  # a space may sweep train.epochs
        done = (trial.last_result or {}).get("epochs", 0) >= own
        (self.finished if done else self.stopped).add(trial.trial_id)
        self._line(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed.add(trial.trial_id)
        self._line(trials)


class TrialRuns(MLflowLoggerCallback):
    """Ray Tune's MLflow callback, each trial an MLflow run nested under the sweep's (its config
    as params). A result goes as one batch of the trial's own metrics at its epoch: the stock
    callback sends every key of Tune's result, Tune's bookkeeping included, a request each. A
    failure warns once and the sweep goes on untracked."""

    BOOKKEEPING = frozenset(
        {"timestamp", "pid", "training_iteration", "iterations_since_restore", "done",
         "time_this_iter_s", "time_since_restore", "epoch"}
    )  # fmt: skip

    def __init__(self, tracking: Tracking, parent_run_id: str, sweep_id: str) -> None:
        super().__init__(
            tracking.uri,
            experiment_name=tracking.experiment,
            tags={PARENT_TAG: parent_run_id, "genai.kind": "trial", "genai.sweep_id": sweep_id},
        )
        self.tracking = tracking

    def setup(self, *args, **kwargs):
        base = super()
        safely(self.tracking, lambda: base.setup(*args, **kwargs), "MLflow callback failed")

    def log_trial_start(self, trial):
        base = super()
        safely(self.tracking, lambda: base.log_trial_start(trial), "MLflow callback failed")

    def log_trial_result(self, iteration, trial, result):
        run_id = getattr(self, "_trial_runs", {}).get(trial)
        if run_id is None:
            return
        metrics = {k: v for k, v in numeric(result).items() if k not in self.BOOKKEEPING}
        step = int(result.get("epoch", iteration - 1))  # 0-based, as a run's epochs are
        TrackedRun(self.tracking, run_id).log_metrics(metrics, step=step)

    def log_trial_end(self, trial, failed=False):
        base = super()
        safely(self.tracking, lambda: base.log_trial_end(trial, failed), "MLflow callback failed")


def make_search(cfg: SweepConfig, space: SearchSpace, concurrency: int):
    if cfg.search == "random":  # seeded: the same sweep samples the same configs
        return BasicVariantGenerator(random_state=0, max_concurrent=concurrency)
    if any(p.kind == "grid" for p in space.params):
        raise ConfigError(f"sweep.search: 'optuna' cannot take 'grid' distributions ({space.path})")
    from ray.tune.search.optuna import OptunaSearch  # optuna (0.2 s): only when it searches

    return ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=concurrency)


def trial_workers(base: RunConfig, space: SearchSpace) -> int:
    """The most Ray Train workers any trial of the sweep asks for."""
    for p in space.params:
        if p.path == "train.num_workers":
            return max(int(v) for v in p.edge_values())
    return base.train.num_workers


def sweep(
    base: RunConfig,
    cfg: SweepConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    space: SearchSpace | None = None,
    wait: bool = True,
) -> SweepResult:
    """Run (or resume, or find finished) the sweep of ``cfg.space`` around ``base``; another
    command producing it is waited for (``wait=False``: a :class:`genai.lease.LeaseHeld`)."""
    space = space or load_space(cfg.space, base)  # every error here comes before Ray starts
    metric, mode = ranking(base, cfg)
    sweep_id = sweep_id_for(base, cfg.space, cfg)
    done = finished_sweep(store, sweep_id)
    if done is not None:
        return done
    with hold(store, layout.lease(layout.sweep(sweep_id)), f"sweep {sweep_id}", wait=wait):
        done = finished_sweep(store, sweep_id)  # finished by the command we waited for
        if done is not None:
            return done
        return _sweep(base, cfg, store, space, sweep_id, metric, mode, ray_address, wait)


class _Idle:
    """A logger callback that logs nothing."""

    def __init__(self) -> None:
        pass

    def log_trial_start(self, trial: Any) -> None:
        pass

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        pass

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        pass


# Tune pickles these with the experiment (tuner.pkl) to resume a sweep: keep their names and
# module, or sweeps interrupted before a rename cannot resume.
class NoCsv(_Idle, CSVLoggerCallback):
    """Tune's CSV logger, idle."""


class NoTensorBoard(_Idle, TBXLoggerCallback):
    """Tune's TensorBoard logger, idle (it needs no tensorboardX)."""


def quiet_loggers() -> list[Any]:
    """Tune adds a CSV, a JSON and a TensorBoard logger to every run unless it is handed one of
    each kind (or the process's environment says TUNE_DISABLE_AUTO_CALLBACK_LOGGERS): the
    TensorBoard files nobody asked for (and a warning for every inf they are handed) and a CSV
    copy of result.json. Handing it idle ones of those two kinds turns them off for this sweep
    alone; the trial table comes from JsonLoggerCallback's result.json. (Tune's console block
    then names a TensorBoard folder, which stays empty.)"""
    return [NoCsv(), NoTensorBoard(), JsonLoggerCallback()]


def _sweep(
    base: RunConfig,
    cfg: SweepConfig,
    store: ArtifactStore,
    space: SearchSpace,
    sweep_id: str,
    metric: str,
    mode: str,
    ray_address: str | None,
    wait: bool,
) -> SweepResult:
    ensure_ray(ray_address)
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    workers = trial_workers(base, space)
    if workers > 1:  # the widest trial must fit, or Tune would wait for it forever
        widest = base.model_copy(
            update={"train": base.train.model_copy(update={"num_workers": workers})}
        )
        check_capacity(widest, resources, resolve_use_gpu(widest, resources))
    prepared = prepare(base.data, store, ray_address=ray_address, wait=wait)  # and features
    # a one-worker trial trains in its own actor (1 CPU); a wider one is a driver that waits on
    # its Ray Train workers (no CPU: the workers hold the CPUs)
    concurrency = min(cfg.max_concurrent or cpus, max(1, cpus // workers))
    ctx = {
        "base": base.model_dump(mode="json"),
        "store": store.uri,
        "sweep_id": sweep_id,
        "dataset_key": prepared.key,
        "repeats": cfg.repeats,
        "metric": metric,
        "judge_every": cfg.judge_every,
    }
    # a driver asks for memory only: Tune needs some resource in a trial's first bundle
    driver = {"cpu": 1} if workers == 1 else {"cpu": 0, "memory": DRIVER_MEMORY}
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), driver)
    epochs = most_epochs(space, base.train.epochs)  # a space may sweep train.epochs upward
    scheduler = (
        ASHAScheduler(
            time_attr="epochs",  # not training_iteration: a resumed wide trial restarts that count
            max_t=epochs,
            grace_period=min(cfg.grace_period, epochs),
            reduction_factor=cfg.reduction_factor,
        )
        if cfg.scheduler == "asha"
        else FIFOScheduler()
    )
    tracking = tracking_for(store)
    params = {"base": base.model_dump(mode="json"), "sweep": cfg.model_dump(mode="json")}
    tags = {"genai.kind": "sweep", "genai.dataset": f"{prepared.dataset}/{prepared.version}"}
    with tracked(tracking, layout.sweep(sweep_id), sweep_id, params, tags) as mlflow_run:
        trials = [] if mlflow_run is None else [TrialRuns(tracking, mlflow_run.run_id, sweep_id)]
        # Tune's MLflow callback sets MLflow's tracking URI process-wide: not beyond this sweep
        with contextlib.nullcontext() if mlflow_run is None else globals_kept():
            try:
                best = _tune(base, cfg, store, space, sweep_id, (metric, mode), trainable,
                             scheduler, make_search(cfg, space, concurrency), trials)  # fmt: skip
            except Exception:
                store.reachable()  # Tune's own sync fails first when the store goes away
                raise
        if mlflow_run is not None:
            mlflow_run.log_metrics({f"best_{metric}": best["score"], **best["counts"]})
            keys = (layout.sweep_best, layout.sweep_trials, layout.sweep_plot)
            mlflow_run.log_files(store_files(store, *(key(sweep_id) for key in keys)))
    return SweepResult(
        sweep_id, store.key_uri(layout.sweep(sweep_id)), best["trials"], best, best["counts"]
    )


def _tune(
    base: RunConfig,
    cfg: SweepConfig,
    store: ArtifactStore,
    space: SearchSpace,
    sweep_id: str,
    ranked: tuple[str, str],
    trainable: Any,
    scheduler: Any,
    search: Any,
    callbacks: list[Any],
) -> dict[str, Any]:
    """Run Tune (or resume its experiment), then write the trial table, the plot and best.json;
    ``ranked``: the metric and mode the best trial is chosen by."""
    metric, mode = ranked
    epochs = base.train.epochs
    fs, path = store.arrow_filesystem(layout.sweep(sweep_id))
    run_config = tune.RunConfig(
        name=layout.sweep_tune(sweep_id).rsplit("/", 1)[-1],
        storage_path=path,
        storage_filesystem=fs,
        failure_config=tune.FailureConfig(max_failures=0),
        # 2, not 1: the experiment snapshot may name the previous checkpoint when a driver dies
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[
            Progress(cfg.trials * space.grid_size, base.train.epochs, metric, mode),
            *quiet_loggers(),
            *callbacks,
        ],
        verbose=0,
    )
    experiment = f"{path}/tune"
    start = time.perf_counter()
    # One-worker trials reuse their actors (a process keeps torch imported and the dataset read,
    # genai.tune.trial.kept): Tune resets a reused actor only if the last trial's thread ends
    # within TUNE_FUNCTION_THREAD_TIMEOUT_S (2 s), which an in-process trial's does at its next
    # report when stopped; a wider trial's thread waits in TorchTrainer.fit() and never does, so
    # a sweep with any such trial starts a fresh actor for each.
    reuse = trial_workers(base, space) == 1
    if tune.Tuner.can_restore(experiment, storage_filesystem=fs):
        log.info("resuming sweep %s from %s", sweep_id, store.key_uri(layout.sweep_tune(sweep_id)))
        tuner = tune.Tuner.restore(
            experiment,
            trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
            storage_filesystem=fs,
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={p.path: to_tune(p) for p in space.params},
            tune_config=tune.TuneConfig(
                metric="score",
                mode=mode,
                num_samples=cfg.trials,
                scheduler=scheduler,
                search_alg=search,
                reuse_actors=reuse,
            ),
            run_config=run_config,
        )
    grid = tuner.fit()
    table = trials_table(grid, space, epochs)
    store.write_table(layout.sweep_trials(sweep_id), table)
    rows = table.to_pylist()
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "stopped", "failed")}
    scored = [r for r in rows if r["status"] != "failed" and r["score"] is not None]
    if not scored:
        raise RuntimeError(f"sweep {sweep_id}: every trial failed; first error: {rows[0]['error']}")
    best_row = (min if mode == "min" else max)(scored, key=lambda r: r["score"])
    params = {p.path: best_row[p.path] for p in space.params}
    best = {
        "sweep_id": sweep_id,
        "trial_id": best_row["trial_id"],
        "params": params,
        "score": best_row["score"],
        "score_std": best_row["score_std"],
        "metric": metric,
        "mode": mode,
        "config": trial_config(base, params).model_dump(mode="json"),
        "trials": len(rows),
        "counts": counts,
        "wall_s": round(time.perf_counter() - start, 2),
    }
    store.write_bytes(layout.sweep_plot(sweep_id), plot_sweep(rows, space, metric, mode))
    store.write_json(layout.sweep_best(sweep_id), best)  # written last: the sweep is complete
    return best
