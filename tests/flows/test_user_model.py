"""A model family of your own: a `module:Class` in `model.class_path`, defined beside you (here,
in the test's working directory), trains through `genai train` on two Ray Train workers (DDP) and
is evaluated through `genai evaluate`; a path that does not name one is refused before anything
starts, naming the field."""

from __future__ import annotations

import json

import pytest

from tests.flows.test_prepare_flow import genai

pytestmark = pytest.mark.slow

FAMILY = '''
"""A diagonal Gaussian fitted by maximum likelihood: the smallest family there is."""

import torch
from torch import nn

from genai.losses import weighted_total
from genai.models import GenerativeModel


class Gaussian(GenerativeModel):
    family = "vae"  # it takes the vae's loss slots; only `reconstruction` (its weight) is used

    def __init__(self, model, losses, data, *, features=None):
        super().__init__(data)
        self.losses = dict(losses)
        self.mean = nn.Parameter(torch.zeros(data.dim))
        self.log_std = nn.Parameter(torch.zeros(data.dim))

    def training_step(self, batch, player="model"):
        x = batch.flatten(1)
        nll = ((x - self.mean) / self.log_std.exp()).pow(2).div(2).add(self.log_std).sum(1).mean()
        return weighted_total({"reconstruction": nll}, self.losses)

    def sample(self, n, *, generator=None):
        noise = self._noise(n, self.data.dim, generator=generator)
        return (self.mean + self.log_std.exp() * noise).view(n, *self.data.shape)
'''

BASE = ["configs/vae.yaml", "--set", "data.source=ring8", "--set", "data.n=2000",
        "--set", "model.arch.body=mlp", "--set", "loss.reconstruction.name=mse"]  # fmt: skip


def test_your_own_family_trains_on_two_workers_and_is_evaluated(prefect_server, tmp_path):
    (tmp_path / "my_families.py").write_text(FAMILY)
    store = f"file://{tmp_path}/store"
    train = genai("train", *BASE, "--set", "model.class_path=my_families:Gaussian",
                  "--set", "train.epochs=3", "--set", "train.num_workers=2", "--store", store,
                  "--json", api_url=prefect_server, cwd=tmp_path)  # fmt: skip
    assert train.returncode == 0, train.stderr[-4000:]
    result = json.loads(train.stdout.strip().splitlines()[-1])
    assert result["epochs"] == 3 and result["run_id"].startswith("vae-")
    assert set(result["metrics"]) >= {"reconstruction", "total", "val_loss"}
    assert "on 2 Ray Train workers" in train.stderr
    evaluate = genai("evaluate", result["run_id"], "--store", store, "--json",
                     api_url=prefect_server, cwd=tmp_path)  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-4000:]
    metrics = json.loads(evaluate.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["modes"] >= 0 and metrics["mmd2"] > 0  # one blob over eight modes: a poor fit


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("my_families", "model.class_path: 'my_families' is not a 'module:Class' path"),
        ("no_such_module:Gaussian", "model.class_path: cannot import 'no_such_module'"),
        ("my_families:Gausian", "model.class_path: module 'my_families' has no 'Gausian'"),
        ("my_families:nn", "'my_families:nn' is not a subclass of genai.models.GenerativeModel"),
    ],
)
def test_a_class_path_that_names_no_family_is_refused_first(
    prefect_server, tmp_path, path, message
):
    (tmp_path / "my_families.py").write_text(FAMILY)
    proc = genai("train", *BASE, "--set", f"model.class_path={path}", "--store",
                 f"file://{tmp_path}/store", api_url="http://127.0.0.1:9/api", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "store").exists()  # nothing started, nothing written
