"""The ``sweep`` flow: Ray Tune over a search space, a leaderboard artifact, the trial table."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.evaluate import artifact_key
from flows.retry import retry_on_io
from genai.config import RunConfig, SweepConfig
from genai.storage import ArtifactStore
from genai.tune.record import SweepResult
from genai.tune.record import leaderboard as board
from genai.tune.sweep import sweep as run_sweep


@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_on_io)
def sweep_task(
    run: RunConfig,
    sweep: SweepConfig,
    store: str | None,
    ray_address: str | None,
    wait: bool = True,
) -> SweepResult:
    return run_sweep(run, sweep, ArtifactStore(store), ray_address=ray_address, wait=wait)


def leaderboard(store: str | None, sweep_id: str, top: int = 20) -> list[dict[str, Any]]:
    return board(ArtifactStore(store), sweep_id, top)


@flow(name="sweep", log_prints=True)
def sweep_flow(
    run: RunConfig = RunConfig(),
    sweep: SweepConfig = SweepConfig(),
    store: str | None = None,
    ray_address: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Sweep ``sweep.space`` around the base ``run``: ASHA, random or Optuna search, repeats;
    ``wait``: False fails at once when another command is producing the same sweep."""
    result = sweep_task(run, sweep, store, ray_address, wait).record()
    create_table_artifact(
        table=leaderboard(store, result["sweep_id"]),
        key=artifact_key(f"sweep-{result['sweep_id']}"),
        description=f"Leaderboard of sweep {result['sweep_id']} (score: {result['best']['metric']},"
        " best first)",
    )
    return result
