"""Evaluate and generate end to end on stored runs; the feature network; bad input."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from genai.config import DataConfig, EvaluateConfig, GenerateConfig, RunConfig
from genai.configfile import load_config
from genai.data.dataset import read_split
from genai.data.prepare import ensure_feature_net, prepare
from genai.evaluate.evaluate import EvaluationError, evaluate_run
from genai.generate import generate
from genai.storage import ArtifactStore, StoreError
from genai.train import checkpoint
from genai.train.launcher import train_local

pytestmark = pytest.mark.usefixtures("ray_cluster")


def fitted_run(store: ArtifactStore, run_id: str, data: dict, overrides: dict) -> RunConfig:
    """Prepare, fit in this process with the one loop, and store the run as Ray Train would."""
    cfg = load_config(
        RunConfig,
        data={**{f"data.{k}": v for k, v in data.items()}, **overrides, "train.run_id": run_id},
    )
    train_local(cfg, store)
    return cfg


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('eval')}/store")
    fitted_run(
        store,
        "digits-vae",
        {"source": "digits"},
        {
            "model.arch.body": "conv",
            "model.arch.width": 16,
            "loss.reconstruction.name": "bce",
            "train.epochs": 8,
            "train.batch_size": 64,
        },
    )
    return store


def test_feature_network_reaches_97_percent(digits_store):
    key = f"datasets/digits/{prepare(DataConfig(), digits_store).version}"
    trained = ensure_feature_net(digits_store, key)
    assert trained.test_accuracy >= 0.97
    meta = digits_store.read_json(f"{trained.key}/meta.json")
    assert meta["test_accuracy"] == trained.test_accuracy and trained.net.num_features == 64
    assert trained.key.endswith(meta["net_version"])  # the network's version is in its key
    again = ensure_feature_net(digits_store, key)  # loaded, not retrained
    x = torch.from_numpy(read_split(digits_store, key, "test")[0][:10])
    torch.testing.assert_close(again.net(x), trained.net(x))


def test_evaluate_digits_reports_floors(digits_store):
    ev = evaluate_run(digits_store, "digits-vae", EvaluateConfig(n_samples=500))
    for name in ("fid", "kid", "precision", "recall", "density", "coverage", "inception_score"):
        assert name in ev.metrics and ev.floors[name] is not None, name
    assert ev.floors["fid"] < ev.metrics["fid"]  # real data beats an 8-epoch VAE
    assert (
        ev.metrics["nelbo_bpd"] > 0 and ev.metrics["iwae_nll_bpd"] <= ev.metrics["nelbo_bpd"] + 1e-6
    )
    table = digits_store.read_table("evaluations/digits-vae/metrics.parquet").to_pandas()
    assert set(table.columns) == {
        "run_id", "metric", "value", "floor", "n_samples", "reference", "sampler",
    }  # fmt: skip
    assert (table["n_samples"] == 500).all() and (table["reference"] == "test").all()


def test_generated_digits_load_and_map_back(digits_store):
    out = generate(digits_store, "digits-vae", GenerateConfig(n=36, seed=3))
    key = "samples/digits-vae/samples.parquet"
    frame = pd.read_parquet(io.BytesIO(digits_store.read_bytes(key)))
    assert len(frame) == 36 and list(frame.columns) == ["run_id", "index", "seed", "x"]
    table = pq.read_table(io.BytesIO(digits_store.read_bytes(key)))
    meta = ArtifactStore.table_metadata(table)
    assert meta["shape"] == [8, 8] and meta["units"] == "data"
    values = np.stack(frame["x"].to_numpy()).reshape(-1, 8, 8)
    assert values.min() >= -0.5 and values.max() <= 16.5  # digits' own 0..16 grey levels
    grid = mpimg.imread(io.BytesIO(digits_store.read_bytes("samples/digits-vae/grid.png")))
    assert grid.ndim == 3 and grid.shape[0] > 100 and grid.std() > 0.05
    assert digits_store.exists("samples/digits-vae/loss_curve.png")
    again = generate(digits_store, "digits-vae", GenerateConfig(n=36, seed=3))
    assert again.reused and again.files["samples"] == out.files["samples"]
    frame2 = pd.read_parquet(io.BytesIO(digits_store.read_bytes(key)))
    assert np.array_equal(np.stack(frame2["x"]), np.stack(frame["x"]))  # seeded


def test_ring8_evaluation_and_scatter(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    fitted_run(
        store,
        "ring-diffusion",
        {"source": "ring8", "n": 3000},
        {"model.family": "diffusion", "model.arch.depth": 3, "train.epochs": 60},
    )
    ev = evaluate_run(store, "ring-diffusion", EvaluateConfig(n_samples=2500))
    assert ev.floors["modes"] == 8 and ev.floors["high_quality"] > 0.97
    assert ev.metrics["modes"] >= 6, ev.metrics
    assert ev.metrics["mmd2"] < 0.05 and ev.floors["mmd2"] < ev.metrics["mmd2"] + 0.01
    out = generate(store, "ring-diffusion", GenerateConfig(n=500))
    assert "scatter" in out.files
    png = mpimg.imread(io.BytesIO(store.read_bytes("samples/ring-diffusion/scatter.png")))
    assert png.shape[0] > 200


def test_missing_run_and_missing_checkpoint(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    with pytest.raises(StoreError, match="no run 'nope' in .* \\(runs there: none\\)"):
        evaluate_run(store, "nope")
    cfg = load_config(RunConfig, data={"data.source": "ring8", "data.n": 300})
    prepared = prepare(cfg.data, store)
    store.write_json(
        "runs/half/config.json",
        {"config": cfg.model_dump(mode="json"), "dataset": prepared.summary()},
    )
    with pytest.raises(StoreError, match="run half has no checkpoint"):
        generate(store, "half")
    with pytest.raises(StoreError, match="runs there: half"):
        evaluate_run(store, "other")


def test_samples_with_nan_are_rejected(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    fitted_run(
        store,
        "diverged",
        {"source": "ring8", "n": 300},
        {"model.family": "gan", "train.epochs": 1},
    )
    key = checkpoint.latest_key(store, "runs/diverged/checkpoints")
    saved = checkpoint.load(store.read_bytes(key))
    model = saved["replicas"][0]["model"]
    for name in model:  # the run diverged: every weight NaN
        model[name] = torch.full_like(model[name], float("nan"))
    buf = io.BytesIO()
    torch.save(saved, buf)
    store.write_bytes(key, buf.getvalue())
    with pytest.raises(
        EvaluationError, match="run diverged: 2500 of 2500 generated samples hold NaN"
    ):
        evaluate_run(store, "diverged")
    with pytest.raises(EvaluationError, match="NaN"):
        generate(store, "diverged")
    assert not store.exists("samples/diverged/samples.parquet")
