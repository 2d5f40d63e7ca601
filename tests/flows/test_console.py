"""A command costs what its work costs: a finished job answers from the store without Prefect or
Ray. (What the console of the default job shows is checked where the README's `genai run` runs,
tests/test_readme.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
