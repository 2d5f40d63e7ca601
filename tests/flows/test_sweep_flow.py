"""`genai sweep` end to end: the sweep flow, its leaderboard artifact, --json, bad spaces."""

from __future__ import annotations

import json
import time

import pytest
from prefect.artifacts import Artifact

from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from tests.flows.test_prepare_flow import genai

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


def test_sweep_flow_publishes_a_leaderboard(prefect_server, tmp_path):
    from flows.sweep import sweep_flow

    base = load_config(RunConfig, data={"data.source": "moons", "data.n": 600, "train.epochs": 2})
    (tmp_path / "s.yaml").write_text(
        "loss.kl.weight: {loguniform: [0.1, 10]}\nmodel.arch.width: {choice: [16, 32]}\n"
    )
    cfg = SweepConfig(space=str(tmp_path / "s.yaml"), trials=3)
    result = sweep_flow(run=base, sweep=cfg, store=f"file://{tmp_path}/store")
    assert result["trials"] == 3 and result["best"]["metric"] == "mmd2"
    artifact = Artifact.get(f"sweep-{result['sweep_id']}".lower())
    assert artifact is not None and artifact.type == "table"
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert len(rows) == 3 and rows[0]["score"] == result["best"]["score"]  # ranked best first


def test_cli_sweep_json(prefect_server, tmp_path):
    space = tmp_path / "s.yaml"
    space.write_text("loss.adversarial.name: {choice: [hinge, least_squares]}\n")
    proc = genai(
        "sweep", "configs/gan.yaml", "--space", str(space), "--trials", "2",
        "--set", "data.n=600", "--set", "train.epochs=2", "--store", f"file://{tmp_path}/store", "--json",
        api_url=prefect_server, cwd=None,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == {"sweep_id", "uri", "trials", "best"} and out["trials"] == 2
    assert "sweep    2/2 trials done" in proc.stderr  # live progress


def test_cli_bad_space_fails_before_anything_starts(prefect_server, tmp_path):
    space = tmp_path / "bad.yaml"
    space.write_text("model.arch.widht: {choice: [8]}\n")
    start = time.monotonic()
    proc = genai(
        "sweep",
        "configs/vae.yaml",
        "--space",
        str(space),
        "--store",
        f"file://{tmp_path}/s",
        api_url=prefect_server,
        cwd=None,
    )
    assert proc.returncode == 2
    assert (
        "model.arch.widht: unknown field 'widht'" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert time.monotonic() - start < 30  # the interpreter and imports, no Ray, no flow
    assert not (tmp_path / "s").exists()
