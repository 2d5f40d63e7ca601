"""Run bookkeeping: deterministic run ids, the resolved config, metrics as a long Parquet table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from genai import layout
from genai.config import RunConfig, identity
from genai.storage import ArtifactStore, StoreError


def run_id_for(cfg: RunConfig, dataset_version: str) -> str:
    """``{family}-{hash}``: the hash of the resolved config and the dataset version, so the same
    job resumes by name; ``train.run_id`` wins when given."""
    if cfg.train.run_id:
        return cfg.train.run_id
    payload = identity(cfg)
    payload["train"].pop("run_id", None)
    payload["dataset_version"] = dataset_version
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{cfg.model.family}-{digest}"


def metrics_table(run_id: str, history: Iterable[Mapping[str, float]]) -> pa.Table:
    """One row per epoch per logged term: run_id, epoch, term, value."""
    rows: dict[str, list] = {"run_id": [], "epoch": [], "term": [], "value": []}
    for entry in history:
        for term, value in entry.items():
            if term == "epoch":
                continue
            rows["run_id"].append(run_id)
            rows["epoch"].append(int(entry["epoch"]))
            rows["term"].append(term)
            rows["value"].append(float(value))
    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("epoch", pa.int64()),
            ("term", pa.string()),
            ("value", pa.float64()),
        ]
    )
    return pa.table(rows, schema=schema)


def write_metrics(store: ArtifactStore, run_id: str, history: list[Mapping[str, float]]) -> str:
    return store.write_table(layout.run_metrics(run_id), metrics_table(run_id, history))


def history_of(table: pa.Table) -> list[dict[str, float]]:
    """metrics.parquet back to one dict per epoch."""
    out: dict[int, dict[str, float]] = {}
    for epoch, term, value in zip(
        table.column("epoch").to_pylist(),
        table.column("term").to_pylist(),
        table.column("value").to_pylist(),
        strict=True,
    ):
        out.setdefault(epoch, {"epoch": epoch})[term] = value
    return [out[e] for e in sorted(out)]


@dataclass(frozen=True)
class TrainResult:
    """What a finished run left in the store."""

    run_id: str
    uri: str
    epochs: int
    metrics: dict[str, float]
    checkpoint: str | None
    dataset: dict[str, Any]
    resumed_from_epoch: int | None = None
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "uri": self.uri,
            "epochs": self.epochs,
            "metrics": self.metrics,
        }


def finished_run(store: ArtifactStore, run_id: str) -> TrainResult | None:
    """The result of a finished run (its result.json), or None."""
    key = layout.run_result(run_id)
    if not store.exists(key):
        return None
    saved = store.read_json(key)
    fields = {k: saved[k] for k in TrainResult.__dataclass_fields__ if k in saved}
    return TrainResult(**{**fields, "reused": True})


def find_finished(cfg: RunConfig, store: ArtifactStore) -> TrainResult | None:
    """The finished run ``cfg`` names, looked up without Ray: the dataset's content hash (the
    source is read, nothing is prepared) gives the run id, its result.json the answer."""
    from genai.data.prepare import locate

    return finished_run(store, run_id_for(cfg, locate(cfg.data).version))


def dataset_key_of(saved_config: dict[str, Any]) -> str:
    ds = saved_config["dataset"]
    return layout.dataset(ds["dataset"], ds["version"])


def needs_features(cfg: RunConfig) -> bool:
    """Whether a loss slot uses the dataset's domain feature network."""
    return any(spec.name == "perceptual" for spec in cfg.loss.values())


def load_trained(store: ArtifactStore, run_id: str):
    """(model in eval mode with its newest weights, RunConfig, dataset manifest, dataset key)."""
    from genai.data.dataset import read_manifest
    from genai.models import DataSpec, build_model
    from genai.train import checkpoint

    check_run(store, run_id)
    saved = store.read_json(layout.run_config(run_id))
    cfg = RunConfig.model_validate(saved["config"])
    dkey = dataset_key_of(saved)
    manifest = read_manifest(store, dkey)
    state = checkpoint.read_latest(store, layout.run_checkpoints(run_id))
    features = None
    if needs_features(cfg):
        from genai.data.prepare import ensure_feature_net

        features = ensure_feature_net(store, dkey).net.layers
    model = build_model(cfg.model, cfg.loss, DataSpec.from_manifest(manifest), features=features)
    model.load_state_dict(checkpoint.model_state(state))
    model.eval()
    return model, cfg, manifest, dkey


def check_run(store: ArtifactStore, run_id: str) -> None:
    """Fail fast, naming the run, when it does not exist or has no checkpoint yet."""
    from genai.train import checkpoint

    if not store.exists(layout.run_config(run_id)):
        listed = ", ".join(layout.run_ids(store.list(layout.RUNS))[:10]) or "none"
        raise StoreError(f"no run {run_id!r} in {store.uri} (runs there: {listed})")
    if checkpoint.latest_key(store, layout.run_checkpoints(run_id)) is None:
        where = store.key_uri(layout.run(run_id))
        raise StoreError(f"run {run_id} has no checkpoint under {where}")
