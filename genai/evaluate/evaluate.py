"""Evaluate a trained run with loss-independent metrics (:class:`genai.evaluate.judge.Judge`),
each beside its floor.

Writes ``evaluations/{run_id}/metrics.parquet``: run_id, metric, value, floor, n_samples,
reference, sampler (what drew the samples: a diffusion model's ``ddim 50 steps`` with the
default fast sampler); the evaluate settings ride in the schema metadata, so evaluating the same
run with the same settings again returns the stored table instead of sampling again. Samples are
drawn ``evaluate.batch_size`` at a time and the command says what it is doing at least every
10 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import torch

from genai import layout
from genai.config import EvaluateConfig, GenerateConfig, same_settings
from genai.errors import UserError
from genai.evaluate.judge import Judge
from genai.evaluate.likelihood import likelihood_metrics
from genai.models.base import GenerativeModel
from genai.progress import heartbeat, say
from genai.storage import ArtifactStore
from genai.tracking import attach
from genai.train.trained import load_trained


class EvaluationError(UserError, ValueError):
    """The run cannot be judged (e.g. it generates NaN)."""


@dataclass(frozen=True)
class Evaluation:
    run_id: str
    uri: str
    metrics: dict[str, float]
    floors: dict[str, float | None]
    n_samples: int
    reference: str
    sampler: str = ""
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "uri": self.uri,
            "metrics": self.metrics,
            "floors": self.floors,
            "sampler": self.sampler,
        }


def check_finite(samples: torch.Tensor, run_id: str) -> None:
    bad = int((~torch.isfinite(samples.flatten(1))).any(1).sum())
    if bad:
        raise EvaluationError(
            f"run {run_id}: {bad} of {len(samples)} generated samples hold NaN or inf;"
            " the model diverged: retrain with a lower train.lr or grad_clip"
        )


def draw(
    model: GenerativeModel,
    run_id: str,
    n: int,
    cfg: EvaluateConfig | GenerateConfig,
    status: Callable[[str], None],
) -> tuple[torch.Tensor, str]:
    """``n`` seeded samples, ``cfg.batch_size`` at a time with ``cfg``'s sampler, each batch
    said through ``status``; checked finite. (samples, the sampler's name)."""
    options, sampler = model.sampler_options(cfg.sampler, cfg.ddim_steps, cfg.eta)
    status(f"{run_id}: drawing {n} samples ({sampler})")
    fake = model.sample_batched(
        n,
        batch_size=cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
        progress=lambda done, total: status(f"{run_id}: {done}/{total} samples ({sampler})"),
        **options,
    )
    check_finite(fake, run_id)
    return fake, sampler


def stored_evaluation(store: ArtifactStore, run_id: str, cfg: EvaluateConfig) -> Evaluation | None:
    """The stored evaluation of ``run_id`` if it was made with these settings."""
    key = layout.evaluation(run_id)
    if not store.exists(key):
        return None
    table = store.read_table(key)
    if not same_settings(store.table_metadata(table).get("evaluate"), cfg, "evaluate"):
        return None
    rows = table.to_pylist()
    return Evaluation(
        run_id,
        store.key_uri(key),
        {r["metric"]: r["value"] for r in rows},
        {r["metric"]: r["floor"] for r in rows},
        cfg.n_samples,
        cfg.split,
        sampler=rows[0].get("sampler", "") if rows else "",
        reused=True,
    )


def evaluate_run(
    store: ArtifactStore,
    run_id: str,
    cfg: EvaluateConfig | None = None,
    *,
    ray_address: str | None = None,
) -> Evaluation:
    """Sample ``cfg.n_samples`` from the run, compare with ``cfg.split``, write the table (or
    return the stored one made with the same settings)."""
    cfg = cfg or EvaluateConfig()
    done = stored_evaluation(store, run_id, cfg)
    if done is not None:
        return done
    trained = load_trained(store, run_id, ray_address=ray_address)
    model, dkey = trained.model, trained.dataset_key
    with heartbeat("evaluate") as status:
        fake, sampler = draw(model, run_id, cfg.n_samples, cfg, status)
        status(f"{run_id}: judging the samples against {cfg.split}")
        judge = Judge(store, dkey, reference=cfg.split, ray_address=ray_address)
        torch.manual_seed(cfg.seed)
        metrics = judge.metrics(fake)
        status(f"{run_id}: floors (as many real train rows against {cfg.split})")
        floors: dict[str, float | None] = dict(judge.floors(cfg.n_samples))
        status(f"{run_id}: likelihood")
        for name, value in likelihood_metrics(model, judge.reference).items():
            metrics[name], floors[name] = value, None
    table = pa.table(
        {
            "run_id": [run_id] * len(metrics),
            "metric": list(metrics),
            "value": [float(v) for v in metrics.values()],
            "floor": [floors.get(k) for k in metrics],
            "n_samples": [cfg.n_samples] * len(metrics),
            "reference": [cfg.split] * len(metrics),
            "sampler": [sampler] * len(metrics),
        }
    )
    meta = {"evaluate": cfg.model_dump(mode="json"), "score": judge.score_name}
    uri = store.write_table(layout.evaluation(run_id), table, metadata=meta)
    name = judge.score_name
    attach(
        store,
        layout.run(run_id),
        metrics={
            **{f"eval/{k}": v for k, v in metrics.items()},
            **{f"eval_floor/{k}": v for k, v in floors.items() if v is not None},
        },
        files={"evaluation.parquet": store.read_bytes(layout.evaluation(run_id))},
        folder="evaluation",
    )
    say(
        "evaluate",
        f"{run_id}: {cfg.n_samples} samples ({sampler}) against {cfg.split}:"
        f" {name} {metrics[name]:.4g} (floor {floors[name]:.4g})",
    )
    floors_of = {k: floors.get(k) for k in metrics}
    return Evaluation(run_id, uri, metrics, floors_of, cfg.n_samples, cfg.split, sampler)
