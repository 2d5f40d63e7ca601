"""A command costs what its work costs and says what it is doing: a finished job answers from the
store without Prefect or Ray; a pipeline's console is a few progress lines and the summary, with
Ray's, Prefect's and libraries' own lines in the log file it names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.flows.test_pipeline import tiny

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GENAI = str(Path(sys.executable).parent / "genai")

# what libraries print on their own: none of it belongs on the console
NOISE = re.compile(
    r"WARNING|INFO|DEBUG|Warning|warn\(|\(pid=|\(RayTrain|Traceback|torchmetrics|tensorboard"
    r"|Prefect|prefect\.|Task run|Flow run|ray\.|logging_progress|Dataset|╭|│"
)


def genai(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([GENAI, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)  # fmt: skip


def test_a_finished_train_answers_from_the_store_without_prefect_or_ray(tmp_path, prefect_server):
    store = f"file://{tmp_path}/store"
    args = ["train", "configs/gan.yaml", "--set", "train.epochs=1", "--set", "data.n=600",
            "--set", "train.num_workers=1", "--store", store, "--json"]  # fmt: skip
    first = genai(*args, env={"PREFECT_API_URL": prefect_server})
    assert first.returncode == 0, first.stderr[-3000:]
    # nothing listens at either address: touching Prefect or Ray would fail the command
    dead = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    start = time.monotonic()
    again = genai(*args, "--ray-address", "127.0.0.1:9", env=dead, timeout=60)
    seconds = time.monotonic() - start
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.splitlines()[-1]) == json.loads(first.stdout.splitlines()[-1])
    assert again.stderr == ""  # no log opened, no service named
    assert seconds < 5, seconds


def test_a_pipeline_console_is_progress_and_the_summary(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny(name="console").model_dump(mode="json")))
    proc = genai("run", str(config), "--store", f"file://{tmp_path}/store")
    assert proc.returncode == 0, proc.stderr[-3000:]
    progress = proc.stderr.splitlines()
    summary = proc.stdout.splitlines()
    assert summary[0].startswith("pipeline console-") and "  log       " in summary[-1]
    assert 5 <= len(progress) <= 40, progress
    noisy = [line for line in progress if NOISE.search(line)]
    assert noisy == [], noisy
    steps = {line.split()[0] for line in progress}
    assert {"log", "ray", "prefect", "prepare", "sweep", "train", "evaluate", "generate"} <= steps
    assert any(re.search(r"trials done .* best mmd2", line) for line in progress)
    log = Path(progress[0].split(None, 1)[1])
    assert log.exists() and log == Path(summary[-1].split()[-1])
    text = log.read_text()
    assert "prefect.flow_runs" in text and "Beginning flow run" in text  # Prefect, here
    assert text.count("\n") > len(progress)  # and more besides
