"""The driver's view of a Ray Train run (genai.train.hooks.watching), without Ray: the epochs the
workers add to metrics.parquet reach the console and the run's MLflow run once each, and a
resumed run logs the epochs its MLflow run lacks, none twice."""

from __future__ import annotations

from genai.storage import ArtifactStore
from genai.tracking import tracked, tracking_for
from genai.train.hooks import watching
from genai.train.runs import write_metrics


def entry(epoch: int) -> dict[str, float]:
    return {"epoch": epoch, "epoch_s": 0.5, "samples_per_s": 100.0, "loss": 10.0 - epoch}


def test_a_resumed_run_logs_the_epochs_its_mlflow_run_lacks_and_none_twice(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    where = tracking_for(store)
    said: list[str] = []
    with tracked(where, "runs/r", "r") as run:
        # a command killed after the workers wrote epochs 0 and 1, its driver having logged 0
        write_metrics(store, "r", [entry(0), entry(1)])
        run.log_metrics({"epoch_s": 0.5, "loss": 10.0}, step=0)
        # the resumed command watches while the workers add epoch 2
        with watching(store, "r", 3, lambda line, shown=True: said.append(line), every=0.05,
                      mlflow_run=lambda: run):  # fmt: skip
            write_metrics(store, "r", [entry(0), entry(1), entry(2)])
    client = where.client()
    assert [m.step for m in client.get_metric_history(run.run_id, "epoch_s")] == [0, 1, 2]
    assert [m.value for m in client.get_metric_history(run.run_id, "loss")] == [10.0, 9.0, 8.0]
    assert len(said) == 1 and "epoch 3/3" in said[0]  # only the new epoch on the console


def test_a_new_run_logs_every_epoch_once(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    where = tracking_for(store)
    with (
        tracked(where, "runs/n", "n") as run,
        watching(store, "n", 2, lambda *a, **k: None, every=0.05, mlflow_run=lambda: run),
    ):
        write_metrics(store, "n", [entry(0)])
        write_metrics(store, "n", [entry(0), entry(1)])
    steps = [m.step for m in where.client().get_metric_history(run.run_id, "loss")]
    assert steps == [0, 1]
