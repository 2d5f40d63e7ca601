"""Sweeps on a real local Ray: digits and ring8, file and S3, early stopping, failures, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai.config import RunConfig, SweepConfig, load_config
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.tune.sweep import sweep

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
ROOT = Path(__file__).resolve().parents[3]

DIGITS_VAE = {
    "data.source": "digits",
    "model.arch.body": "conv",
    "train.epochs": 3,
    "train.batch_size": 64,
}
RING_GAN = {"data.source": "ring8", "data.n": 1500, "model.family": "gan", "train.epochs": 4}


def trials_of(store: ArtifactStore, sweep_id: str) -> list[dict]:
    return store.read_table(f"sweeps/{sweep_id}/trials.parquet").to_pylist()


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_vae_loss_weight_sweep_on_digits(request, tmp_path, backend):
    if backend == "file":
        store = ArtifactStore(f"file://{tmp_path}/store")
    else:
        store = ArtifactStore(f"s3://{request.getfixturevalue('bucket')}/sw")
    base = load_config(RunConfig, data=DIGITS_VAE)
    cfg = SweepConfig(
        space=str(ROOT / "tune_spaces/vae_loss_weights.yaml"), trials=6, grace_period=1
    )
    result = sweep(base, cfg, store)
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    assert {
        "loss.reconstruction.name",
        "loss.kl.weight",
        "model.arch.width",
        "score_by_epoch",
    } <= set(rows[0])
    assert sum(r["status"] == "stopped" for r in rows) >= 1, "ASHA stopped some trials early"
    assert all(len(r["score_by_epoch"]) == r["epochs"] for r in rows)
    best = store.read_json(f"sweeps/{result.sweep_id}/best.json")
    assert best["metric"] == "fid" and best["score"] == min(
        r["score"] for r in rows if r["status"] != "failed"
    )
    assert (
        best["config"]["loss"]["reconstruction"]["name"]
        == best["params"]["loss.reconstruction.name"]
    )
    assert store.exists(f"sweeps/{result.sweep_id}/plot.png")
    again = sweep(base, cfg, store)
    assert again.reused and again.sweep_id == result.sweep_id


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


def test_trials_on_two_ray_train_workers_each(tmp_path):
    """train.num_workers 2: each trial drives a TorchTrainer (DDP on 2 workers) and Tune gets
    rank 0's per-epoch score through TuneReportCallback; a diverging one fails with its cause."""
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {grid: [0.001, 1.0e+12]}\n")
    store = ArtifactStore(f"file://{tmp_path}/store")
    base = load_config(
        RunConfig,
        data={**RING_GAN, "train.epochs": 2, "train.num_workers": 2, "train.grad_clip": None},
    )
    result = sweep(base, SweepConfig(space=str(space), trials=1, scheduler="fifo"), store)
    rows = {r["train.lr"]: r for r in trials_of(store, result.sweep_id)}
    good, bad = rows[0.001], rows[1e12]
    assert good["status"] == "finished" and good["workers"] == 2
    assert len(good["score_by_epoch"]) == 2 and all(s > 0 for s in good["score_by_epoch"])
    assert bad["status"] == "failed" and "FloatingPointError" in bad["error"]
    checkpoints = [k for k in store.list(f"sweeps/{result.sweep_id}/trials") if "epoch-" in k]
    assert any("epoch-00001" in k for k in checkpoints)  # in the store, for every node to read
    assert result.best["params"]["train.lr"] == 0.001


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
from genai.config import RunConfig, SweepConfig, load_config
from genai.storage import ArtifactStore
from genai.tune.sweep import sweep
ensure_ray(num_cpus=2)
base = load_config(RunConfig, data={data!r})
sweep(base, SweepConfig(space={space!r}, trials=6, scheduler="fifo"), ArtifactStore({store!r}))
"""


def test_an_interrupted_sweep_resumes_with_every_trial_once(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    space = str(ROOT / "tune_spaces/gan_losses.yaml")
    data = {**RING_GAN, "train.epochs": 6}
    code = DRIVER.format(data=data, space=space, store=store.uri)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    try:  # kill the driver once some trials have finished and others have not
        while time.monotonic() < deadline:
            results = [k for k in store.list("sweeps") if k.endswith("/result.json")]
            reports = [Path(store.path(k)).read_text().count("\n") for k in results]
            if sum(n >= 6 for n in reports) >= 2:  # one line per epoch: two trials finished
                break
            time.sleep(0.5)
        else:
            pytest.fail("the sweep made no progress")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not store.exists(
        next(k for k in store.list("sweeps"))[: len("sweeps/") + 30] + "/best.json"
    )
    result = sweep(
        load_config(RunConfig, data=data),
        SweepConfig(space=space, trials=6, scheduler="fifo"),
        store,
    )
    rows = trials_of(store, result.sweep_id)
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    assert all(r["status"] == "finished" and r["epochs"] == 6 for r in rows)


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
