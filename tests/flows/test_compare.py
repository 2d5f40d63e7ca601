"""`genai compare` end to end: a tiny compare (2 families x 2 losses x 2 seeds at two budgets of a
few steps) on
file:// and s3://, its tables, pictures, report, markdown artifact and MLflow runs; one more seed
trains only that seed; a compare SIGKILLed mid-way resumes without training a finished model
again; a bad selection is refused before anything starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from genai.config import CompareConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from tests.flows.test_prepare_flow import genai

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "data": {"source": "ring8", "n": 1200},
    "families": ["gan", "vae"],
    "losses": ["hinge", "least_squares", "mse", "mae"],
    "seeds": 2,
    "budgets": [30, 60],
    "evaluate": {"n_samples": 200},
}
PNG = b"\x89PNG\r\n\x1a\n"


def tiny(**extra) -> CompareConfig:
    return load_config(CompareConfig, {**TINY, **extra})


def records(store: ArtifactStore) -> dict[str, bytes]:
    return {k: store.read_bytes(k) for k in store.list("cells") if k.endswith("/record.json")}


def test_a_tiny_compare_end_to_end(prefect_server, store):
    from flows.compare import compare_flow

    result = compare_flow(config=tiny(), store=store.uri)
    cid = result["comparison_id"]
    assert result["counts"] == {"models": 16, "trained": 16, "found": 0}
    assert result["metric"] == "high_quality" and result["weak"] is True
    cells = store.read_table(f"comparisons/{cid}/cells.parquet").to_pylist()
    assert len(cells) == 16
    assert sorted((c["family"], c["loss"], c["seed"], c["budget"]) for c in cells) == sorted(
        (f, loss, s, b) for f, loss in [("gan", "hinge"), ("gan", "least_squares"),
                                        ("vae", "mse"), ("vae", "mae")]
        for s in (0, 1) for b in (30, 60)
    )  # fmt: skip
    for c in cells:  # every metric beside its floor, the budget and the CPU it took
        assert c["steps"] >= c["budget"] and c["cpu_s"] > 0 and c["evaluate_s"] >= 0
        assert 0 <= c["high_quality"] <= 1 and c["floor_high_quality"] > 0.9
        assert c["mmd2"] is not None and c["floor_mmd2"] is not None
        assert store.exists(f"runs/{c['run_id']}/result.json")
    board = store.read_table(f"comparisons/{cid}/leaderboard.parquet").to_pylist()
    assert [b["rank"] for b in board] == list(range(1, 9))  # 4 cells at 2 budgets
    assert board[0]["verdict"] == "best"
    assert result["winner"] == f"{board[0]['cell']} @ {board[0]['steps']:,} steps"
    assert {b["verdict"] for b in board[1:]} <= {"indistinguishable", "worse"}
    means = [b["high_quality_mean"] for b in board]
    assert means == sorted(means, reverse=True)  # higher is better, best first
    for b in board[1:]:
        assert b["diff_low"] <= b["diff"] <= b["diff_high"]
    for name in ("samples.png", "metrics.png", "quality.png", "budgets.png"):
        assert store.read_bytes(f"comparisons/{cid}/{name}").startswith(PNG)
    report = store.read_bytes(f"comparisons/{cid}/report.md").decode()
    assert result["verdict"] in report and "The verdict is weak: 2 seeds" in report
    assert all(f"| {b['rank']} | {b['cell']} @ {b['steps']:,} steps |" in report for b in board)
    artifact = Artifact.get(f"compare-{cid}".lower())
    assert artifact is not None and artifact.type == "markdown"
    assert result["verdict"] in artifact.data
    assert artifact.data.count("](data:image/png;base64,") == 4  # the pictures, inlined
    if store.protocol == "file":  # tracked beside a local store: the parent and a child a cell
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{store.path('mlflow')}/mlflow.db")
        runs = client.search_runs(client.search_experiments()[0].experiment_id)
        parent = [r for r in runs if r.data.tags.get("genai.kind") == "comparison"]
        children = [r for r in runs if r.data.tags.get("genai.kind") == "comparison-cell"]
        assert len(parent) == 1 and parent[0].info.status == "FINISHED"
        assert len(children) == 8
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent[0].info.run_id}
        assert {r.data.params["verdict"] for r in children} == {b["verdict"] for b in board}
        names = {a.path for a in client.list_artifacts(parent[0].info.run_id)}
        assert {"report.md", "cells.parquet", "samples.png"} <= names
    before = records(store)
    again = compare_flow(config=tiny(), store=store.uri)  # the stored answer
    assert again["reused"] and again["leaderboard"] == result["leaderboard"]
    more = compare_flow(config=tiny(seeds=3), store=store.uri)  # one more seed: only its models
    assert more["counts"] == {"models": 24, "trained": 8, "found": 16}
    after = records(store)
    assert len(after) == 24 and all(after[k] == v for k, v in before.items())


def test_a_compare_killed_mid_way_resumes_without_training_a_finished_model(
    prefect_server, tmp_path
):
    """`genai compare` SIGKILLed (its whole process group) once two models are done; the same
    compare again trains only the models without a record, and the finished ones' records and
    runs are untouched."""
    store = ArtifactStore(f"file://{tmp_path}/store")
    args = ["compare", "--source", "ring8", "--n", "1200", "--families", "gan",
            "--losses", "hinge,least_squares", "--seeds", "3", "--budget", "600",
            "--samples", "200", "--store", store.uri]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(records(store)) < 2:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two models finished within 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    done = records(store)
    assert 2 <= len(done) < 6, "the compare finished before it was killed: raise the budget"
    stamps = {k: os.stat(store.path(k)).st_mtime_ns for k in done}
    runs = [store.read_json(k)["run_id"] for k in done]
    results = {r: os.stat(store.path(f"runs/{r}/result.json")).st_mtime_ns for r in runs}
    assert not store.list("comparisons")  # nothing of the comparison's own was written
    out = genai(*args, "--json", api_url=prefect_server, cwd=None)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = store.read_json(
        next(k for k in store.list("comparisons") if k.endswith("summary.json"))
    )
    assert summary["counts"]["models"] == 6
    assert summary["counts"]["found"] >= len(done)  # a model killed after its record: found too
    assert summary["counts"]["trained"] == 6 - summary["counts"]["found"]
    assert {k: os.stat(store.path(k)).st_mtime_ns for k in done} == stamps  # not written again
    assert {r: os.stat(store.path(f"runs/{r}/result.json")).st_mtime_ns for r in runs} == results
    assert len(records(store)) == 6


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--families", "vae", "--losses", "hinge"],
         "compare.losses: 'hinge' is no loss of the main slot of vae; allowed: vae"
         " (reconstruction): mse, mae, huber, bce"),
        (["--budget", "0"], "compare.budgets.0: Input should be greater than 0"),
        (["--families", "vae", "--losses", "bce"], "'bce' needs data in [0, 1]"),
        (["--metric", "fid"], "compare.metric: 'fid' is not reported for data.source 'ring8'"),
        (["--families", "gan", "--losses", "hinge", "--set", "train.lr=-1"],
         "train.lr: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_a_bad_selection_fails_before_anything_starts(prefect_server, tmp_path, args, said):
    start = time.monotonic()
    out = genai("compare", "--source", "ring8", *args, "--store", f"file://{tmp_path}/s",
                api_url=prefect_server, cwd=None)  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert said in out.stderr and out.stderr.startswith("error: ")
    assert not (tmp_path / "s").exists()  # nothing written, no store made
    assert time.monotonic() - start < 30


def test_a_diverged_model_is_recorded_not_retried(prefect_server, tmp_path):
    """A model whose loss goes non-finite is an outcome: its record holds the error and no
    metrics, the line says so, and a compare run again does not train it again. When every
    model diverges there is no leaderboard: the compare fails, naming the first."""
    from flows.compare import compare_flow

    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = tiny(families=["gan"], losses=["hinge"], overrides=["train.lr=1000000",
                                                             "train.grad_clip=null"])  # fmt: skip
    with pytest.raises(RuntimeError, match="every model diverged; the first: gan/hinge seed 0"):
        compare_flow(config=cfg, store=store.uri)
    done = records(store)
    assert len(done) == 4  # 2 seeds x 2 budgets
    for body in done.values():
        record = json.loads(body)
        assert record["error"].startswith("FloatingPointError: ") and record["metrics"] == {}
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="every model diverged"):
        compare_flow(config=cfg, store=store.uri)
    assert records(store) == done and time.monotonic() - start < 30  # nothing trained again


def test_budgets_that_round_to_the_same_epochs_are_refused(prefect_server, tmp_path):
    """ring8's recipes train 625 steps an epoch: 100 and 200 steps are both one epoch."""
    out = genai("compare", "--source", "ring8", "--families", "vae", "--losses", "mse",
                "--budget", "100,200", "--store", f"file://{tmp_path}/s",
                api_url=prefect_server, cwd=None)  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "compare.budgets: [100, 200] steps round to the same whole epochs" in out.stderr
    assert not [k for k in ArtifactStore(f"file://{tmp_path}/s").list() if k.startswith("cells/")]
