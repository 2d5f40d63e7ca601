"""The ``generate`` flow: samples of a run to Parquet and pictures, and a markdown report."""

from __future__ import annotations

import base64
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import artifact_key
from flows.retry import retry_on_io
from genai.config import GenerateConfig
from genai.generate import Samples
from genai.generate import generate as run_generate
from genai.storage import ArtifactStore


@task(retries=1, retry_delay_seconds=2, retry_condition_fn=retry_on_io)
def generate_task(
    run_id: str, generate: GenerateConfig, store: str | None, ray_address: str | None = None
) -> Samples:
    return run_generate(ArtifactStore(store), run_id, generate, ray_address=ray_address)


def report(samples: Samples, store: ArtifactStore) -> str:
    """Markdown with the pictures inlined (the Prefect UI shows data: URIs)."""
    lines = [
        f"# Samples of run `{samples.run_id}`",
        "",
        f"{samples.n} samples: `{samples.uri}`",
        "",
    ]
    for name, uri in samples.files.items():
        if uri.endswith(".png"):
            key = uri.removeprefix(store.uri + "/")
            data = base64.b64encode(store.read_bytes(key)).decode()
            lines += [f"## {name}", "", f"![{name}](data:image/png;base64,{data})", ""]
    return "\n".join(lines)


@flow(name="generate", log_prints=True)
def generate_flow(
    run_id: str,
    generate: GenerateConfig = GenerateConfig(),
    store: str | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Draw samples from a trained run and publish them as a report. ``ray_address``: where
    the dataset's feature network is trained if the store lacks it."""
    samples = generate_task(run_id, generate, store, ray_address)
    create_markdown_artifact(
        markdown=report(samples, ArtifactStore(store)),
        key=artifact_key(f"samples-{run_id}"),
        description=f"Samples of run {run_id}",
    )
    return samples.record()
