"""The ``prepare-data`` flow: a data config in, a prepared dataset in the store out."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.retry import retry_on_io
from genai.config import DataConfig
from genai.data.prepare import PreparedDataset, prepare
from genai.storage import ArtifactStore


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def prepare_dataset(
    data: DataConfig, store: str | None, ray_address: str | None, wait: bool = True
) -> PreparedDataset:
    """Validate, normalise, split and write one dataset, and train an image dataset's feature
    network (each a no-op when it is already there)."""
    return prepare(data, ArtifactStore(store), ray_address=ray_address, wait=wait)


@flow(name="prepare-data", log_prints=True)
def prepare_data(
    data: DataConfig = DataConfig(),
    store: str | None = None,
    ray_address: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Prepare ``data`` into the store (default ``$GENAI_STORE`` or ``file://./artifacts``);
    ``wait``: False fails at once when another command is preparing the same dataset."""
    result = prepare_dataset(data, store, ray_address, wait).record(ArtifactStore(store))
    what = "prepared" if result["created"] else "already prepared"
    get_run_logger().info(
        "%s %s/%s at %s", what, result["dataset"], result["version"], result["uri"]
    )
    return result
