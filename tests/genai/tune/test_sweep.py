"""Sweeps on a real local Ray: digits and ring8, file and S3, early stopping, failures, resume."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.train import checkpoint
from genai.tune.record import sweep_id_for
from genai.tune.sweep import sweep

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
ROOT = Path(__file__).resolve().parents[3]

RING_GAN = {"data.source": "ring8", "data.n": 1500, "model.family": "gan", "train.epochs": 4}


def trials_of(store: ArtifactStore, sweep_id: str) -> list[dict]:
    return store.read_table(f"sweeps/{sweep_id}/trials.parquet").to_pylist()


def test_a_diverging_trial_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "loss.adversarial.name: {grid: [hinge, least_squares]}\ntrain.lr: {grid: [0.001, 1.0e+12]}\n"
    )
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data={**RING_GAN, "train.grad_clip": None})
    result = sweep(base, SweepConfig(space=str(space), trials=1, scheduler="fifo"), store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 4
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["train.lr"] == 1e12 for r in failed)
    assert all(
        "FloatingPointError" in r["error"] and ("nan" in r["error"] or "inf" in r["error"])
        for r in failed
    )
    assert sum(r["status"] == "finished" for r in rows) == 2
    assert result.best["params"]["train.lr"] == 0.001


def test_a_space_sweeping_epochs_runs_each_trial_to_its_own(tmp_path):
    """train.epochs in the space: a trial that trains its own epochs, fewer than the base's, is
    finished, not stopped early; one with more runs them all (ASHA's max_t is the space's most,
    not the base's); ASHA's one rung, at grace 3, is the end."""
    space = tmp_path / "space.yaml"
    space.write_text("train.epochs: {grid: [1, 3]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data={**RING_GAN, "data.n": 600, "train.epochs": 2})
    result = sweep(base, SweepConfig(space=str(space), trials=1, grace_period=3), store)
    rows = {r["train.epochs"]: r for r in trials_of(store, result.sweep_id)}
    assert {n: (r["epochs"], r["status"]) for n, r in rows.items()} == {
        1: (1, "finished"),
        3: (3, "finished"),
    }
    assert result.counts == {"finished": 2, "stopped": 0, "failed": 0}


def test_trials_on_two_ray_train_workers_each(tmp_path):
    """train.num_workers 2: each trial drives a TorchTrainer (DDP on 2 workers) and Tune gets
    rank 0's score through TuneReportCallback; a diverging one fails with its cause. Judged every
    2 epochs and at the last: the epoch between is neither reported nor checkpointed."""
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {grid: [0.001, 1.0e+12]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(
        RunConfig,
        data={**RING_GAN, "train.epochs": 3, "train.num_workers": 2, "train.grad_clip": None},
    )
    cfg = SweepConfig(space=str(space), trials=1, scheduler="fifo", judge_every=2)
    result = sweep(base, cfg, store)
    rows = {r["train.lr"]: r for r in trials_of(store, result.sweep_id)}
    good, bad = rows[0.001], rows[1e12]
    assert good["status"] == "finished" and good["workers"] == 2 and good["epochs"] == 3
    first, *judged = good["score_by_epoch"]
    assert math.isnan(first) and len(judged) == 2 and all(s > 0 for s in judged)
    assert bad["status"] == "failed" and "FloatingPointError" in bad["error"]
    checkpoints = [k for k in store.list(f"sweeps/{result.sweep_id}/trials") if "epoch-" in k]
    assert any("epoch-00002" in k for k in checkpoints)  # in the store, for every node to read
    assert not any("epoch-00000" in k for k in checkpoints)  # not judged: not reported
    assert result.best["params"]["train.lr"] == 0.001


def test_in_process_trials_judged_every_n_epochs_and_at_the_last(tmp_path):
    """sweep.judge_every 2 over 5 epochs: judged after epochs 2, 4 and 5; ASHA (grace 1) acts on
    the judged epochs only; the sweep's id is its own."""
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {grid: [0.001, 0.002]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data={**RING_GAN, "train.epochs": 5})
    cfg = SweepConfig(space=str(space), trials=1, judge_every=2)
    result = sweep(base, cfg, store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 2
    for row in rows:
        scores = row["score_by_epoch"]
        assert [math.isnan(s) for s in scores] == [True, False, True, False, False][: len(scores)]
        assert row["epochs"] in (2, 4, 5) and row["score"] == scores[-1]
    assert any(r["status"] == "finished" for r in rows)
    every_epoch = sweep_id_for(base, str(space), cfg.model_copy(update={"judge_every": 1}))
    assert result.sweep_id != every_epoch


def test_a_sweep_wider_than_the_cluster_fails_before_tune(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("train.num_workers: {choice: [1, 3]}\n")
    base = load_config(RunConfig, data=RING_GAN)
    store = ArtifactStore(f"file://{tmp_path}/store")
    with pytest.raises(ConfigError, match="train.num_workers: 3 workers need 3 CPUs"):
        sweep(base, SweepConfig(space=str(space), trials=2), store)
    assert store.list() == []  # nothing prepared, nothing swept


DRIVER = """
import sys
from genai.cluster import ensure_ray
from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from genai.tune.sweep import sweep
ensure_ray(num_cpus=2)
base = load_config(RunConfig, data={data!r})
cfg = SweepConfig(space={space!r}, trials={trials}, scheduler="fifo")
sweep(base, cfg, ArtifactStore({store!r}))
"""


def kill_driver_when(ready, *, data: dict, space: str, store: ArtifactStore, trials: int) -> None:
    """Run a sweep in a driver process of its own (its own Ray) and SIGKILL its whole process
    group as soon as ``ready()`` holds."""
    code = DRIVER.format(data=data, space=space, store=store.uri, trials=trials)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if ready():
                return
            assert proc.poll() is None, "the sweep ended before it was killed"
            time.sleep(0.2)
        pytest.fail("the sweep made no progress")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_an_interrupted_sweep_resumes_with_every_trial_once(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    space = str(ROOT / "tune_spaces/gan_losses.yaml")
    data = {**RING_GAN, "train.epochs": 6}

    def two_trials_finished() -> bool:  # and others not: Tune logs one line per epoch
        results = [k for k in store.list("sweeps") if k.endswith("/result.json")]
        reports = [Path(store.path(k)).read_text().count("\n") for k in results]
        return sum(n >= 6 for n in reports) >= 2

    kill_driver_when(two_trials_finished, data=data, space=space, store=store, trials=6)
    sweep_ids = {k.split("/")[1] for k in store.list("sweeps")}
    assert len(sweep_ids) == 1 and not store.exists(f"sweeps/{sweep_ids.pop()}/best.json")
    result = sweep(
        load_config(RunConfig, data=data),
        SweepConfig(space=space, trials=6, scheduler="fifo"),
        store,
    )
    assert store.exists(f"sweeps/{result.sweep_id}/best.json")
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    assert all(r["status"] == "finished" and r["epochs"] == 6 for r in rows)


def test_a_sweep_killed_during_a_two_worker_trial_resumes_it_from_its_checkpoint(tmp_path):
    """The driver dies while a trial's two Ray Train workers are mid-way; run again, the sweep
    restores Tune's state and the trial's TorchTrainer restores its own run from the store: it
    goes on after its last checkpoint instead of training from the start."""
    store = ArtifactStore(f"file://{tmp_path}/store")
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {grid: [0.001]}\n")  # one trial: the one killed and resumed
    data = {**RING_GAN, "data.n": 20000, "train.epochs": 6, "train.num_workers": 2}

    def epoch_2_checkpointed() -> bool:  # (of 0..5) by the first trial's Ray Train run
        return any("/trials/" in k and "/epoch-00002/" in k for k in store.list("sweeps"))

    kill_driver_when(epoch_2_checkpointed, data=data, space=str(space), store=store, trials=1)
    trial_runs = {k.split("/")[3] for k in store.list("sweeps") if "/trials/" in k}
    assert len(trial_runs) == 1  # killed inside the first trial
    killed = trial_runs.pop()
    (sweep_id,) = {k.split("/")[1] for k in store.list("sweeps")}
    before = checkpoint.read_latest(store, f"sweeps/{sweep_id}/trials/{killed}")["history"]
    assert 3 <= len(before) < 6, "killed after epoch 2 and before the trial ended"
    result = sweep(
        load_config(RunConfig, data=data),
        SweepConfig(space=str(space), trials=1, scheduler="fifo"),
        store,
    )
    rows = {r["trial_id"]: r for r in trials_of(store, result.sweep_id)}
    assert list(rows) == [killed] and rows[killed]["status"] == "finished", rows
    assert all(r["epochs"] == 6 and r["workers"] == 2 for r in rows.values())
    assert not any(math.isnan(s) for r in rows.values() for s in r["score_by_epoch"])
    # resumed, not retrained: the epochs done before the kill keep their recorded times
    after = checkpoint.read_latest(store, f"sweeps/{sweep_id}/trials/{killed}")["history"]
    assert [h["epoch"] for h in after] == list(range(6))
    assert [h["epoch_s"] for h in after[: len(before)]] == [h["epoch_s"] for h in before]
    assert rows[killed]["score_by_epoch"][: len(before)] == [h["score"] for h in before]


def test_optuna_search_with_repeats_ranks_by_the_mean(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "loss.kl.weight: {loguniform: [0.05, 5]}\nmodel.arch.width: {choice: [16, 32]}\n"
    )
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(RunConfig, data={"data.source": "moons", "data.n": 800, "train.epochs": 2})
    cfg = SweepConfig(space=str(space), trials=3, search="optuna", repeats=2, scheduler="fifo")
    result = sweep(base, cfg, store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows)
    assert all(r["seeds"] == "0,1000" for r in rows)  # two seeds of each sampled config
    assert all(r["score_std"] is not None and r["score_std"] > 0 for r in rows)
    assert result.best["score"] == min(r["score"] for r in rows)
    assert result.best["score_std"] == next(
        r["score_std"] for r in rows if r["trial_id"] == result.best["trial_id"]
    )
