"""The pipeline's bookkeeping in the library: its id, the retrain config, its stored summary.

The flow (``flows/pipeline.py``) chains the stages; what names a pipeline and whether the store
already holds its result is decided here, so ``genai run`` can answer a finished pipeline from the
store without starting Prefect or Ray.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from genai import layout
from genai.config import PipelineConfig, RunConfig, identity, stored_config
from genai.configfile import installed, load_config, shipped
from genai.data.feature_spec import summary as feature_net_summary
from genai.data.prepare import PreparedDataset, locate
from genai.storage import ArtifactStore
from genai.train.runs import TrainResult, run_id_for
from genai.tune.record import SweepResult, sweep_id_for

if TYPE_CHECKING:  # their modules import torch: the stored answer here must not
    from genai.evaluate.evaluate import Evaluation
    from genai.generate import Samples


DEMO = "configs/demo.yaml"  # from the working directory, else the copy that ships with genai


def demo_config(*, as_shipped: bool = False) -> PipelineConfig:
    """The demo pipeline: the job ``genai run`` runs without a config and the default of
    ``genai serve``'s pipeline deployments (their UI forms start from it): the working
    directory's ``configs/demo.yaml``, else the copy that ships with genai. ``as_shipped``: that
    copy whatever the directory holds (the pipeline flow's default, read when the flows are
    imported: importing them must not depend on the directory; in a checkout it is one file)."""
    return load_config(PipelineConfig, installed(DEMO) if as_shipped else DEMO)


def pipeline_id_for(config: PipelineConfig) -> str:
    """``{name}-{hash}`` of the whole config and the text of its search space, so an edited space
    is a new pipeline rather than the old one's summary (the data's content is checked apart)."""
    space = shipped(config.sweep.space)
    payload = {"config": identity(config), "space": space.read_text() if space.is_file() else None}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    return f"{config.name}-{digest.hexdigest()[:12]}"


def base_config(config: PipelineConfig) -> RunConfig:
    """The run config the sweep varies (data, model, loss, train)."""
    return RunConfig.model_validate(
        config.model_dump(mode="json", include={"data", "model", "loss", "train"})
    )


def retrain_config(config: PipelineConfig, best: dict[str, Any]) -> RunConfig:
    """The sweep's best config, trained for ``retrain_epochs`` on ``retrain_workers`` workers."""
    tree = dict(best["config"])
    train = dict(tree["train"])
    train["epochs"] = config.retrain_epochs or config.train.epochs
    train["num_workers"] = config.retrain_workers or config.train.num_workers
    train["run_id"] = None
    tree["train"] = train
    return stored_config(tree)  # best.json of a sweep any genai version stored


def sweep_key(config: PipelineConfig) -> str:
    """Where the pipeline's sweep lives (``--force`` removes it)."""
    base = base_config(config)
    return layout.sweep(sweep_id_for(base, config.sweep.space, config.sweep))


def retrain_key(config: RunConfig, dataset_version: str) -> str:
    """Where the retrained best run lives (``--force`` removes it)."""
    return layout.run(run_id_for(config, dataset_version))


def summary_of(
    pipeline_id: str,
    store: ArtifactStore,
    dataset: PreparedDataset,
    swept: SweepResult,
    trained: TrainResult,
    evaluation: Evaluation,
    samples: Samples,
    stage_seconds: dict[str, float],
) -> dict[str, Any]:
    """``summary.json`` from what each stage returned: the answer to "which loss, with which
    weights, on which architecture", its scores beside their floors, and where everything is."""
    best = swept.best
    return {
        "pipeline_id": pipeline_id,
        "dataset": dataset.summary(),
        "feature_net": feature_net_summary(store, dataset.manifest),
        "sweep": {
            "sweep_id": swept.sweep_id,
            "uri": swept.uri,
            "trials": swept.trials,
            "counts": swept.counts,
        },  # fmt: skip
        "best_config": best["params"],
        "best_sweep_score": {best["metric"]: best["score"]},
        "best_run": {"run_id": trained.run_id, "uri": trained.uri, "epochs": trained.epochs},
        "metrics": evaluation.metrics,
        "floors": evaluation.floors,
        "evaluation_uri": evaluation.uri,
        "samples": samples.files,
        "stage_seconds": stage_seconds,
    }


def write_summary(store: ArtifactStore, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``summary.json`` (the pipeline is finished); the summary with its uri."""
    uri = store.write_json(layout.pipeline_summary(summary["pipeline_id"]), summary)
    return {**summary, "summary_uri": uri}


def finished_pipeline(config: PipelineConfig, store: ArtifactStore) -> dict[str, Any] | None:
    """The stored summary of this pipeline, if it was made from the same config and the same
    data (the dataset's content hash: a user file that changed makes a new pipeline run)."""
    key = layout.pipeline_summary(pipeline_id_for(config))
    if not store.exists(key):
        return None
    summary = store.read_json(key)
    if summary["dataset"]["version"] != locate(config.data).version:
        return None
    return summary | {"summary_uri": store.key_uri(key)}
