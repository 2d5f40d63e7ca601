"""Evaluate a trained run with loss-independent metrics, each beside its floor.

The floor of a metric is its value between two real samples (train against the reference split,
or the reference split itself for mode metrics): the best a model can hope to score.
Writes ``evaluations/{run_id}/metrics.parquet``: run_id, metric, value, floor, n_samples,
reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from genai.config import EvaluateConfig
from genai.data.dataset import denormalise, read_split
from genai.evaluate.features import ensure_feature_net
from genai.evaluate.images import image_metrics
from genai.evaluate.likelihood import likelihood_metrics
from genai.evaluate.points import median_bandwidth, mode_metrics, rbf_mmd2
from genai.runs import load_trained
from genai.storage import ArtifactStore


class EvaluationError(ValueError):
    """The run cannot be judged (e.g. it generates NaN)."""


@dataclass(frozen=True)
class Evaluation:
    run_id: str
    uri: str
    metrics: dict[str, float]
    floors: dict[str, float | None]
    n_samples: int
    reference: str

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "uri": self.uri,
            "metrics": self.metrics,
            "floors": self.floors,
        }


def check_finite(samples: torch.Tensor, run_id: str) -> None:
    bad = int((~torch.isfinite(samples.flatten(1))).any(1).sum())
    if bad:
        raise EvaluationError(
            f"run {run_id}: {bad} of {len(samples)} generated samples hold NaN or inf;"
            " the model diverged: retrain with a lower train.lr or grad_clip"
        )


def mixture_metrics(fake: torch.Tensor, ref: torch.Tensor, manifest: dict) -> tuple[dict, dict]:
    """Modes, high quality, reverse KL (data units) of the samples, and of real data as floor."""
    modes, std = np.asarray(manifest["modes"]), manifest["mode_std"]
    ours = mode_metrics(denormalise(fake.numpy(), manifest), modes, std)
    real = mode_metrics(denormalise(ref.numpy(), manifest), modes, std)
    return ours, real


def sample_metrics(
    fake: torch.Tensor, ref: torch.Tensor, train: torch.Tensor, manifest: dict, features: Any | None
) -> tuple[dict[str, float], dict[str, float | None]]:
    """The metrics for this kind of data, and their floors."""
    metrics: dict[str, float] = {}
    floors: dict[str, float | None] = {}
    if manifest.get("modes") is not None:
        metrics, floors = mixture_metrics(fake, ref, manifest)
    if features is not None:
        metrics |= image_metrics(features.net, ref, fake)
        floors |= image_metrics(features.net, ref, train[: max(len(fake), len(ref))])
    if manifest["kind"] != "image":
        h = median_bandwidth(ref, train)
        metrics["mmd2"] = rbf_mmd2(ref, fake, h)
        floors["mmd2"] = rbf_mmd2(ref, train[: len(fake)], h)
    return metrics, floors


def evaluate_run(
    store: ArtifactStore, run_id: str, cfg: EvaluateConfig | None = None
) -> Evaluation:
    """Sample ``cfg.n_samples`` from the run, compare with ``cfg.split``, write the table."""
    cfg = cfg or EvaluateConfig()
    model, _run, manifest, dkey = load_trained(store, run_id)
    ref = torch.from_numpy(read_split(store, dkey, cfg.split)[0])
    train = torch.from_numpy(read_split(store, dkey, "train")[0])
    fake = model.sample_batched(cfg.n_samples, generator=torch.Generator().manual_seed(cfg.seed))
    check_finite(fake, run_id)
    features = ensure_feature_net(store, dkey) if manifest["kind"] == "image" else None
    torch.manual_seed(cfg.seed)
    metrics, floors = sample_metrics(fake, ref, train, manifest, features)
    for name, value in likelihood_metrics(model, ref).items():
        metrics[name], floors[name] = value, None
    table = pa.table(
        {
            "run_id": [run_id] * len(metrics),
            "metric": list(metrics),
            "value": [float(v) for v in metrics.values()],
            "floor": [floors.get(k) for k in metrics],
            "n_samples": [cfg.n_samples] * len(metrics),
            "reference": [cfg.split] * len(metrics),
        }
    )
    uri = store.write_table(f"evaluations/{run_id}/metrics.parquet", table)
    return Evaluation(
        run_id, uri, metrics, {k: floors.get(k) for k in metrics}, cfg.n_samples, cfg.split
    )
