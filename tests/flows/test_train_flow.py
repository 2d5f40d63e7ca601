"""`genai train` end to end: the train flow on Prefect's test server, --set overrides, --json, an
MLflow server that does not answer (one warning, the run trains); the same command again answers
from the store without Prefect or Ray."""

from __future__ import annotations

import json
import time

import pytest

from genai.storage import ArtifactStore
from tests.conftest import free_port
from tests.flows.test_prepare_flow import genai

pytestmark = pytest.mark.slow


def test_cli_train_with_overrides_json(prefect_server, tmp_path):
    store = f"file://{tmp_path}/store"
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens: MLflow is down
    proc = genai(
        "train",
        "configs/gan.yaml",
        "--set",
        "data.n=600",
        "--set",
        "train.epochs=2",
        "--set",
        "train.num_workers=1",
        "--set",
        "train.batch_size=64",
        "--store",
        store,
        "--json",
        api_url=prefect_server,
        cwd=None,
        env={"MLFLOW_TRACKING_URI": down},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    warned = [line for line in proc.stderr.splitlines() if line.startswith("tracking ")]
    assert warned == [f"tracking MLflow at {down}: no answer (ConnectionRefusedError: [Errno 111]"
                      " Connection refused); this job goes on untracked (its artifacts are in the"
                      " store as always)"], proc.stderr  # fmt: skip
    assert not (tmp_path / "store" / "mlflow").exists()
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"run_id", "uri", "epochs", "metrics"}
    assert result["epochs"] == 2 and result["run_id"].startswith("gan-")
    assert "discriminator/gradient_penalty" in result["metrics"]
    assert "epoch 2/2" in proc.stderr  # progress display
    config = ArtifactStore(store).read_json(f"runs/{result['run_id']}/config.json")["config"]
    assert config["data"]["n"] == 600 and config["train"]["batch_size"] == 64
    # the same command again answers from the store, touching neither Prefect nor Ray: nothing
    # listens at either address given, so touching them would fail it
    args = proc.args[3:]  # after python -m flows.cli
    start = time.monotonic()
    again = genai(*args, "--ray-address", "127.0.0.1:9", api_url="http://127.0.0.1:9/api", cwd=None)
    seconds = time.monotonic() - start
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result
    assert again.stderr == ""  # no log opened, no service named
    assert seconds < 5, seconds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "model.family=vea"], "model.family: 'vea' is not one of 'vae', 'gan'"),
        (["--set", "train.epochs"], "expected KEY=VALUE"),
        (
            ["--set", "data.source=moons", "--set", "model.arch.body=conv"],
            "'conv' needs image data",
        ),
    ],
)
def test_cli_train_bad_input_exits_2(prefect_server, tmp_path, args, message):
    proc = genai(
        "train",
        "configs/vae.yaml",
        *args,
        "--store",
        f"file://{tmp_path}/s",
        api_url=prefect_server,
        cwd=None,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
