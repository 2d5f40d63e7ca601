"""A comparison's models as Ray Tune trials (:mod:`genai.compare` plans them; Ray stays in
``genai/tune``): each trains with the one training core in the trial's own process (one CPU,
one torch thread), is judged as ``genai evaluate`` judges, keeps a few samples for the
comparison's picture, and writes its record (``cells/{key}/record.json``) last.

Tune reuses a trial's process for the next model (torch imported once), so the CPU seconds a
model took are measured on the trial's own thread (``time.thread_time``: training only; the
judging is timed apart), not the process's. A model whose record is in the store is not trained
again; one killed mid-way resumes from its last checkpoint (``runs/{run_id}/``), and its record
then says so (``resumed_from_epoch``; its CPU seconds are those of this attempt).
"""

from __future__ import annotations

import io
import tempfile
import time
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from genai import layout
from genai.config import EvaluateConfig, RunConfig
from genai.evaluate.evaluate import EvaluationError, draw, evaluate_run
from genai.progress import say
from genai.storage import ArtifactStore
from genai.train.launcher import train_local
from genai.train.trained import load_trained
from genai.tune.sweep import quiet_loggers

SAY_EVERY_S = 10.0


def read_record(store: ArtifactStore, key: str) -> dict[str, Any] | None:
    path = layout.cell_record(key)
    return store.read_json(path) if store.exists(path) else None


def train_cell(cell: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    """Train and judge one model (or return its stored record). A model that diverges (a
    non-finite loss in training, NaN samples) is an outcome, not a failure of the comparison:
    its record holds the error and no metrics."""
    found = read_record(store, cell["key"])
    if found is not None:
        return found | {"trained": False}
    torch.set_num_threads(1)
    cfg = RunConfig.model_validate(cell["config"])
    record: dict[str, Any] = {
        "key": cell["key"],
        "run_id": cfg.train.run_id,
        "family": cfg.model.family,
        "loss": cell["loss"],
        "seed": cell["seed"],
        "budget": cell["budget"],
        "steps": cell["steps"],
        "epochs": cfg.train.epochs,
        "batch_size": cfg.train.batch_size,
        "error": None,
        "metrics": {},
        "floors": {},
    }
    started, cpu0 = time.monotonic(), time.thread_time()
    try:
        trained = train_local(cfg, store)
        record |= {
            "cpu_s": round(time.thread_time() - cpu0, 2),
            "train_s": round(time.monotonic() - started, 2),
            "resumed_from_epoch": trained.resumed_from_epoch,
            "steps": int(trained.metrics.get("steps", 0)) or cell["steps"],
        }
        started = time.monotonic()
        ev = evaluate_run(store, trained.run_id, EvaluateConfig.model_validate(cell["evaluate"]))
        record |= {"evaluate_s": round(time.monotonic() - started, 2), "sampler": ev.sampler}
        record |= {"metrics": ev.metrics, "floors": ev.floors}
        model = load_trained(store, trained.run_id).model  # the picture's few samples
        # drawn as it was judged (the sampler), with the comparison's one sampling seed
        picture = EvaluateConfig.model_validate(
            {**cell["evaluate"], "n_samples": cell["picture"], "seed": cell["picture_seed"]}
        )
        fake, _ = draw(model, trained.run_id, picture.n_samples, picture, lambda _: None)
    except (FloatingPointError, EvaluationError) as err:  # the model diverged
        record |= {"error": f"{type(err).__name__}: {err}", "metrics": {}, "floors": {}}
        record.setdefault("cpu_s", round(time.thread_time() - cpu0, 2))
        record.setdefault("train_s", round(time.monotonic() - started, 2))
    else:
        buf = io.BytesIO()
        np.save(buf, fake.numpy().astype(np.float32))
        store.write_bytes(layout.cell_samples(cell["key"]), buf.getvalue())
    record = {"evaluate_s": 0.0, "sampler": None, "resumed_from_epoch": None} | record
    store.write_json(layout.cell_record(cell["key"]), record)  # last: the model is done
    return record | {"trained": True}


class CellProgress(tune.Callback):
    """A line when a model is done (its metric beside the floor, CPU seconds), and while models
    train, what runs, at least every 10 s."""

    def __init__(self, models: list[dict[str, Any]], offset: int, total: int) -> None:
        self.models, self.offset, self.total = models, offset, total
        self.done, self.said, self.started = 0, time.monotonic(), time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        m = self.models[result["cell"]]
        self.done += 1
        metric = m["metric"]
        value, floor = result.get(metric), result.get("floor")
        if result.get("error"):
            judged = f"diverged ({result['error'][:120]})"
        else:
            judged = f"{metric} {value:.4g}" + (
                f" (floor {floor:.3g})" if floor is not None else ""
            )
        say(
            "compare",
            f"{self.offset + self.done}/{self.total} {m['name']} seed {m['seed']}"
            f" ({m['steps']:,} steps): {judged}, {result['cpu_s']:.0f} s CPU training,"
            f" judged in {result['evaluate_s']:.0f} s",
        )
        self.said = time.monotonic()

    def on_step_begin(self, iteration, trials, **info):
        if time.monotonic() - self.said < SAY_EVERY_S:
            return
        self.said = time.monotonic()
        running = [self.models[t.config["cell"]] for t in trials if t.status == "RUNNING"]
        names = ", ".join(f"{m['name']} seed {m['seed']}" for m in running)
        say(
            "compare",
            f"{self.offset + self.done}/{self.total} models done,"
            f" {time.monotonic() - self.started:.0f} s; training {names or 'nothing yet'}",
        )


def run_cell(params: dict[str, Any], *, ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``params["cell"]`` indexes ``ctx["cells"]``."""
    index = params["cell"]
    record = train_cell(ctx["cells"][index], ArtifactStore(ctx["store"], check=False))
    numbers = {k: v for k, v in record["metrics"].items() if isinstance(v, int | float)}
    keep = ("cpu_s", "train_s", "evaluate_s", "steps", "trained")
    floor = record["floors"].get(ctx["cells"][index]["metric"])  # none for a diverged model
    tune.report({"cell": index, "floor": floor, "error": record["error"], **numbers,
                 **{k: record[k] for k in keep}})  # fmt: skip


def train_models(
    models: list[dict[str, Any]], store: ArtifactStore, *, offset: int = 0, total: int | None = None
) -> None:
    """Every model as a Ray Tune trial, one CPU each, processes reused; a failure names the
    model. ``offset`` models of ``total`` were done before (found in the store)."""
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    ctx = {"store": store.uri, "cells": models}
    trainable = tune.with_resources(tune.with_parameters(run_cell, ctx=ctx), {"cpu": 1})
    progress = CellProgress(models, offset, total or len(models))
    with tempfile.TemporaryDirectory(prefix="genai-compare-") as tmp:
        tuner = tune.Tuner(
            trainable,
            param_space={"cell": tune.grid_search(list(range(len(models))))},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=cpus),
            run_config=tune.RunConfig(
                name="compare",
                storage_path=tmp,
                failure_config=tune.FailureConfig(max_failures=0),
                callbacks=[progress, *quiet_loggers()],
                verbose=0,
            ),
        )
        grid = tuner.fit()
    failed = [(r.config["cell"], r.error) for r in grid if r.error is not None]
    if failed:
        index, error = failed[0]
        m = models[index]
        raise RuntimeError(
            f"compare: {len(failed)} of {len(models)} models failed; {m['name']} seed {m['seed']}"
            f" ({m['run_id']}): {error}"
        )
