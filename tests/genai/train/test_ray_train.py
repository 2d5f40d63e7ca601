"""Training on a real local Ray (num_cpus=2): DDP on 2 workers, resume, worker failure, S3."""

from __future__ import annotations

import time

import pytest
import torch

from genai.config import RunConfig
from genai.configfile import load_config
from genai.data.sources import DataError
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.train import checkpoint
from genai.train.launcher import train
from genai.train.runs import history_of
from genai.train.trainer import TrainError
from tests.faults import DieOnce

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

SMALL = {"data.source": "ring8", "data.n": 1000, "train.batch_size": 64, "model.arch.width": 32}
FAMILIES = {
    "vae": {},
    "gan": {  # WGAN-GP: the penalty's double backward under DDP
        "model.family": "gan",
        "loss.adversarial.name": "wasserstein",
        "loss.gradient_penalty.weight": 1.0,
        "model.gan.n_critic": 2,
    },
    "diffusion": {"model.family": "diffusion"},
    "autoregressive": {
        "model.family": "autoregressive",
        "model.arch.d_model": 16,
        "model.arch.heads": 2,
    },
    "autoregressive-made": {  # the digits recipe's body: its degree buffers under DDP
        "model.family": "autoregressive",
        "model.autoregressive.body": "made",
    },
}


def run_config(**overrides) -> RunConfig:
    return load_config(RunConfig, data={**SMALL, **overrides})


def metrics_of(store: ArtifactStore, run_id: str):
    return store.read_table(f"runs/{run_id}/metrics.parquet")


def final_weights(store: ArtifactStore, run_id: str) -> dict:
    return checkpoint.model_state(checkpoint.read_latest(store, f"runs/{run_id}/checkpoints"))


@pytest.mark.parametrize("case", list(FAMILIES))
def test_each_family_trains_on_two_workers_with_ddp(tmp_path, case):
    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = run_config(**FAMILIES[case], **{"train.epochs": 2, "train.num_workers": 2})
    family = cfg.model.family
    result = train(cfg, store)
    assert result.epochs == 2 and result.run_id.startswith(family)
    table = metrics_of(store, result.run_id)
    history = history_of(table)
    assert [h["epoch"] for h in history] == [0, 1]
    for h in history:  # the workers' parameters are identical after every epoch
        assert h["param_divergence"] == 0.0
        assert h["samples_per_s"] > 0 and h["epoch_s"] > 0 and "val_loss" in h
    terms = set(table.column("term").to_pylist())
    assert table.num_rows == 2 * len(terms)  # one row per epoch and term
    expected = {
        "vae": {"reconstruction", "kl"},
        "gan": {"discriminator/gradient_penalty", "generator/adversarial"},
    }
    assert expected.get(family, set()) <= terms
    assert (
        store.read_json(f"runs/{result.run_id}/config.json")["config"]["model"]["family"] == family
    )
    checkpoints = {
        k.split("/")[3] for k in store.list(f"runs/{result.run_id}/checkpoints") if "/epoch-" in k
    }
    assert checkpoints == {"epoch-00000", "epoch-00001"}
    again = train(cfg, store)  # a finished run is not trained twice
    assert again.reused and again.run_id == result.run_id


def test_a_fit_on_this_machines_ray_starts_no_data_or_preemption_actor(tmp_path):
    """Ray Train 2.60 starts a DatasetManager actor for every fit (genai passes no Ray Dataset)
    and a PreemptionWatcher (no node of a one-machine Ray can be preempted): two more processes
    beside the workers on two cores. genai's fits start neither."""
    import ray
    from ray.util.state import list_actors

    store = ArtifactStore(f"file://{tmp_path}/store")
    train(run_config(**{"train.epochs": 1, "train.num_workers": 2}), store)
    address = ray.get_runtime_context().gcs_address  # this test's Ray, of the machine's several
    actors = list_actors(address=address, limit=10_000, raise_on_missing_output=False)
    classes = {a.class_name for a in actors}
    assert {"RayTrainWorker", "TrainController"} <= classes, classes  # the listing sees fits
    assert not classes & {"DatasetManager", "PreemptionWatcher"}, classes


def test_keeps_only_the_last_k_checkpoints(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    result = train(run_config(**{"train.epochs": 3, "train.keep_checkpoints": 1}), store)
    kept = {
        k.split("/")[3] for k in store.list(f"runs/{result.run_id}/checkpoints") if "/epoch-" in k
    }
    assert kept == {"epoch-00002"}


@pytest.mark.parametrize("store", ["s3"], indirect=True)  # where a cluster's checkpoints live
def test_resume_continues_and_matches_an_uninterrupted_run(store, tmp_path):
    base = {"train.epochs": 4, "train.max_failures": 0, "train.seed": 3}
    stopped = run_config(**base, **{"train.run_id": "stopped"})
    with pytest.raises(TrainError, match="run stopped failed"):
        train(stopped, store, hooks=[DieOnce(epoch=2, rank=0, marker=tmp_path / "died")])
    assert [h["epoch"] for h in history_of(metrics_of(store, "stopped"))] == [0, 1]
    resumed = train(stopped, store)  # the same job again: resumes after epoch 1
    assert resumed.resumed_from_epoch == 2 and resumed.epochs == 4
    assert [h["epoch"] for h in history_of(metrics_of(store, "stopped"))] == [0, 1, 2, 3]
    straight = train(run_config(**base, **{"train.run_id": "straight"}), store)
    a, b = final_weights(store, "stopped"), final_weights(store, "straight")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    assert resumed.metrics["total"] == pytest.approx(straight.metrics["total"], rel=1e-5)


@pytest.mark.parametrize("store", ["file"], indirect=True)  # S3: test_trains_on_s3_with_two_workers
def test_a_worker_dying_once_does_not_fail_the_run(store, tmp_path):
    marker = tmp_path / "died"
    cfg = run_config(**{"train.epochs": 3, "train.num_workers": 2, "train.max_failures": 1})
    result = train(cfg, store, hooks=[DieOnce(epoch=1, rank=1, marker=marker)])
    assert marker.exists(), "the fault was injected"
    assert result.epochs == 3
    table = metrics_of(store, result.run_id)
    assert [h["epoch"] for h in history_of(table)] == [0, 1, 2]
    per_epoch = table.group_by(["epoch", "term"]).aggregate([("value", "count")])
    assert set(per_epoch.column("value_count").to_pylist()) == {1}  # nothing recorded twice


def test_trains_on_s3_with_two_workers(bucket):
    store = ArtifactStore(f"s3://{bucket}/genai")
    result = train(run_config(**{"train.epochs": 2, "train.num_workers": 2}), store)
    assert result.uri == f"s3://{bucket}/genai/runs/{result.run_id}"
    assert len(history_of(metrics_of(store, result.run_id))) == 2
    assert store.exists(f"runs/{result.run_id}/checkpoints/epoch-00001/state.pt")
    assert checkpoint.read_latest(store, f"runs/{result.run_id}/checkpoints")["epoch"] == 1


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"train.num_workers": 8},
            ConfigError,
            "train.num_workers: 8 workers need 8 CPUs but the cluster has 2",
        ),
        ({"train.use_gpu": True}, ConfigError, "train.use_gpu: true needs 1 GPU\\(s\\)"),
        ({"train.mixed_precision": True}, ConfigError, "train.mixed_precision: only on GPU"),
        ({"model.arch.body": "conv"}, ConfigError, "model.arch.body: 'conv' needs image data"),
        (
            {
                "data.source": "parquet",
                "data.n": None,
                "data.uri": "/nowhere/x.parquet",
                "data.columns": ["x"],
            },
            DataError,
            "data.uri: /nowhere/x.parquet does not exist",
        ),
    ],
    ids=["too-many-workers", "gpu-without-gpu", "amp-on-cpu", "wrong-kind", "missing-dataset"],
)
def test_bad_input_fails_within_seconds(tmp_path, overrides, error, message):
    store = ArtifactStore(f"file://{tmp_path}/store")
    start = time.monotonic()
    with pytest.raises(error, match=message):
        train(run_config(**overrides), store)
    assert time.monotonic() - start < 20
    assert store.list("runs") == []
    if all(field.startswith("train.") for field in overrides):  # the cluster's checks
        assert store.list("datasets") == []  # made before anything is prepared
