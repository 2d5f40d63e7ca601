"""One model of a comparison as a Ray Tune trial: train it with the one training core in the
trial's own process (one CPU, one torch thread), judge it as ``genai evaluate`` does, keep a
few samples for the comparison's picture, and write its record last.

Tune reuses the trial's process for the next model (torch imported once), so the CPU seconds a
model took are measured on the trial's own thread (``time.thread_time``: training only, not the
judging, which is timed apart), not the process's. A model whose record is in the store is not
trained again; one killed mid-way resumes from its last checkpoint (``runs/{run_id}/``), and
its record then says so (``resumed_from_epoch``; its CPU seconds are those of this attempt).
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import torch
from ray import tune

from genai import layout
from genai.config import EvaluateConfig, RunConfig
from genai.evaluate.evaluate import draw, evaluate_run
from genai.storage import ArtifactStore
from genai.train.launcher import train_local
from genai.train.trained import load_trained


def read_record(store: ArtifactStore, key: str) -> dict[str, Any] | None:
    path = layout.cell_record(key)
    return store.read_json(path) if store.exists(path) else None


def train_cell(cell: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    """Train and judge one model (or return its stored record)."""
    found = read_record(store, cell["key"])
    if found is not None:
        return found | {"trained": False}
    torch.set_num_threads(1)
    cfg = RunConfig.model_validate(cell["config"])
    started, cpu0 = time.monotonic(), time.thread_time()
    trained = train_local(cfg, store)
    cpu_s, train_s = time.thread_time() - cpu0, time.monotonic() - started
    judged = EvaluateConfig.model_validate(cell["evaluate"])
    started = time.monotonic()
    ev = evaluate_run(store, trained.run_id, judged)
    evaluate_s = time.monotonic() - started
    model = load_trained(store, trained.run_id).model  # the picture's few samples
    picture = EvaluateConfig(n_samples=cell["picture"], seed=cell["picture_seed"])
    fake, _ = draw(model, trained.run_id, picture.n_samples, picture, lambda _: None)
    buf = io.BytesIO()
    np.save(buf, fake.numpy().astype(np.float32))
    store.write_bytes(layout.cell_samples(cell["key"]), buf.getvalue())
    record = {
        "key": cell["key"],
        "run_id": trained.run_id,
        "family": cfg.model.family,
        "loss": cell["loss"],
        "seed": cell["seed"],
        "budget": cell["budget"],
        "steps": int(trained.metrics.get("steps", 0)),
        "epochs": cfg.train.epochs,
        "batch_size": cfg.train.batch_size,
        "cpu_s": round(cpu_s, 2),
        "train_s": round(train_s, 2),
        "evaluate_s": round(evaluate_s, 2),
        "resumed_from_epoch": trained.resumed_from_epoch,
        "sampler": ev.sampler,
        "metrics": ev.metrics,
        "floors": ev.floors,
    }
    store.write_json(layout.cell_record(cell["key"]), record)  # last: the model is done
    return record | {"trained": True}


def run_cell(params: dict[str, Any], *, ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``params["cell"]`` indexes ``ctx["cells"]``."""
    index = params["cell"]
    record = train_cell(ctx["cells"][index], ArtifactStore(ctx["store"], check=False))
    numbers = {k: v for k, v in record["metrics"].items() if isinstance(v, int | float)}
    keep = ("cpu_s", "train_s", "evaluate_s", "steps", "trained")
    floor = record["floors"].get(ctx["cells"][index]["metric"])
    tune.report({"cell": index, "floor": floor, **numbers, **{k: record[k] for k in keep}})
