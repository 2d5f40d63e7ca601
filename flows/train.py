"""The ``train`` flow: a run config in, a trained run (metrics, checkpoints) in the store out."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.retry import retry_on_io
from genai.config import RunConfig
from genai.storage import ArtifactStore


@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_on_io)
def train_run(run: RunConfig, store: str | None, ray_address: str | None) -> dict[str, Any]:
    """Prepare the data if needed, then train on Ray Train (resuming a stopped run by its id)."""
    from genai.train.launcher import train

    result = train(run, ArtifactStore(store), ray_address=ray_address)
    return {
        **result.summary(),
        "reused": result.reused,
        "resumed_from_epoch": result.resumed_from_epoch,
    }


@flow(name="train", log_prints=True)
def train_flow(
    run: RunConfig = RunConfig(),
    store: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Train one model: ``run`` holds data, model, loss and train settings; ``ray_address`` is
    None (start or join a local Ray), "auto", or a head address."""
    result = train_run(run, store, ray_address)
    logger = get_run_logger()
    if result["reused"]:
        logger.info("run %s was already finished: %s", result["run_id"], result["uri"])
    else:
        logger.info(
            "trained %s for %d epochs: %s", result["run_id"], result["epochs"], result["uri"]
        )
    return result
