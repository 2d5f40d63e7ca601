"""The ``generate`` flow: samples of a run to Parquet and pictures, and a markdown report."""

from __future__ import annotations

import base64
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import artifact_key
from flows.retry import retry_on_io
from genai.config import GenerateConfig
from genai.storage import ArtifactStore


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def generate_task(run_id: str, generate: GenerateConfig, store: str | None) -> dict[str, Any]:
    from genai.generate import generate as run_generate

    return run_generate(ArtifactStore(store), run_id, generate)


def report(result: dict[str, Any], store: ArtifactStore) -> str:
    """Markdown with the pictures inlined (the Prefect UI shows data: URIs)."""
    lines = [
        f"# Samples of run `{result['run_id']}`",
        "",
        f"{result['n']} samples: `{result['uri']}`",
        "",
    ]
    for name, uri in result["files"].items():
        if uri.endswith(".png"):
            key = uri.removeprefix(store.uri + "/")
            data = base64.b64encode(store.read_bytes(key)).decode()
            lines += [f"## {name}", "", f"![{name}](data:image/png;base64,{data})", ""]
    return "\n".join(lines)


@flow(name="generate", log_prints=True)
def generate_flow(
    run_id: str, generate: GenerateConfig = GenerateConfig(), store: str | None = None
) -> dict[str, Any]:
    """Draw samples from a trained run and publish them as a report."""
    result = generate_task(run_id, generate, store)
    create_markdown_artifact(
        markdown=report(result, ArtifactStore(store)),
        key=artifact_key(f"samples-{run_id}"),
        description=f"Samples of run {run_id}",
    )
    return result
