"""The 32-64 px bodies on a real local Ray: each trains an epoch on 2 workers (DDP, gloo) on a
small colour folder of 32x32 PNGs (two of them on 64x64 too), the workers' parameters agree, and
the run samples a picture that is not blank."""

from __future__ import annotations

import pytest

from genai.config import DataConfig, GenerateConfig, RunConfig
from genai.configfile import load_config
from genai.data import shapes
from genai.data.prepare import prepare
from genai.generate import generate
from genai.storage import ArtifactStore
from genai.train.launcher import train
from genai.train.runs import history_of
from tests.flows.test_user_images import not_blank
from tests.genai.models.test_image_bodies import BODIES

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[ArtifactStore, dict[int, DataConfig]]:
    root = tmp_path_factory.mktemp("bodies")
    store = ArtifactStore(f"file://{root}/store")
    data = {
        size: DataConfig(source="images", uri=str(shapes.save_folder(root / str(size), n,
                                                                     seed=size, size=size)))
        for size, n in ((32, 192), (64, 96))
    }  # fmt: skip
    for cfg in data.values():
        prepare(cfg, store)
    return store, data


CASES = [(name, 32) for name in BODIES] + [("diffusion-unet", 64), ("gan-dcgan", 64)]


@pytest.mark.parametrize(("name", "size"), CASES)
def test_each_image_body_trains_an_epoch_on_two_workers(folders, name, size):
    store, data = folders
    run_id = f"{name}-{size}"
    cfg = load_config(RunConfig, data={
        "data": data[size].model_dump(mode="json"), **BODIES[name], "train.epochs": 1,
        "train.batch_size": 16, "train.num_workers": 2, "train.run_id": run_id,
    })  # fmt: skip
    result = train(cfg, store)
    assert result.epochs == 1
    (epoch,) = history_of(store.read_table(f"runs/{run_id}/metrics.parquet"))
    assert epoch["param_divergence"] == 0.0  # DDP kept the two workers' weights the same
    out = generate(store, run_id, GenerateConfig(n=16))
    assert out.n == 16
    assert not_blank(store.read_bytes(f"samples/{run_id}/grid.png")) > 5
