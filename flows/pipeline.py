"""The ``pipeline`` flow: prepare -> sweep -> retrain the best config -> evaluate -> generate.

Each stage decides in the library whether the store already holds its result for the same inputs
(dataset manifest, sweep best.json, run result.json, evaluation and samples made with the same
settings) and then returns it; ``force`` removes a stage's artifacts first, so it is redone. The
summary goes to ``pipelines/{pipeline_id}/summary.json``, a markdown report to the Prefect UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.evaluate import artifact_key, evaluate_task
from flows.generate import generate_task, report
from flows.prepare import prepare_dataset
from flows.sweep import leaderboard, sweep_task
from flows.train import train_run
from genai import layout
from genai.config import PipelineConfig
from genai.evaluate.names import KID_NOTE
from genai.generate import Samples
from genai.pipeline import (
    base_config,
    demo_config,
    finished_pipeline,
    pipeline_id_for,
    retrain_config,
    retrain_key,
    summary_of,
    sweep_key,
    write_summary,
)
from genai.progress import say
from genai.storage import ArtifactStore
from genai.tracking import TrackedRun, store_files, tracked_beside, tracking_for

# a launch with the form's defaults is the demo as it ships: in a checkout, what `genai run` runs
DEMO_CONFIG = demo_config(as_shipped=True)


@task
def forget(store: str | None, prefix: str) -> None:
    """--force: remove a stage's artifacts so it runs again."""
    ArtifactStore(store).delete(prefix)


@flow(name="pipeline", log_prints=True)
def pipeline_flow(
    config: PipelineConfig = DEMO_CONFIG,
    store: str | None = None,
    ray_address: str | None = None,
    force: bool = False,
    wait: bool = True,
) -> dict[str, Any]:
    """The whole job: which loss, with which weights, on which architecture is best here.
    ``wait``: False fails at once when another command is producing a dataset, sweep or run
    this pipeline needs."""
    pipeline_id = pipeline_id_for(config)
    if not force:  # the same inputs: the stored summary (a queued duplicate launch ends here)
        stored = finished_pipeline(config, ArtifactStore(store))
        if stored is not None:
            say("pipeline", f"{pipeline_id}: already in the store, {stored['summary_uri']}")
            return stored
    tracking = tracking_for(ArtifactStore(store))
    params = config.model_dump(mode="json")
    tags = {"genai.kind": "pipeline"}
    # its MLflow run opens while the data is prepared (on a new store MLflow makes its database
    # then, 2.7 s); the sweep's and the retrained run's nest under it
    key = layout.pipeline(pipeline_id)
    with tracked_beside(tracking, key, pipeline_id, params, tags, nest=True) as opened:
        summary, markdown = _stages(config, pipeline_id, store, ray_address, force, wait, opened)
        mlflow_run = opened()
        if mlflow_run is not None:
            seconds = {f"seconds/{k}": v for k, v in summary["stage_seconds"].items()}
            mlflow_run.log_metrics({**summary["metrics"], **seconds})
            saved = store_files(ArtifactStore(store), layout.pipeline_summary(pipeline_id))
            mlflow_run.log_files({**saved, "report.md": markdown})
    return summary


def _stages(
    config: PipelineConfig,
    pipeline_id: str,
    store: str | None,
    ray_address: str | None,
    force: bool,
    wait: bool,
    tracked_run: Callable[[], TrackedRun | None] = lambda: None,
) -> tuple[dict[str, Any], str]:
    """The five stages; the summary (written) and its markdown report (a Prefect artifact).
    ``tracked_run`` waits for the pipeline's MLflow run, opened beside the preparation; runs
    started after that call nest under it."""
    timings: dict[str, float] = {}

    def timed(stage: str, start: float) -> None:
        timings[stage] = round(time.perf_counter() - start, 2)
        say("pipeline", f"{stage} done in {timings[stage]:.1f}s")

    t = time.perf_counter()
    if force:
        forget(store, layout.pipeline(pipeline_id))
    dataset = prepare_dataset(config.data, store, ray_address, wait)  # and its feature network
    timed("prepare", t)

    tracked_run()  # before the sweep: its MLflow run and the retrain's nest under the pipeline's
    t = time.perf_counter()
    base = base_config(config)
    if force:
        forget(store, sweep_key(config))
    swept = sweep_task(base, config.sweep, store, ray_address, wait)
    timed("sweep", t)

    t = time.perf_counter()
    best_cfg = retrain_config(config, swept.best)
    if force:
        forget(store, retrain_key(best_cfg, dataset.version))
    trained = train_run(best_cfg, store, ray_address, wait)
    run_id = trained.run_id
    timed("train", t)

    t = time.perf_counter()
    if force:
        forget(store, layout.evaluation(run_id))
    # each reuses what the store holds for the same settings
    evaluation = evaluate_task(run_id, config.evaluate, store, ray_address)
    timed("evaluate", t)

    t = time.perf_counter()
    if force:
        forget(store, layout.samples(run_id))
    samples = generate_task(run_id, config.generate, store, ray_address)
    timed("generate", t)

    s = ArtifactStore(store)
    summary = write_summary(
        s, summary_of(pipeline_id, s, dataset, swept, trained, evaluation, samples, timings)
    )
    markdown = pipeline_report(summary, store, samples)
    create_markdown_artifact(
        markdown=markdown,
        key=artifact_key(f"pipeline-{pipeline_id}"),
        description=f"Pipeline {pipeline_id}: leaderboard, best config, metrics, samples",
    )
    return summary, markdown


def pipeline_report(summary: dict[str, Any], store: str | None, samples: Samples) -> str:
    board = leaderboard(store, summary["sweep"]["sweep_id"], top=10)
    params = [k for k in summary["best_config"]]
    lines = [
        f"# Pipeline `{summary['pipeline_id']}`",
        "",
        f"Dataset `{summary['dataset']['dataset']}/{summary['dataset']['version']}`;"
        f" sweep `{summary['sweep']['sweep_id']}` ({summary['sweep']['trials']} trials);"
        f" best run `{summary['best_run']['run_id']}`.",
        "",
        "## Leaderboard",
        "",
        "| trial | " + " | ".join(params) + " | score | status |",
        "|---|" + "---|" * len(params) + "---:|---|",
    ]
    for row in board:
        score = "" if row["score"] is None else f"{row['score']:.4g}"
        values = " | ".join(str(row[p]) for p in params)
        lines.append(f"| {row['trial_id']} | {values} | {score} | {row['status']} |")
    lines += [
        "",
        "## Metrics of the retrained best config",
        "",
        "| metric | value | floor |",
        "|---|---:|---:|",
    ]
    for name, value in summary["metrics"].items():
        floor = summary["floors"].get(name)
        lines.append(f"| {name} | {value:.4g} | {'' if floor is None else f'{floor:.4g}'} |")
    if "kid" in summary["metrics"]:
        lines += ["", f"{KID_NOTE}."]
    lines += ["", report(samples, ArtifactStore(store))]
    return "\n".join(lines)
