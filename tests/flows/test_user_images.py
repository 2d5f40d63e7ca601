"""Your own colour images, as a new user brings them: a folder of 32x32 PNGs through `genai
prepare`, `train`, `evaluate` and `generate`; every family on a labelled and an unlabelled colour
folder (8x8, so the autoregressive family samples in seconds); one on S3; a broken folder refused
with exit status 2 and nothing written."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from genai.config import DataConfig, EvaluateConfig, GenerateConfig, RunConfig
from genai.configfile import load_config
from genai.data import shapes
from genai.data.prepare import prepare
from genai.evaluate.evaluate import evaluate_run
from genai.generate import generate
from genai.storage import ArtifactStore
from genai.train.launcher import train_local
from tests.flows.test_prepare_flow import ROOT, genai

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
FAMILIES = {
    "vae": {"model.arch.body": "conv", "model.arch.width": 8, "loss.reconstruction.name": "bce"},
    "gan": {"model.family": "gan", "model.arch.body": "conv", "model.arch.width": 8},
    "diffusion": {"model.family": "diffusion", "model.arch.body": "conv",
                  "model.arch.width": 8, "model.diffusion.timesteps": 20},
    "autoregressive": {"model.family": "autoregressive", "model.autoregressive.body": "made",
                       "model.arch.width": 64, "model.autoregressive.bins": 16},
}  # fmt: skip


def flat_folder(root, n: int, *, size: int, seed: int) -> str:
    """n shape images straight in ``root``: no subfolders, no labels."""
    root.mkdir(parents=True)
    images, _ = shapes.draw(n, seed=seed, size=size)
    for i, img in enumerate(images):
        Image.fromarray(img, "RGB").save(root / f"{i:05d}.png")
    return str(root)


def timed_genai(*args: str, api_url: str) -> tuple[int, str, list[tuple[float, str]]]:
    """`genai ARGS` with each stderr line's arrival time: (exit status, stdout, [(t, line)])."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: list[tuple[float, str]] = []
    pump = threading.Thread(target=lambda: lines.extend((time.monotonic(), x) for x in proc.stderr))
    pump.start()
    watchdog = threading.Timer(300, proc.kill)  # a hang fails the test, not the suite
    watchdog.start()
    try:
        out = proc.stdout.read()
        status = proc.wait()
    finally:
        watchdog.cancel()
    pump.join()
    return status, out, lines


def not_blank(png: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).std())


def test_a_colour_folder_through_every_command(prefect_server, tmp_path):
    folder = str(shapes.save_folder(tmp_path / "shapes", 1200, seed=5))
    store = f"file://{tmp_path}/store"
    status, out, lines = timed_genai("prepare", "--source", "images", "--uri", folder,
                                     "--store", store, "--json", api_url=prefect_server)  # fmt: skip
    text = "".join(line for _, line in lines)
    assert status == 0, text[-3000:]
    # the feature network reports while it trains: never silent for more than 10 s (the
    # heartbeat's period; 2 s of slack for a loaded 2-core machine's thread wake-ups)
    shown = [t for t, line in lines if "features" in line]
    assert len(shown) >= 3 and "step" in text, text[-3000:]
    gaps = np.diff(shown)
    assert gaps.max() <= 12.0, (gaps.round(1).tolist(), text[-3000:])
    dataset = json.loads(out.strip().splitlines()[-1])
    assert dataset["feature_net"]["test_accuracy"] > 0.9  # circle, square, triangle
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "images", "uri": folder},
        "model": {"family": "vae", "arch": {"body": "conv", "width": 16, "latent_dim": 8}},
        "loss": {"reconstruction": {"name": "bce"}},
        "train": {"epochs": 1, "batch_size": 64, "num_workers": 1, "run_id": "my-shapes"},
    }))  # fmt: skip
    trained = genai("train", str(config), "--store", store, api_url=prefect_server, cwd=None)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "prepare" not in trained.stderr  # found in the store, features and all
    evaluated = genai("evaluate", "my-shapes", "--n-samples", "300", "--store", store, "--json",
                      api_url=prefect_server, cwd=None)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    ev = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert set(ev["metrics"]) >= {"fid", "kid", "precision", "recall", "inception_score"}
    assert 0.1 <= ev["floors"]["fid"] <= 100 and ev["metrics"]["fid"] > ev["floors"]["fid"]
    generated = genai("generate", "my-shapes", "--n", "16", "--store", store, "--json",
                      api_url=prefect_server, cwd=None)  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert not_blank(ArtifactStore(store).read_bytes("samples/my-shapes/grid.png")) > 20


@pytest.fixture(scope="module")
def colour(tmp_path_factory) -> tuple[ArtifactStore, dict[str, DataConfig]]:
    root = tmp_path_factory.mktemp("colour")
    store = ArtifactStore(f"file://{root}/store")
    data = {
        "labelled": DataConfig(source="images", uri=str(shapes.save_folder(root / "l", 300,
                                                                           seed=1, size=8))),
        "unlabelled": DataConfig(source="images", image_labels=False,
                                 uri=flat_folder(root / "u", 300, size=8, seed=2)),
    }  # fmt: skip
    for cfg in data.values():
        prepare(cfg, store)
    return store, data


@pytest.mark.parametrize("labels", ["labelled", "unlabelled"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_trains_evaluates_and_generates_on_a_colour_folder(colour, family, labels):
    store, data = colour
    run_id = f"{family}-{labels}"
    cfg = load_config(RunConfig, data={
        "data": data[labels].model_dump(mode="json"), "train.epochs": 1, "train.batch_size": 32,
        "train.run_id": run_id, **FAMILIES[family],
    })  # fmt: skip
    train_local(cfg, store)
    ev = evaluate_run(store, run_id, EvaluateConfig(n_samples=200))
    expected = {"fid", "kid", "precision", "recall", "density", "coverage"}
    assert set(ev.metrics) >= expected and all(np.isfinite(v) for v in ev.metrics.values())
    assert ("inception_score" in ev.metrics) == (labels == "labelled")
    if family == "diffusion":
        assert ev.sampler == "ddim 20 steps"  # the fast sampler, capped at the timesteps
    out = generate(store, run_id, GenerateConfig(n=16))
    assert not_blank(store.read_bytes(f"samples/{run_id}/grid.png")) > 20
    assert out.n == 16


def test_a_colour_folder_on_s3(bucket, tmp_path):
    import boto3

    folder = shapes.save_folder(tmp_path / "s", 240, seed=4, size=8)
    client = boto3.client("s3")
    for path in folder.rglob("*.png"):
        client.upload_file(str(path), bucket, f"pics/{path.relative_to(folder)}")
    store = ArtifactStore(f"s3://{bucket}/out")
    data = DataConfig(source="images", uri=f"s3://{bucket}/pics")
    prepared = prepare(data, store)
    assert prepared.manifest["shape"] == [3, 8, 8] and sum(prepared.rows.values()) == 240
    cfg = load_config(RunConfig, data={
        "data": data.model_dump(mode="json"), "train.epochs": 1, "train.batch_size": 32,
        "train.run_id": "s3-vae", **FAMILIES["vae"],
    })  # fmt: skip
    train_local(cfg, store)
    ev = evaluate_run(store, "s3-vae", EvaluateConfig(n_samples=200))
    assert np.isfinite(ev.metrics["fid"]) and ev.floors["fid"] < ev.metrics["fid"]
    generate(store, "s3-vae", GenerateConfig(n=16))
    assert not_blank(store.read_bytes("samples/s3-vae/grid.png")) > 20


def test_a_broken_folder_exits_2_naming_the_file_and_writes_nothing(prefect_server, tmp_path):
    folder = shapes.save_folder(tmp_path / "shapes", 60, seed=6, size=8)
    (folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    store = tmp_path / "store"
    out = genai("prepare", "--source", "images", "--uri", str(folder), "--store",
                f"file://{store}", api_url=prefect_server, cwd=None)  # fmt: skip
    assert out.returncode == 2, out.stderr[-3000:]
    assert "circle/broken.png" in out.stderr and "not a readable image" in out.stderr
    written = [p for p in store.rglob("*") if p.is_file() and "mlflow" not in p.parts]
    assert written == []
