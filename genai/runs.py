"""Run bookkeeping: deterministic run ids, the resolved config, metrics as a long Parquet table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from genai.config import RunConfig
from genai.storage import ArtifactStore, StoreError


def run_key(run_id: str) -> str:
    return f"runs/{run_id}"


def run_id_for(cfg: RunConfig, dataset_version: str) -> str:
    """``{family}-{hash}``: the hash of the resolved config and the dataset version, so the same
    job resumes by name; ``train.run_id`` wins when given."""
    if cfg.train.run_id:
        return cfg.train.run_id
    payload = cfg.model_dump(mode="json")
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
    return store.write_table(f"{run_key(run_id)}/metrics.parquet", metrics_table(run_id, history))


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


def latest_checkpoint(store: ArtifactStore, run_id: str) -> str:
    """Key of the newest checkpoint's state file of a run (``.../epoch-NNNNN/state.pt``)."""
    files = [k for k in store.list(f"{run_key(run_id)}/checkpoints") if k.endswith("/state.pt")]
    if not files:
        raise StoreError(f"run {run_id} has no checkpoint under {store.key_uri(run_key(run_id))}")
    return max(files)


def read_state(store: ArtifactStore, run_id: str) -> dict[str, Any]:
    """The newest checkpoint of a run: model and optimiser states, epoch, step, history."""
    import io

    import torch

    data = store.read_bytes(latest_checkpoint(store, run_id))
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def dataset_key_of(saved_config: dict[str, Any]) -> str:
    ds = saved_config["dataset"]
    return f"datasets/{ds['dataset']}/{ds['version']}"


def needs_features(cfg: RunConfig) -> bool:
    """Whether a loss slot uses the dataset's domain feature network."""
    return any(spec.name == "perceptual" for spec in cfg.loss.values())


def load_trained(store: ArtifactStore, run_id: str):
    """(model in eval mode with its newest weights, RunConfig, dataset manifest, dataset key)."""
    from genai.data.dataset import read_manifest
    from genai.models import DataSpec, build_model

    check_run(store, run_id)
    saved = store.read_json(f"{run_key(run_id)}/config.json")
    cfg = RunConfig.model_validate(saved["config"])
    dkey = dataset_key_of(saved)
    manifest = read_manifest(store, dkey)
    state = read_state(store, run_id)  # a run without a checkpoint fails here, by name
    features = None
    if needs_features(cfg):
        from genai.evaluate.features import ensure_feature_net

        features = ensure_feature_net(store, dkey).net.layers
    model = build_model(cfg.model, cfg.loss, DataSpec.from_manifest(manifest), features=features)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg, manifest, dkey


def save_run(
    store: ArtifactStore,
    run_id: str,
    cfg: RunConfig,
    dataset: dict[str, Any],
    model_state: dict[str, Any],
    history: list[dict[str, float]],
) -> str:
    """Store a run fitted in this process (``fit_local``) in the layout Ray Train runs leave:
    config.json, metrics.parquet, checkpoints/epoch-NNNNN/state.pt, result.json last."""
    import io

    import torch

    key = run_key(run_id)
    epoch = len(history) - 1
    store.write_json(
        f"{key}/config.json",
        {"run_id": run_id, "config": cfg.model_dump(mode="json"), "dataset": dataset},
    )
    write_metrics(store, run_id, history)
    buf = io.BytesIO()
    torch.save({"model": model_state, "epoch": epoch, "step": None, "history": history}, buf)
    store.write_bytes(f"{key}/checkpoints/epoch-{epoch:05d}/state.pt", buf.getvalue())
    final = {k: v for k, v in history[-1].items() if k != "epoch"}
    result = {"run_id": run_id, "uri": store.key_uri(key), "epochs": len(history), "metrics": final}
    store.write_json(f"{key}/result.json", {**result, "checkpoint": None, "dataset": dataset})
    return store.key_uri(key)


def check_run(store: ArtifactStore, run_id: str) -> None:
    """Fail fast, naming the run, when it does not exist or has no checkpoint yet."""
    if not store.exists(f"{run_key(run_id)}/config.json"):
        known = sorted({k.split("/")[1] for k in store.list("runs") if k.endswith("/config.json")})
        listed = ", ".join(known[:10]) or "none"
        raise StoreError(f"no run {run_id!r} in {store.uri} (runs there: {listed})")
    latest_checkpoint(store, run_id)
