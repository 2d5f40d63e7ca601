"""One home for judging a dataset: what the Judge measures for each kind of data, under the names
`evaluate` reports and a sweep ranks by; unlabelled images get a feature space of their own."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_digits

from genai.config import DataConfig
from genai.data.dataset import read_split
from genai.data.prepare import prepare
from genai.evaluate.judge import Judge
from genai.evaluate.names import METRICS
from genai.storage import ArtifactStore

pytestmark = pytest.mark.usefixtures("ray_cluster")
OWN_SPACE = ["mmd2", "precision", "recall", "density", "coverage"]


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(f"file://{tmp_path}/store")


def judged(store: ArtifactStore, data: DataConfig, split: str = "val") -> tuple[Judge, dict]:
    prepared = prepare(data, store)
    judge = Judge(store, prepared.key, reference=split)
    real = torch.from_numpy(read_split(store, prepared.key, "test")[0])
    return judge, judge.metrics(real)


def test_labelled_images_are_judged_in_the_feature_network_space(store):
    judge, metrics = judged(store, DataConfig(source="digits"))
    assert judge.score_name == "fid"
    assert list(metrics) == [
        "fid", "kid", "precision", "recall", "density", "coverage", "inception_score",
    ]  # fmt: skip
    assert judge.score(metrics) == metrics["fid"] < 50  # real test rows against val


def test_mixtures_get_veegan_pacgan_metrics_and_their_own_space(store):
    judge, metrics = judged(store, DataConfig(source="ring8", n=2000))
    assert judge.score_name == "mmd2"
    assert list(metrics) == ["modes", "high_quality", "reverse_kl", *OWN_SPACE]
    assert metrics["modes"] == 8 and metrics["recall"] > 0.8


def test_unlabelled_images_get_a_feature_space_from_the_label_free_objective(store, tmp_path):
    """Image Parquet without labels: its network learns the pretext task alone, and it is judged
    by FID and its kin (no inception score: there are no classes), never in pixel space."""
    x = load_digits().data.astype(np.float32)  # (1797, 64), no label column written
    path = tmp_path / "unlabelled.parquet"
    pq.write_table(
        pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 64)}), path
    )
    data = DataConfig(source="parquet", uri=str(path), shape=(8, 8), name="pix")
    judge, metrics = judged(store, data)
    assert judge.score_name == "fid" and judge.features is not None
    assert judge.features.head is None  # no classes to predict
    assert list(metrics) == ["fid", "kid", "precision", "recall", "density", "coverage"]
    noise = judge.metrics(torch.rand(400, 8, 8))
    assert noise["fid"] > 10 * metrics["fid"] and noise["precision"] < metrics["precision"]


def test_every_metric_has_a_place_in_the_tables():
    assert set(METRICS) >= {"fid", "kid", "inception_score", "modes", "high_quality",
                            "reverse_kl", *OWN_SPACE}  # fmt: skip
