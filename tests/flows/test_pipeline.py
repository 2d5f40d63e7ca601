"""The pipeline flow: every stage, skipping on re-run, --force, on file:// and s3://."""

from __future__ import annotations

import time

import pytest

from genai.config import PipelineConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

SMALL = {
    "name": "tiny",
    "data.source": "ring8",
    "data.n": 1200,
    "model.family": "gan",
    "train.epochs": 2,
    "train.num_workers": 1,
    "sweep.space": "tune_spaces/gan_losses.yaml",
    "sweep.trials": 3,
    "retrain_epochs": 3,
    "evaluate.n_samples": 500,
    "generate.n": 50,
}


def tiny(**extra) -> PipelineConfig:
    return load_config(PipelineConfig, data={**SMALL, **extra})


def test_pipeline_end_to_end_then_skips_then_forced(prefect_server, bucket):
    """On S3; the file:// case is the README's `genai run` then `genai run --json`
    (tests/test_readme.py), the default job itself."""
    from flows.pipeline import pipeline_flow

    store = ArtifactStore(f"s3://{bucket}/pipe")
    summary = pipeline_flow(config=tiny(), store=store.uri)
    assert summary["summary_uri"] == f"{store.uri}/pipelines/{summary['pipeline_id']}/summary.json"
    saved = store.read_json(f"pipelines/{summary['pipeline_id']}/summary.json")
    assert saved["sweep"]["trials"] == 3 and saved["best_run"]["epochs"] == 3
    assert {"modes", "high_quality", "reverse_kl", "mmd2"} <= set(saved["metrics"])
    assert store.exists(f"samples/{saved['best_run']['run_id']}/scatter.png")
    assert store.exists(f"evaluations/{saved['best_run']['run_id']}/metrics.parquet")
    before = {k for k in store.list() if not k.startswith(("pipelines/", "sweeps/"))}
    start = time.monotonic()
    again = pipeline_flow(config=tiny(), store=store.uri)
    assert time.monotonic() - start < 20
    assert again == {**saved, "summary_uri": summary["summary_uri"]}  # the stored summary
    assert again["best_run"] == summary["best_run"] and again["metrics"] == summary["metrics"]
    after = {k for k in store.list() if not k.startswith(("pipelines/", "sweeps/"))}
    assert after == before
    # --force redoes the stages: the sweep runs and the best config trains again
    run_key = f"runs/{summary['best_run']['run_id']}/result.json"
    stamp = store.fs.info(store.path(run_key))["LastModified"]
    forced = pipeline_flow(config=tiny(), store=store.uri, force=True)
    assert forced["stage_seconds"]["sweep"] > 1 and forced["stage_seconds"]["train"] > 1
    assert store.fs.info(store.path(run_key))["LastModified"] > stamp  # trained again
