"""A run in the store: its id, its resolved config, its metrics table and its result.

``runs/{run_id}/`` holds ``config.json`` (the resolved config and the dataset), ``metrics.parquet``
(one row per epoch and term, rewritten by rank 0 after every checkpoint), ``checkpoints/`` and
``result.json``, written last: a run with it is finished and is never trained again; a run
without it resumes from its last checkpoint. Everything here reads or writes JSON and Parquet
alone (no torch, no Ray), so a command answers a finished run from the store at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from genai import layout
from genai.config import RunConfig, identity, stored_config
from genai.data.prepare import locate
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


# ------------------------------------------------------------------------------------- metrics
METRICS_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("epoch", pa.int64()), ("term", pa.string()), ("value", pa.float64())]
)


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
    return pa.table(rows, schema=METRICS_SCHEMA)


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


def read_history(store: ArtifactStore, run_id: str) -> list[dict[str, float]]:
    """The run's epochs so far (none when it has not written metrics yet)."""
    key = layout.run_metrics(run_id)
    return history_of(store.read_table(key)) if store.exists(key) else []


# ------------------------------------------------------------------------------ config, result
def write_config(store: ArtifactStore, run_id: str, cfg: RunConfig, dataset: dict[str, Any]) -> str:
    """``config.json``: the resolved config and the dataset's summary (name, version, ...)."""
    payload = {"run_id": run_id, "config": cfg.model_dump(mode="json"), "dataset": dataset}
    return store.write_json(layout.run_config(run_id), payload)


@dataclass(frozen=True)
class StoredRun:
    """A run's ``config.json``: its config (stored by any genai version) and dataset."""

    run_id: str
    config: RunConfig
    dataset: dict[str, Any]

    @property
    def dataset_key(self) -> str:
        return layout.dataset(self.dataset["dataset"], self.dataset["version"])


def read_config(store: ArtifactStore, run_id: str) -> StoredRun:
    saved = store.read_json(layout.run_config(run_id))
    return StoredRun(run_id, stored_config(saved["config"]), saved["dataset"])


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

    def record(self) -> dict[str, Any]:
        """What ``genai train`` and ``api.train`` return."""
        return self.summary() | {
            "reused": self.reused,
            "resumed_from_epoch": self.resumed_from_epoch,
        }


def write_result(store: ArtifactStore, result: TrainResult, seconds: float) -> str:
    """``result.json``, written last: the run is finished."""
    saved = {k: v for k, v in asdict(result).items() if k != "reused"}
    return store.write_json(
        layout.run_result(result.run_id), {**saved, "train_s": round(seconds, 2)}
    )


def finished_run(store: ArtifactStore, run_id: str) -> TrainResult | None:
    """The result of a finished run (its result.json), or None: the one place this is asked."""
    key = layout.run_result(run_id)
    if not store.exists(key):
        return None
    saved = store.read_json(key)
    fields = {k: saved[k] for k in TrainResult.__dataclass_fields__ if k in saved}
    return TrainResult(**{**fields, "reused": True})


def find_finished(cfg: RunConfig, store: ArtifactStore) -> TrainResult | None:
    """The finished run ``cfg`` names, looked up without Ray: the dataset's content hash (the
    source is read, nothing is prepared) gives the run id, its result.json the answer."""
    return finished_run(store, run_id_for(cfg, locate(cfg.data).version))


def check_run(store: ArtifactStore, run_id: str) -> None:
    """Fail fast, naming the run, when it does not exist or has no checkpoint yet."""
    if not store.exists(layout.run_config(run_id)):
        listed = ", ".join(layout.run_ids(store.list(layout.RUNS))[:10]) or "none"
        raise StoreError(f"no run {run_id!r} in {store.uri} (runs there: {listed})")
    if layout.newest_state(store.list(layout.run_checkpoints(run_id))) is None:
        where = store.key_uri(layout.run(run_id))
        raise StoreError(f"run {run_id} has no checkpoint under {where}")
