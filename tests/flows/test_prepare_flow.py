"""The prepare-data flow on Prefect's test server, and the `genai prepare` command end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from genai.config import DataConfig
from genai.storage import ArtifactStore

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


def test_flow_prepares_then_is_a_no_op(prefect_server, tmp_path):
    from flows.prepare import prepare_data

    store = f"file://{tmp_path}/store"
    first = prepare_data(data=DataConfig(source="moons", n=400), store=store)
    assert first["created"] and sum(first["rows"].values()) == 400
    second = prepare_data(data=DataConfig(source="moons", n=400), store=store)
    assert second["version"] == first["version"] and not second["created"]


def test_flow_on_s3(prefect_server, bucket):
    from flows.prepare import prepare_data

    result = prepare_data(data=DataConfig(source="grid25", n=1000), store=f"s3://{bucket}/a")
    assert result["uri"].startswith(f"s3://{bucket}/a/datasets/grid25/")
    store = ArtifactStore(f"s3://{bucket}/a")
    assert store.exists(f"datasets/grid25/{result['version']}/manifest.json")


def test_flow_does_not_retry_bad_data(prefect_server, tmp_path):
    from flows.prepare import prepare_data
    from genai.data.sources import DataError

    with pytest.raises(DataError, match="does not exist"):
        prepare_data(
            data=DataConfig(source="parquet", uri=str(tmp_path / "x.parquet"), columns=("x",)),
            store=f"file://{tmp_path}/store",
        )


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def genai(*args: str, api_url: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the `genai` command against the test server (cwd None: the repository root)."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=300,
    )


def test_cli_prepare_json(prefect_server, tmp_path):
    """(The README's `genai prepare --source digits` runs in tests/test_readme.py.)"""
    store = f"file://{tmp_path}/store"
    proc = genai(
        "prepare",
        "--source",
        "moons",
        "--n",
        "1000",
        "--store",
        store,
        "--json",
        api_url=prefect_server,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"dataset", "version", "uri", "rows", "feature_net"}
    assert result["feature_net"] is None  # points: no feature network
    assert sum(result["rows"].values()) == 1000 and set(result["rows"]) == {"train", "val", "test"}
    assert ArtifactStore(store).exists(f"datasets/moons/{result['version']}/manifest.json")
    # the command leaves without the interpreter's teardown (flows.cli.leave), after Prefect's
    # log worker drained: the flow run's last line is on the server
    (run,) = rest(prefect_server, "/flow_runs/filter", {
        "flows": {"name": {"any_": ["prepare-data"]}}, "sort": "START_TIME_DESC", "limit": 1})  # fmt: skip
    logs = rest(prefect_server, "/logs/filter", {
        "logs": {"flow_run_id": {"any_": [run["id"]]}}, "sort": "TIMESTAMP_DESC", "limit": 1})  # fmt: skip
    assert run["state_type"] == "COMPLETED"
    assert logs[0]["message"] == "Finished in state Completed()"


def rest(api_url: str, path: str, body: dict) -> list[dict]:
    """POST a filter to the Prefect server's REST API."""
    request = urllib.request.Request(
        f"{api_url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "mnist"], "data.source: 'mnist' is not one of 'digits', 'photos', 'shapes'"),
        (["--source", "ring8", "--n", "-5"], "data.n: Input should be greater than 0"),
        (["--source", "digits", "--store", "gs://b/x"], "scheme 'gs' is not one of 'file', 's3'"),
    ],
)
def test_cli_bad_input_is_one_message_and_exit_2(prefect_server, tmp_path, args, message):
    if "--store" not in args:
        args = [*args, "--store", f"file://{tmp_path}/s"]
    proc = genai("prepare", *args, api_url=prefect_server, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()
