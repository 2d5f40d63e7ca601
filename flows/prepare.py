"""The ``prepare-data`` flow: a data config in, a prepared dataset in the store out."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.retry import retry_on_io
from genai import layout
from genai.config import DataConfig
from genai.data.prepare import prepare
from genai.storage import ArtifactStore


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def prepare_dataset(data: DataConfig, store: str | None, ray_address: str | None) -> dict:
    """Validate, normalise, split and write one dataset (a no-op when it is already there)."""
    prepared = prepare(data, ArtifactStore(store), ray_address=ray_address)
    return {**prepared.summary(), "created": prepared.created}


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def feature_network(dataset: str, version: str, store: str | None) -> float | None:
    """Labelled image data: train (once) the domain feature network; its test accuracy."""
    from genai.evaluate.features import ensure_feature_net

    trained = ensure_feature_net(ArtifactStore(store), layout.dataset(dataset, version))
    return None if trained is None else trained.test_accuracy


@flow(name="prepare-data", log_prints=True)
def prepare_data(
    data: DataConfig = DataConfig(),
    store: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Prepare ``data`` into the store (default ``$GENAI_STORE`` or ``file://./artifacts``)."""
    result = prepare_dataset(data, store, ray_address)
    accuracy = feature_network(result["dataset"], result["version"], store)
    if accuracy is not None:
        result["feature_net_test_accuracy"] = accuracy
    what = "prepared" if result["created"] else "already prepared"
    get_run_logger().info(
        "%s %s/%s at %s", what, result["dataset"], result["version"], result["uri"]
    )
    return result
