"""Your own data through the command line: a CSV with named labels, a NumPy .npy with `--shape`
and a labels file, and a folder of PNGs labelled by subfolder each go through `genai prepare`;
a config naming the same file finds that dataset in the store. The CSV (points) and the PNGs
(images) then train for an epoch with `genai train` on it; the .npy's images are the PNGs' kind,
so for it the config's lookup alone is run (`find_prepared`, what `genai train` calls first)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from genai.config import RunConfig
from genai.configfile import load_config
from genai.data.prepare import find_prepared
from genai.storage import ArtifactStore
from tests.flows.test_prepare_flow import genai
from tests.genai.data.test_user_files import digit_images, write_csv

pytestmark = pytest.mark.slow


def blobs_csv(tmp_path) -> tuple[list[str], dict]:
    rng = np.random.default_rng(0)
    names = np.array(["north", "east", "south", "west"])[rng.integers(0, 4, 800)]
    centre = {"north": (0, 3), "east": (3, 0), "south": (0, -3), "west": (-3, 0)}
    xy = np.array([centre[n] for n in names]) + 0.3 * rng.standard_normal((800, 2))
    uri = write_csv(tmp_path / "blobs.csv", {"x": xy[:, 0], "y": xy[:, 1], "where": names})
    args = ["--source", "csv", "--uri", uri, "--label-column", "where", "--name", "blobs"]
    data = {"source": "csv", "uri": uri, "label_column": "where", "name": "blobs"}
    model = {"family": "vae", "arch": {"body": "mlp", "width": 32, "latent_dim": 2}}
    return args, {"data": data, "model": model, "loss": {"reconstruction": {"name": "mse"}}}


def digits_npy(tmp_path) -> tuple[list[str], dict]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.save(tmp_path / "x.npy", digits.data[:600])  # (600, 64) rows
    np.save(tmp_path / "y.npy", digits.target[:600])
    x, y = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    args = ["--source", "npy", "--uri", x, "--label-uri", y, "--shape", "8,8"]
    data = {"source": "npy", "uri": x, "label_uri": y, "shape": [8, 8]}
    model = {"family": "vae", "arch": {"body": "conv", "width": 8, "latent_dim": 4}}
    return args, {"data": data, "model": model}


def digits_pngs(tmp_path) -> tuple[list[str], dict]:
    folder = digit_images(tmp_path / "pngs", n=400)
    args = ["--source", "images", "--uri", folder, "--name", "my-digits"]
    data = {"source": "images", "uri": folder, "name": "my-digits"}
    model = {"family": "gan", "arch": {"body": "conv", "width": 8, "latent_dim": 8}}
    return args, {"data": data, "model": model}


CASES = {"csv": blobs_csv, "npy": digits_npy, "images": digits_pngs}


@pytest.mark.parametrize("case", list(CASES))
def test_your_file_prepares_then_trains(prefect_server, tmp_path, case):
    args, run = CASES[case](tmp_path)
    store = f"file://{tmp_path}/store"
    prepared = genai("prepare", *args, "--store", store, "--json", api_url=prefect_server, cwd=None)
    assert prepared.returncode == 0, prepared.stderr[-4000:]
    dataset = json.loads(prepared.stdout.strip().splitlines()[-1])
    manifest = ArtifactStore(store).read_json(f"datasets/{dataset['dataset']}/{dataset['version']}/manifest.json")  # fmt: skip
    config = tmp_path / "run.yaml"
    train = {"epochs": 1, "batch_size": 64, "num_workers": 1}
    config.write_text(yaml.safe_dump({**run, "train": train}))
    found = find_prepared(load_config(RunConfig, config).data, ArtifactStore(store))
    assert found is not None and found.version == dataset["version"]
    if case == "npy":
        assert manifest["kind"] == "image" and manifest["shape"] == [8, 8]
        assert manifest["labels"]["classes"] == list(range(10))
        assert "names" not in manifest["labels"]
        return
    trained = genai("train", str(config), "--store", store, "--json", api_url=prefect_server, cwd=None)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-4000:]
    assert "prepare" not in trained.stderr  # the dataset prepared above, found in the store
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["epochs"] == 1 and all(np.isfinite(v) for v in result["metrics"].values())
    saved = ArtifactStore(store).read_json(f"runs/{result['run_id']}/config.json")
    assert saved["dataset"]["version"] == dataset["version"], saved["dataset"]
    if case == "csv":
        assert manifest["kind"] == "points" and manifest["shape"] == [2]
        assert manifest["labels"]["names"] == ["east", "north", "south", "west"]
    else:
        assert manifest["kind"] == "image" and manifest["shape"] == [8, 8]
        assert manifest["labels"]["names"][0] == "eight" and len(manifest["labels"]["names"]) == 10
