"""The pipeline's bookkeeping in the library: its id, the retrain config, its stored summary.

The flow (``flows/pipeline.py``) chains the stages; what names a pipeline and whether the store
already holds its result is decided here, so ``genai run`` can answer a finished pipeline from the
store without starting Prefect or Ray.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from genai import layout
from genai.config import PipelineConfig, RunConfig, identity
from genai.configfile import shipped
from genai.storage import ArtifactStore


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
    return RunConfig.model_validate(tree)


def finished_pipeline(config: PipelineConfig, store: ArtifactStore) -> dict[str, Any] | None:
    """The stored summary of this pipeline, if it was made from the same config and the same
    data (the dataset's content hash: a user file that changed makes a new pipeline run)."""
    from genai.data.prepare import locate

    key = layout.pipeline_summary(pipeline_id_for(config))
    if not store.exists(key):
        return None
    summary = store.read_json(key)
    if summary["dataset"]["version"] != locate(config.data).version:
        return None
    return summary | {"summary_uri": store.key_uri(key)}
