"""The ``compare`` flow: every family and loss on one data over seeds, a verdict, a report."""

from __future__ import annotations

import base64
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import artifact_key
from flows.retry import retry_on_io
from genai import layout
from genai.compare.compare import compare
from genai.config import CompareConfig
from genai.storage import ArtifactStore


@task(retries=1, retry_delay_seconds=5, retry_condition_fn=retry_on_io)
def compare_task(
    config: CompareConfig, store: str | None, ray_address: str | None, wait: bool = True
) -> dict[str, Any]:
    return compare(config, ArtifactStore(store), ray_address=ray_address, wait=wait)


def inlined(comparison_id: str, store: ArtifactStore) -> str:
    """The report with its pictures as data: URIs (the Prefect UI cannot read the store)."""
    report = store.read_bytes(layout.comparison_file(comparison_id, "report.md")).decode()
    for name in layout.COMPARISON_FILES:
        if name.endswith(".png") and f"]({name})" in report:
            data = base64.b64encode(store.read_bytes(layout.comparison_file(comparison_id, name)))
            report = report.replace(f"]({name})", f"](data:image/png;base64,{data.decode()})")
    return report


@flow(name="compare", log_prints=True)
def compare_flow(
    config: CompareConfig = CompareConfig(),
    store: str | None = None,
    ray_address: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Train every selected (family, loss) cell for each seed at the budget, judge each model,
    and publish the report (a markdown artifact): the leaderboard, each cell's 95% interval
    against the best, which cells cannot be told apart from it."""
    result = compare_task(config, store, ray_address, wait)
    create_markdown_artifact(
        markdown=inlined(result["comparison_id"], ArtifactStore(store)),
        key=artifact_key(f"compare-{result['comparison_id']}"),
        description=result["verdict"],
    )
    return result
