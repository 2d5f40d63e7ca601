"""The ``train`` flow: a run config in, a trained run (metrics, checkpoints) in the store out."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.retry import retry_on_io
from genai.config import RunConfig
from genai.storage import ArtifactStore
from genai.train.launcher import train
from genai.train.runs import TrainResult


@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_on_io)
def train_run(
    run: RunConfig, store: str | None, ray_address: str | None, wait: bool = True
) -> TrainResult:
    """Prepare the data if needed, then train on Ray Train (resuming a stopped run by its id)."""
    return train(run, ArtifactStore(store), ray_address=ray_address, wait=wait)


@flow(name="train", log_prints=True)
def train_flow(
    run: RunConfig = RunConfig(),
    store: str | None = None,
    ray_address: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Train one model: ``run`` holds data, model, loss and train settings; ``ray_address`` is
    None (start or join a local Ray), "auto", or a head address; ``wait``: False fails at once
    when another command is producing the same run."""
    result = train_run(run, store, ray_address, wait).record()
    logger = get_run_logger()
    if result["reused"]:
        logger.info("run %s was already finished: %s", result["run_id"], result["uri"])
    else:
        logger.info(
            "trained %s for %d epochs: %s", result["run_id"], result["epochs"], result["uri"]
        )
    return result
