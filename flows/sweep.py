"""The ``sweep`` flow: Ray Tune over a search space, a leaderboard artifact, the trial table."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.evaluate import artifact_key
from flows.retry import retry_on_io
from genai.config import RunConfig, SweepConfig
from genai.storage import ArtifactStore


@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_on_io)
def sweep_task(
    run: RunConfig, sweep: SweepConfig, store: str | None, ray_address: str | None
) -> dict:
    from genai.tune.sweep import sweep as run_sweep

    result = run_sweep(run, sweep, ArtifactStore(store), ray_address=ray_address)
    return {**result.summary(), "counts": result.counts, "reused": result.reused}


def leaderboard(store: str | None, sweep_id: str, top: int = 20) -> list[dict[str, Any]]:
    from genai.tune.record import leaderboard as board

    return board(ArtifactStore(store), sweep_id, top)


@flow(name="sweep", log_prints=True)
def sweep_flow(
    run: RunConfig = RunConfig(),
    sweep: SweepConfig = SweepConfig(),
    store: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Sweep ``sweep.space`` around the base ``run``: ASHA, random or Optuna search, repeats."""
    result = sweep_task(run, sweep, store, ray_address)
    create_table_artifact(
        table=leaderboard(store, result["sweep_id"]),
        key=artifact_key(f"sweep-{result['sweep_id']}"),
        description=f"Leaderboard of sweep {result['sweep_id']} (score: {result['best']['metric']},"
        " best first)",
    )
    return result
