"""System-level faults: the pipeline process killed during the sweep; the S3 endpoint stopped
mid-pipeline. Both end, after a re-run, in a complete pipeline with nothing duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai.storage import ArtifactStore
from tests.flows.test_pipeline import SMALL, tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
from flows.pipeline import pipeline_flow
from genai.config import PipelineConfig
from genai.configfile import load_config
cfg = load_config(PipelineConfig, data={data!r})
pipeline_flow(config=cfg, store={store!r})
"""


def start_pipeline(store: ArtifactStore, api_url: str, log: Path, **extra) -> subprocess.Popen:
    code = DRIVER.format(data={**SMALL, **extra}, store=store.uri)
    env = {**os.environ, "PREFECT_API_URL": api_url}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip


def wait_until(check, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            pytest.fail(f"the pipeline ended (rc {proc.returncode}) before {what}")
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen within {timeout:.0f}s")


def sweep_reports(store: ArtifactStore) -> list[int]:
    results = [k for k in store.list("sweeps") if k.endswith("/result.json")]
    return [store.read_bytes(k).count(b"\n") for k in results]


def test_pipeline_killed_during_the_sweep_then_rerun(prefect_server, tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    extra = {"sweep.trials": 4, "sweep.scheduler": "fifo", "train.epochs": 5}
    proc = start_pipeline(store, prefect_server, tmp_path / "first.log", **extra)
    try:
        wait_until(
            lambda: sum(n >= 5 for n in sweep_reports(store)) >= 1, 240, proc, "a finished trial"
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not [k for k in store.list() if k.startswith("pipelines/")]
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(config=tiny(**extra), store=store.uri)
    trials = store.read_table(f"sweeps/{summary['sweep']['sweep_id']}/trials.parquet").to_pylist()
    assert len(trials) == 4 and len({t["trial_id"] for t in trials}) == 4  # none lost, none twice
    assert all(t["status"] == "finished" and t["epochs"] == 5 for t in trials), [
        (t["trial_id"], t["status"], t["epochs"], t["error"]) for t in trials
    ]
    assert summary["stage_seconds"]["prepare"] < 5  # the dataset was kept, not prepared again


def test_s3_stopped_mid_pipeline_then_back(prefect_server, s3_control, bucket, tmp_path):
    store = ArtifactStore(f"s3://{bucket}/faults")
    proc = start_pipeline(store, prefect_server, tmp_path / "first.log", **{"train.epochs": 3})
    try:
        wait_until(
            lambda: any(n >= 1 for n in sweep_reports(store)), 240, proc, "the sweep started"
        )
        s3_control.stop()
        proc.wait(timeout=300)  # bounded retries: it must give up, not hang
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        s3_control.start()
    out = (tmp_path / "first.log").read_text()
    assert proc.returncode != 0
    clear = (
        "cannot reach the store",
        "cannot write",
        "cannot read",
        "cannot list",
        "cannot check",
        "cannot commit",
    )
    errors = [ln for ln in out.splitlines() if any(c in ln for c in clear)]
    assert errors, out[-3000:]  # a StoreError, not a bare botocore trace
    assert f"s3://{bucket}/faults" in errors[-1] and "127.0.0.1" in errors[-1], errors[-1]
    # nothing half-written is visible: every dataset has its manifest, every Parquet file reads
    for key in store.list("datasets"):
        version = "/".join(key.split("/")[:3])
        assert store.exists(f"{version}/manifest.json"), key
    for key in [k for k in store.list() if k.endswith(".parquet")]:
        store.read_table(key)
    assert not [k for k in store.list() if k.startswith("pipelines/")]
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(config=tiny(**{"train.epochs": 3}), store=store.uri)
    assert summary["stage_seconds"]["prepare"] < 5  # finished stages are skipped
    assert store.exists(f"pipelines/{summary['pipeline_id']}/summary.json")
