"""What is added to every epoch of a fit (:class:`Hook`), a run's own hook (its metrics table and
console lines, :class:`RunRecorder`), and the driver's view of a Ray Train run's progress
(:func:`watching`: the console, and the run's MLflow run)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from genai import layout
from genai.config import RunConfig
from genai.progress import milestone, note, step
from genai.storage import ArtifactStore, StoreError
from genai.tracking import TrackedRun
from genai.train.runs import history_of, read_history, write_metrics
from genai.train.session import Session
from genai.train.state import FitData, FitState

# a hook may set this to False in an epoch's entry: the epoch stays in the history but is not
# handed to the session (no report, no checkpoint); every rank must decide alike (a sweep trial
# judged every N epochs, genai.tune.trial.TrialJudge)
REPORTED = "judged"


@dataclass
class EpochContext:
    cfg: RunConfig
    session: Session
    state: FitState
    epoch: int
    entry: dict[str, Any]


class Hook:
    """Something added to every epoch; every rank calls it, so it must not call a collective
    on one rank only (score on rank 0 with process-local metrics)."""

    def setup(self, cfg: RunConfig, session: Session, data: FitData) -> None:
        """Before the first epoch (load what the hook needs, once)."""

    def on_epoch(self, ctx: EpochContext) -> dict[str, Any]:
        """After training an epoch, before its report: entries to add to it."""
        return {}

    def on_report(self, ctx: EpochContext) -> None:
        """After the epoch's report (and checkpoint) is committed."""


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


@contextlib.contextmanager
def watching(
    store: ArtifactStore,
    run_id: str,
    epochs: int,
    status: Callable[..., None],
    every: float = 1.0,
    mlflow_run: Callable[[], TrackedRun | None] = lambda: None,
) -> Iterator[None]:
    """While the block runs, give ``status`` (a :func:`genai.progress.heartbeat`'s) each epoch
    the run's metrics.parquet gains (the workers write it after every checkpoint), from this
    process: Ray Train's workers print elsewhere. Milestone epochs are said; the others go to
    the log, and the heartbeat repeats the latest when the console has been quiet for 10 s.
    Each epoch is also logged to the MLflow run ``mlflow_run()`` gives (it may wait for it to
    open; its step is the epoch), from here and not from a worker: importing MLflow in the
    rank-0 worker held every rank's first report by 2 s. A resumed run logs the epochs its
    MLflow run lacks (a killed command's last ones), none twice."""
    stop = threading.Event()
    shown = len(read_history(store, run_id))
    resumed = shown > 0
    logged: int | None = None  # the last epoch the MLflow run holds, once known

    def to_mlflow(history: list[dict[str, float]]) -> None:
        nonlocal logged
        tracked = mlflow_run()
        if tracked is None:
            return
        if logged is None:
            logged = tracked.last_step("epoch_s") if resumed else -1
        for entry in history:
            epoch = int(entry["epoch"])
            if epoch > logged:
                skip = ("epoch", REPORTED)
                tracked.log_metrics({k: v for k, v in entry.items() if k not in skip}, epoch)
                logged = epoch

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
        to_mlflow(history)  # after the console: it may wait for the MLflow run to open

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
