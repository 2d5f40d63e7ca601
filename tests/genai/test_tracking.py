"""genai.tracking against MLflow's own SQLite store (no Ray): where a job tracks to, nesting, a
run taken up again, status on failure, files attached later, and a server that does not answer."""

from __future__ import annotations

import logging
import threading

import pytest

from genai import tracking
from genai.storage import ArtifactStore
from genai.tracking import (
    KEY_TAG,
    PARENT_TAG,
    Tracking,
    attach,
    tracked,
    tracked_beside,
    tracking_for,
)
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", tracking.SWITCH):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(tracking, "_broken", set())


@pytest.fixture
def local(tmp_path) -> tuple[ArtifactStore, Tracking]:
    store = ArtifactStore(f"file://{tmp_path}/store")
    return store, tracking_for(store)


def test_a_local_store_tracks_to_sqlite_beside_its_artifacts(local, tmp_path):
    store, where = local
    assert where.uri == f"sqlite:///{tmp_path}/store/mlflow/mlflow.db"
    assert where.artifact_location == (tmp_path / "store" / "mlflow" / "artifacts").as_uri()
    assert where.experiment == "genai"
    with tracked(where, "runs/r1", "r1", {"model": {"family": "vae"}}) as run:
        run.log_metrics({"loss": 1.5, "ok": True, "name": "x"}, step=3)
        run.log_files({"a.json": {"k": 1}, "b.txt": "text", "c.bin": b"\x00\x01"}, folder="f")
    got = where.client().get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "r1"
    assert got.data.params == {"model.family": "vae"} and got.data.metrics == {"loss": 1.5}
    assert got.data.tags[KEY_TAG] == "runs/r1"
    files = sorted(a.path for a in where.client().list_artifacts(run.run_id, "f"))
    assert files == ["f/a.json", "f/b.txt", "f/c.bin"]
    assert (tmp_path / "store" / "mlflow" / "mlflow.db").is_file()
    assert list((tmp_path / "store" / "mlflow" / "artifacts").rglob("c.bin"))


def test_where_to_track_follows_the_environment(monkeypatch, tmp_path, bucket):
    store = ArtifactStore(f"file://{tmp_path}/store")
    monkeypatch.setenv(tracking.SWITCH, "off")
    assert tracking_for(store) is None
    monkeypatch.delenv(tracking.SWITCH)
    assert tracking_for(ArtifactStore(f"s3://{bucket}/root")) is None  # no "beside" in S3
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    assert tracking_for(ArtifactStore(f"s3://{bucket}/root")) == Tracking(
        f"sqlite:///{tmp_path}/elsewhere.db", "mine"
    )


def test_runs_nest_and_a_failed_block_marks_its_run(local):
    _, where = local
    client = where.client()
    with tracked(where, "pipelines/p", "p") as pipeline:
        with tracked(where, "sweeps/s", "s") as sweep:
            assert tracking.parent() == sweep.run_id
        with pytest.raises(ValueError), tracked(where, "runs/r", "r") as run:
            raise ValueError("boom")
    assert tracking.parent() is None
    assert client.get_run(sweep.run_id).data.tags[PARENT_TAG] == pipeline.run_id
    assert client.get_run(run.run_id).data.tags[PARENT_TAG] == pipeline.run_id
    assert client.get_run(run.run_id).info.status == "FAILED"
    assert PARENT_TAG not in client.get_run(pipeline.run_id).data.tags


def test_a_run_opened_beside_its_block_nests_and_ends_as_tracked_does(local):
    """A run's training opens its MLflow run in a thread while Ray Train starts: the thread
    nests it under the caller's parent, the block gets it when it asks, and it ends FINISHED
    or FAILED as a :func:`tracked` block's."""
    _, where = local
    client = where.client()
    with tracked(where, "pipelines/p", "p", {"a": 1}) as pipeline:
        with tracked_beside(where, "runs/ok", "ok", {"b": 2}, {"genai.kind": "run"}) as opened:
            assert tracking.parent() == pipeline.run_id  # the block starts no run of its own
            ok = opened()
            ok.log_metrics({"loss": 2.0}, step=1)
        with pytest.raises(ValueError), tracked_beside(where, "runs/bad", "bad") as failing:
            raise ValueError("boom")
    got = client.get_run(ok.run_id)
    assert got.info.status == "FINISHED" and got.data.tags[PARENT_TAG] == pipeline.run_id
    assert got.data.params == {"b": "2"} and got.data.tags["genai.kind"] == "run"
    assert [(m.step, m.value) for m in client.get_metric_history(ok.run_id, "loss")] == [(1, 2.0)]
    bad = client.get_run(failing().run_id)
    assert bad.info.status == "FAILED" and bad.data.tags[PARENT_TAG] == pipeline.run_id
    with tracked_beside(None, "runs/off", "off") as untracked:
        assert untracked() is None


def test_a_run_opened_beside_with_nest_is_the_parent_once_the_block_asks_for_it(local):
    """A pipeline opens its MLflow run while its data is prepared (``nest=True``): the runs its
    block starts after it asks for that run nest under it, and after the block the parent is
    the caller's again, also when the block failed before it asked."""
    _, where = local
    client = where.client()
    with tracked_beside(where, "pipelines/p", "p", {"a": 1}, nest=True) as opened:
        assert tracking.parent() is None  # not asked for yet
        pipeline = opened()
        assert tracking.parent() == pipeline.run_id and opened() == pipeline
        with tracked(where, "sweeps/s", "s") as sweep:
            assert tracking.parent() == sweep.run_id
        with tracked_beside(where, "runs/r", "r") as run_opened:
            run = run_opened()
    assert tracking.parent() is None
    assert client.get_run(sweep.run_id).data.tags[PARENT_TAG] == pipeline.run_id
    assert client.get_run(run.run_id).data.tags[PARENT_TAG] == pipeline.run_id
    assert client.get_run(pipeline.run_id).info.status == "FINISHED"
    with pytest.raises(ValueError), tracked_beside(where, "pipelines/f", "f", nest=True) as failed:
        raise ValueError("boom")  # before it asked for its run
    assert tracking.parent() is None
    assert client.get_run(failed().run_id).info.status == "FAILED"
    # asked for first inside a nested run's block, or from another thread: not the parent there
    with tracked_beside(where, "pipelines/q", "q", nest=True) as late:
        with tracked(where, "sweeps/t", "t") as inner:
            late()
            assert tracking.parent() == inner.run_id
        assert tracking.parent() is None
        asker = threading.Thread(target=late)
        asker.start()
        asker.join()
        assert tracking.parent() is None
    assert tracking.parent() is None


def test_an_unfinished_run_is_taken_up_again_a_finished_one_is_not(local):
    _, where = local
    with pytest.raises(KeyboardInterrupt), tracked(where, "runs/r", "r") as first:
        raise KeyboardInterrupt
    assert where.client().get_run(first.run_id).info.status == "KILLED"
    with tracked(where, "runs/r", "r") as resumed:
        pass
    assert resumed.run_id == first.run_id
    with tracked(where, "runs/r", "r") as again:  # e.g. --force: done again, a new run
        pass
    assert again.run_id != first.run_id


def test_attach_adds_to_the_run_with_that_key(local):
    store, where = local
    with tracked(where, "runs/r", "r") as run:
        pass
    attach(store, "runs/r", metrics={"eval/fid": 12.5}, files={"grid.png": b"png"}, folder="s")
    attach(store, "runs/never-tracked", metrics={"eval/fid": 1.0})  # nothing to add to
    assert where.client().get_run(run.run_id).data.metrics == {"eval/fid": 12.5}
    assert [a.path for a in where.client().list_artifacts(run.run_id, "s")] == ["s/grid.png"]


def test_rays_mlflow_set_up_leaves_the_process_as_it_found_it(local):
    """Ray's MLflow helpers (the sweep's Tune callback) set MLflow's tracking URI process-wide,
    and with it MLFLOW_TRACKING_URI: the next job of the process, or a command it starts, would
    track there. Found by CI: the README's commands, started after in-process sweeps, tracked
    into an earlier test's store."""
    import os

    import mlflow
    from ray.air._internal.mlflow import _MLflowLoggerUtil

    _, where = local
    before = mlflow.get_tracking_uri()
    with tracking.globals_kept():
        _MLflowLoggerUtil().setup_mlflow(tracking_uri=where.uri, experiment_name="genai")
        assert os.environ["MLFLOW_TRACKING_URI"] == where.uri  # what Ray leaves behind
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before != where.uri


def test_a_server_that_does_not_answer_warns_once_and_tracks_nothing(monkeypatch, tmp_path, caplog):
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    store = ArtifactStore(f"file://{tmp_path}/store")
    with caplog.at_level(logging.INFO, logger="genai.progress"):
        assert tracking_for(store) is None
        assert tracking_for(store) is None  # no second probe, no second warning
    (line,) = [r.getMessage() for r in caplog.records if "MLflow" in r.getMessage()]
    assert line.startswith(f"tracking MLflow at {down}: no answer (ConnectionRefusedError")
    assert line.endswith("this job goes on untracked (its artifacts are in the store as always)")


def test_a_server_that_goes_away_mid_job_costs_the_job_nothing(monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    gone = Tracking(f"http://127.0.0.1:{free_port()}")  # answered the probe, then went
    ran = []
    with caplog.at_level(logging.INFO, logger="genai.progress"):
        with tracked(gone, "runs/r", "r") as run:
            ran.append(run)
        attach_failed = tracking.safely(gone, lambda: 1 / 0)
    assert ran == [None] and attach_failed is None
    assert len([r for r in caplog.records if "goes on untracked" in r.getMessage()]) == 1
