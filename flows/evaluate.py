"""The ``evaluate`` flow: loss-independent metrics of a run, beside their floors, as artifacts."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows.retry import retry_on_io
from genai.config import EvaluateConfig
from genai.evaluate.evaluate import Evaluation, evaluate_run
from genai.storage import ArtifactStore


def artifact_key(text: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def evaluate_task(
    run_id: str, evaluate: EvaluateConfig, store: str | None, ray_address: str | None = None
) -> Evaluation:
    return evaluate_run(ArtifactStore(store), run_id, evaluate, ray_address=ray_address)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(
    run_id: str,
    evaluate: EvaluateConfig = EvaluateConfig(),
    store: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Judge a trained run; publishes a table of each metric beside its floor. ``ray_address``:
    where the dataset's feature network is trained if the store lacks it."""
    result = evaluate_task(run_id, evaluate, store, ray_address).summary()
    rows = [
        {
            "metric": k,
            "value": round(v, 5),
            "floor": None if result["floors"][k] is None else round(result["floors"][k], 5),
        }
        for k, v in result["metrics"].items()
    ]
    create_table_artifact(
        table=rows,
        key=artifact_key(f"evaluation-{run_id}"),
        description=f"Metrics of run {run_id} beside their floors (real data against real data)",
    )
    return result
