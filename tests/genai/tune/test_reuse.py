"""Tune reuses one-worker trials' actors (issue 27): a trial on a reused process gives exactly
what it gives alone, a failed trial's process is not reused, and a two-worker sweep, whose
stopped trials' threads never end, starts a fresh process for each trial. Tune's CSV and
TensorBoard loggers are off without the environment variable."""

from __future__ import annotations

import os

import pytest

from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from genai.tune.sweep import sweep

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

RING_GAN = {
    "data.source": "ring8",
    "data.n": 600,
    "model.family": "gan",
    "train.epochs": 2,
    "train.grad_clip": None,
}


def trials_of(store: ArtifactStore, sweep_id: str) -> list[dict]:
    return store.read_table(f"sweeps/{sweep_id}/trials.parquet").to_pylist()


def alone(tmp_path, store: ArtifactStore, base: RunConfig, lr: float) -> dict:
    """The trial of learning rate ``lr`` as the only trial of a sweep: a process of its own."""
    space = tmp_path / f"alone-{lr}.yaml"
    space.write_text(f"train.lr: {{grid: [{lr}]}}\n")
    result = sweep(base, SweepConfig(space=str(space), trials=1, scheduler="fifo"), store)
    (row,) = trials_of(store, result.sweep_id)
    return row


def test_a_trial_on_a_reused_process_gives_what_it_gives_alone(tmp_path):
    """Four one-worker trials, two at a time, the second diverging: the good ones reuse a process
    (fewer processes than good trials: Tune caches a finished trial's actor, never a failed
    one's) and the last, on a reused process after a failed trial, gives to the bit the scores
    and metrics the same trial gives alone, in a process of its own."""
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {grid: [0.001, 1.0e+12, 0.002, 0.003]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data=RING_GAN)
    result = sweep(base, SweepConfig(space=str(space), trials=1, scheduler="fifo"), store)
    order = [0.001, 1e12, 0.002, 0.003]  # the grid's order, the order Tune starts them in
    rows = sorted(trials_of(store, result.sweep_id), key=lambda r: order.index(r["train.lr"]))
    assert [r["status"] for r in rows] == ["finished", "failed", "finished", "finished"], rows
    pids = [r["pid"] for r in rows if r["status"] == "finished"]
    assert len(set(pids)) < len(pids), f"no process reused: {pids}"
    last = rows[-1]
    assert last["pid"] in pids[:2]  # it ran where an earlier trial had
    own = alone(tmp_path, store, base, last["train.lr"])
    assert own["pid"] not in pids
    assert own["score_by_epoch"] == last["score_by_epoch"]
    assert own["score"] == last["score"] and own["precision"] == last["precision"]
    assert own["recall"] == last["recall"]
    # Tune's CSV and TensorBoard loggers were off, and the process's environment untouched
    files = [f.name for f in (tmp_path / "store" / "sweeps" / result.sweep_id).rglob("*")]
    assert "result.json" in files
    assert not [f for f in files if f.startswith("events.out") or f == "progress.csv"], files
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in os.environ


def test_a_two_worker_sweep_with_stopped_trials_starts_a_process_for_each(tmp_path):
    """The sweep that hung while actors were reused: two-worker trials stopped by ASHA, then
    more trials. Each trial's driver is a process of its own and the sweep ends."""
    space = tmp_path / "space.yaml"
    # a VAE that barely moves from its initialisation loses to one that trains: ASHA stops it
    space.write_text("train.lr: {grid: [0.003, 1.0e-9, 2.0e-9]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    data = {"data.source": "ring8", "data.n": 3000, "model.family": "vae", "train.epochs": 3}
    base = load_config(RunConfig, data={**data, "train.num_workers": 2})
    cfg = SweepConfig(space=str(space), trials=1, grace_period=1, reduction_factor=3)
    result = sweep(base, cfg, store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 3 and all(r["status"] != "failed" for r in rows), rows
    assert all(r["workers"] == 2 for r in rows)
    assert any(r["status"] == "stopped" for r in rows), rows
    assert len({r["pid"] for r in rows}) == 3
