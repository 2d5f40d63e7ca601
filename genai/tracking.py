"""Experiment tracking in MLflow: every run, sweep and pipeline the store gains is an MLflow run.

Where to: ``MLFLOW_TRACKING_URI`` when it is set (a server ``http://...``, ``sqlite:///...``);
otherwise a SQLite database beside a local store's artifacts: ``{store}/mlflow/mlflow.db``, its
files under ``{store}/mlflow/artifacts``. A store in S3 without ``MLFLOW_TRACKING_URI`` is not
tracked (there is no "beside" for a database file), nor is anything under ``GENAI_TRACKING=off``.
The experiment is ``MLFLOW_EXPERIMENT_NAME``, else ``genai``.

Nesting follows the work: a pipeline's run is the parent of its sweep's and of its retrained run's;
a sweep's run is the parent of its trials' (Ray Tune's MLflow callback, :mod:`genai.tune.sweep`);
a run's epochs are logged by the command's process as its Ray Train workers write them
(:mod:`genai.train.launcher`). Each MLflow run carries the tag ``genai.key`` (``runs/{run_id}``,
``sweeps/{sweep_id}``, ``pipelines/{pipeline_id}``), so an evaluation or a sample grid made later
lands on the run it belongs to, and a resumed run goes on in the MLflow run it started.

Tracking never costs a job its result: a server that does not answer is named in one warning and
the job goes on untracked, as it does if MLflow fails later; every artifact is in the store anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from genai.progress import say
from genai.storage import ArtifactStore, redact

log = logging.getLogger(__name__)

SWITCH = "GENAI_TRACKING"  # off / 0 / false / no: nothing is tracked
EXPERIMENT = "genai"
KEY_TAG = "genai.key"
PARENT_TAG = "mlflow.parentRunId"
# MLflow's own defaults retry a request for minutes (7 retries, exponential back-off): a server
# that goes away mid-job would hold the job that long. Set unless the user set them.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PROBE_TIMEOUT_S = 3.0

T = TypeVar("T")

# the MLflow run new runs nest under (set while a pipeline or sweep runs in this context)
_parent: contextvars.ContextVar[str | None] = contextvars.ContextVar("genai_mlflow_parent")
_broken: set[str] = set()  # tracking URIs that failed in this process: warned once, then skipped


@dataclass(frozen=True)
class Tracking:
    """Where this job's MLflow runs go; picklable, so a Ray worker gets it as it is."""

    uri: str
    experiment: str = EXPERIMENT
    artifact_location: str | None = None  # for the experiment, when this job creates it

    def client(self):
        quiet()
        from mlflow import MlflowClient  # mlflow (1.0 s): only when a job tracks

        return MlflowClient(tracking_uri=self.uri)

    def experiment_id(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(
                self.experiment, artifact_location=self.artifact_location
            )
        except Exception:  # created meanwhile by another process
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    @property
    def shown(self) -> str:
        """The URI without credentials, for messages."""
        return redact(self.uri)


def quiet() -> None:
    """MLflow's INFO lines (database migrations) stay out of the console; HTTP retries short."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow  # noqa: F401 (it sets its loggers' levels on import, so this comes after)

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def globals_kept() -> Iterator[None]:
    """MLflow's process-wide state as it was before the block. Ray's MLflow helpers call
    ``mlflow.set_tracking_uri``, which also sets ``MLFLOW_TRACKING_URI`` in this process's
    environment: every later job of the process (a notebook's next call, a test session's next
    command) would track there, whatever its own store."""
    quiet()
    from mlflow.tracking._model_registry import utils as registry  # as above: when it tracks
    from mlflow.tracking._tracking_service import utils as service

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN")
    env = {name: os.environ.get(name) for name in names}
    uris = service._tracking_uri, registry._registry_uri
    try:
        yield
    finally:
        service._tracking_uri, registry._registry_uri = uris
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def warn(tracking: Tracking, what: str) -> None:
    """One warning per tracking URI and process; tracking to it stops for this process."""
    if tracking.uri in _broken:
        return
    _broken.add(tracking.uri)

    say(
        "tracking",
        f"MLflow at {tracking.shown}: {what}; this job goes on untracked"
        " (its artifacts are in the store as always)",
    )


def safely(tracking: Tracking | None, call: Callable[[], T], what: str = "failed") -> T | None:
    """``call()``, or None (with the one warning) when tracking is off or MLflow fails."""
    if tracking is None or tracking.uri in _broken:
        return None
    try:
        return call()
    except Exception as err:  # tracking never fails a job
        warn(tracking, f"{what}: {type(err).__name__}: {str(err)[:300]}")
        return None


def answers(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the MLflow server at ``uri`` answers its health check, else why not."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            return None if reply.status == 200 else f"health check answered {reply.status}"
    except Exception as err:
        reason = getattr(err, "reason", err)  # urllib wraps the socket's error
        return f"{type(reason).__name__}: {reason}"


def tracking_for(store: ArtifactStore) -> Tracking | None:
    """Where this job tracks to (module docstring), or None; a server that does not answer its
    health check within a few seconds is warned about once and not tracked to."""
    if os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        if store.protocol != "file":
            log.info("not tracked: store %s is not local and MLFLOW_TRACKING_URI is unset", store)
            return None
        home = Path(store.base) / "mlflow"
        home.mkdir(parents=True, exist_ok=True)
        return Tracking(f"sqlite:///{home}/mlflow.db", experiment, (home / "artifacts").as_uri())
    tracking = Tracking(uri, experiment)
    if tracking.uri in _broken:
        return None
    if uri.startswith(("http://", "https://")):
        why = answers(uri)
        if why is not None:
            warn(tracking, f"no answer ({why})")
            return None
    return tracking


@dataclass(frozen=True)
class TrackedRun:
    """One MLflow run of this job (``run_id`` is MLflow's)."""

    tracking: Tracking
    run_id: str

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        def batches() -> None:
            from mlflow.entities import Metric  # when it tracks

            now = int(time.time() * 1000)
            items = [Metric(k, v, now, step or 0) for k, v in numeric(metrics).items()]
            self._batches("metrics", items, 1000)

        safely(self.tracking, batches)

    def log_params(self, params: Mapping[str, Any]) -> None:
        def batches() -> None:
            from mlflow.entities import Param  # when it tracks

            items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
            self._batches("params", items, 100)

        safely(self.tracking, batches)

    def last_step(self, key: str) -> int:
        """The highest step of metric ``key`` in this run; -1 when it has none (or MLflow
        fails, after which nothing more is logged to it)."""
        history = safely(
            self.tracking, lambda: self.tracking.client().get_metric_history(self.run_id, key)
        )
        return max((m.step for m in history or ()), default=-1)

    def _batches(self, kind: str, items: list, size: int) -> None:
        """``log_batch`` in requests of at most ``size`` (MLflow's limit per request); called
        under :func:`safely`."""
        client = self.tracking.client()
        for i in range(0, len(items), size):
            client.log_batch(self.run_id, **{kind: items[i : i + size]})

    def log_files(self, files: Mapping[str, bytes | str | Any], folder: str | None = None) -> None:
        """Each ``name: content`` as an artifact (bytes as they are, str as text, anything else as
        JSON), under ``folder``."""

        def upload() -> None:
            with tempfile.TemporaryDirectory(prefix="genai-mlflow-") as tmp:
                for name, content in files.items():
                    path = Path(tmp) / name
                    if isinstance(content, bytes):
                        path.write_bytes(content)
                    elif isinstance(content, str):
                        path.write_text(content)
                    else:
                        path.write_text(json.dumps(content, indent=2, default=str))
                self.tracking.client().log_artifacts(self.run_id, tmp, artifact_path=folder)

        safely(self.tracking, upload, "logging artifacts failed")


def store_files(store: ArtifactStore, *keys: str) -> dict[str, bytes]:
    """Stored files as artifacts, each under its own file name (``runs/x/config.json``:
    ``config.json``)."""
    return {key.rsplit("/", 1)[-1]: store.read_bytes(key) for key in keys}


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries MLflow can take as metrics: numbers (not booleans), as floats."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = float(value)
    return out


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``a.b.c: value`` pairs, as a Ray Tune search space names them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def newest(tracking: Tracking, key: str, experiment_id: str | None = None) -> Any:
    """The newest MLflow run (the whole ``Run``) tagged ``genai.key = key``, or None."""
    runs = tracking.client().search_runs(
        [experiment_id or tracking.experiment_id()],
        filter_string=f"tags.`{KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def find(tracking: Tracking, key: str) -> str | None:
    """The id of the newest MLflow run tagged ``genai.key = key`` in the experiment, or None."""
    run = newest(tracking, key)
    return None if run is None else run.info.run_id


def parent() -> str | None:
    """The MLflow run that runs started now nest under."""
    return _parent.get(None)


def _open(
    tracking: Tracking, key: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str]
) -> str:
    client = tracking.client()
    experiment_id = tracking.experiment_id()
    previous = newest(tracking, key, experiment_id)  # the search returns its status too
    if previous is not None and previous.info.status != "FINISHED":
        client.update_run(previous.info.run_id, status="RUNNING")  # a resumed run goes on
        return previous.info.run_id
    tags = {KEY_TAG: key, **tags}
    if parent() is not None:
        tags[PARENT_TAG] = parent()
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    TrackedRun(tracking, run_id).log_params(params)
    return run_id


@contextlib.contextmanager
def tracked(
    tracking: Tracking | None,
    key: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[TrackedRun | None]:
    """An MLflow run for the block (None when not tracked), nested under the current parent
    and parent of the runs the block starts; FINISHED if the block returns, else FAILED (KILLED on
    Ctrl-C). A run with the same key that did not finish is taken up again."""
    run_id = safely(tracking, lambda: _open(tracking, key, name, params or {}, dict(tags or {})))
    if run_id is None:
        yield None
        return
    token = _parent.set(run_id)
    try:
        with _ended(tracking, lambda: run_id):
            yield TrackedRun(tracking, run_id)
    finally:
        _parent.reset(token)


@contextlib.contextmanager
def tracked_beside(
    tracking: Tracking | None,
    key: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    *,
    nest: bool = False,
) -> Iterator[Callable[[], TrackedRun | None]]:
    """:func:`tracked`, with the run opened in a thread beside the block, which gets a function
    that waits for it. ``nest``: runs the block starts after its first call of that function
    nest under this run (call it in the block's own thread), as under a :func:`tracked` run.
    Importing MLflow and opening its database took 1.4 s of a warm ``genai train`` before Ray
    Train could start (beside Ray Train's start-up it shares two cores with it: a warm
    ``genai train`` 0.7 s faster on average over five alternating pairs); a pipeline on a new
    store waited 2.7 s for MLflow to make its database (measured beside another job) before its
    preparation could start."""
    if tracking is None:
        yield lambda: None
        return
    found: list[str | None] = []

    def open_run() -> None:
        found.append(safely(tracking, lambda: _open(tracking, key, name, params or {}, tags or {})))

    nested = contextvars.copy_context()  # the parent the caller's block nests under
    opening = threading.Thread(target=nested.run, args=(open_run,), name="genai-mlflow-open")
    opening.daemon = True
    opening.start()
    tokens: list[contextvars.Token] = []
    entered = (threading.current_thread(), _parent.get(None))

    def opened() -> TrackedRun | None:
        opening.join()
        run = None if not found or found[0] is None else TrackedRun(tracking, found[0])
        # the parent from here on, if asked for where the block runs (not from another thread,
        # nor inside a nested run's block, whose end would then restore the wrong parent)
        here = (threading.current_thread(), _parent.get(None)) == entered
        if nest and run is not None and not tokens and here:
            tokens.append(_parent.set(run.run_id))
        return run

    try:
        with _ended(tracking, lambda: (run := opened()) and run.run_id):
            yield opened
    finally:
        if tokens:  # set in another context (a copy the thread ran a call in): gone with it
            with contextlib.suppress(ValueError):
                _parent.reset(tokens[0])


@contextlib.contextmanager
def _ended(tracking: Tracking, run_id: Callable[[], str | None]) -> Iterator[None]:
    """The MLflow run FINISHED if the block returns, else FAILED (KILLED on Ctrl-C)."""
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        ended = run_id()
        if ended is not None:
            safely(tracking, lambda: tracking.client().set_terminated(ended, status))


def attach(
    store: ArtifactStore,
    key: str,
    *,
    metrics: Mapping[str, Any] | None = None,
    files: Mapping[str, Any] | None = None,
    folder: str | None = None,
) -> None:
    """Add metrics and files to the MLflow run tagged ``key`` (made by an earlier command, e.g.
    an evaluation of a trained run); nothing when there is none or tracking is off."""
    tracking = tracking_for(store)
    run_id = safely(tracking, lambda: find(tracking, key))
    if run_id is None:
        return
    run = TrackedRun(tracking, run_id)
    if metrics:
        run.log_metrics(metrics)
    if files:
        run.log_files(files, folder)
