"""Deployments: ``nightly-pipeline`` on a schedule, and ``pipeline``, ``sweep``, ``train``,
``compare`` to launch from the Prefect UI. Parameters are pydantic models with Literal choices
and bounds, so the UI shows typed forms with dropdowns, and ``enforce_parameter_schema`` rejects
bad input before a run is created. ``genai serve`` serves them from this process;
``prefect.yaml`` declares the same deployments for a work pool.
"""

from __future__ import annotations

from typing import Any

from prefect import serve as prefect_serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.compare import compare_flow
from flows.pipeline import pipeline_flow
from flows.sweep import sweep_flow
from flows.train import train_flow
from genai.config import PipelineConfig
from genai.pipeline import DEMO, demo_config

NIGHTLY_CRON = "0 3 * * *"


def deployments(
    *,
    cron: str = NIGHTLY_CRON,
    store: str | None = None,
    config: PipelineConfig | None = None,
    limit: int = 1,
) -> list[Any]:
    """The five deployments; ``store`` becomes every deployment's default store and ``config``
    (default: the demo, configs/demo.yaml, the job ``genai run`` runs) the pipelines' default
    config (the form the UI shows starts from it). At most ``limit``
    runs of each deployment run at once; more wait their turn (Prefect's ENQUEUE strategy:
    state AwaitingConcurrencySlot), so a burst of launches queues instead of fighting over the
    cluster's CPUs."""
    queue = ConcurrencyLimitConfig(limit=limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
    common: dict[str, Any] = {
        "enforce_parameter_schema": True,
        "tags": ["genai"],
        "concurrency_limit": queue,
    }
    defaults: dict[str, Any] = {"store": store} if store else {}
    pipeline_defaults = {**defaults, "config": (config or demo_config()).model_dump(mode="json")}
    job = "the demo pipeline (" + DEMO + ")" if config is None else f"pipeline {config.name}"
    return [
        pipeline_flow.to_deployment(
            name="nightly-pipeline",
            cron=cron,
            parameters=pipeline_defaults,
            description=f"Every night, {job}: prepare, sweep, retrain, evaluate, generate.",
            **common,
        ),
        pipeline_flow.to_deployment(
            name="pipeline",
            parameters=pipeline_defaults,
            description=f"The whole job, from the UI; the form starts from {job}.",
            **common,
        ),
        sweep_flow.to_deployment(
            name="sweep", parameters=defaults, description="One sweep, from the UI.", **common
        ),
        train_flow.to_deployment(
            name="train",
            parameters=defaults,
            description="One training run, from the UI.",
            **common,
        ),
        compare_flow.to_deployment(
            name="compare",
            parameters=defaults,
            description="Which family and loss is best for a dataset: every cell over seeds,"
            " with a verdict, from the UI.",
            **common,
        ),
    ]


def serve(
    *,
    cron: str = NIGHTLY_CRON,
    store: str | None = None,
    config: PipelineConfig | None = None,
    limit: int = 1,
) -> None:
    """Register the deployments with the Prefect API and run their flows in this process."""
    served = deployments(cron=cron, store=store, config=config, limit=limit)
    prefect_serve(*served, print_starting_message=True)
