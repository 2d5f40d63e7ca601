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

RING_VAE = {
    "data.source": "ring8",
    "data.n": 3000,
    "model.family": "vae",
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
    assert row["status"] == "finished"
    return row


def test_a_trial_on_a_reused_process_gives_what_it_gives_alone(tmp_path):
    """Four one-worker VAE trials one at a time (a fixed order), under ASHA: the first trains, the
    second diverges on the first's process, the third barely moves and is stopped, the fourth
    runs on the stopped one's process. The failed trial's process is not reused (the third runs
    in a new one); the fourth gives, to the bit, the scores and metrics it gives alone in a
    process of its own. Tune's CSV and TensorBoard loggers are off, the environment untouched."""
    space = tmp_path / "space.yaml"
    order = [0.003, 1e12, 1e-9, 0.002]  # the grid's order, the order Tune runs them in
    space.write_text("train.lr: {grid: [0.003, 1.0e+12, 1.0e-9, 0.002]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data=RING_VAE)
    cfg = SweepConfig(
        space=str(space), trials=1, max_concurrent=1, grace_period=1, reduction_factor=2
    )
    result = sweep(base, cfg, store)
    rows = sorted(trials_of(store, result.sweep_id), key=lambda r: order.index(r["train.lr"]))
    assert [r["status"] for r in rows[:3]] == ["finished", "failed", "stopped"], rows
    first, _, stopped, last = rows
    assert stopped["pid"] != first["pid"]  # the failed trial's process (the first's) is gone
    assert last["pid"] == stopped["pid"]  # a stopped trial's process runs the next trial
    own = alone(tmp_path, store, base, last["train.lr"])
    assert own["pid"] not in {r["pid"] for r in rows}
    assert own["score_by_epoch"][: last["epochs"]] == last["score_by_epoch"]
    if last["status"] == "finished":  # ASHA may stop it; alone, nothing does
        assert own["score"] == last["score"] and own["precision"] == last["precision"]
        assert own["recall"] == last["recall"]
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
    data = {**RING_VAE, "train.epochs": 3, "train.num_workers": 2}
    base = load_config(RunConfig, data=data)
    cfg = SweepConfig(space=str(space), trials=1, grace_period=1, reduction_factor=3)
    result = sweep(base, cfg, store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 3 and all(r["status"] != "failed" for r in rows), rows
    assert all(r["workers"] == 2 for r in rows)
    assert any(r["status"] == "stopped" for r in rows), rows
    assert len({r["pid"] for r in rows}) == 3
