"""Deployments on real servers: `prefect server start` on 127.0.0.1 and `genai serve`, driven
through the REST API the Prefect UI uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from genai.storage import ArtifactStore
from tests.conftest import free_port
from tests.flows.test_pipeline import tiny

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 (its own database), stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(
            lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 120, "server start"
        )
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="module")
def served(prefect_api, tmp_path_factory):
    """`genai serve` registering and serving the four deployments; yields {name: deployment}."""
    store = tmp_path_factory.mktemp("served") / "store"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = open(store.parent / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai.cli", "serve", "--store", f"file://{store}"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def registered():
        found = httpx.post(f"{prefect_api}/deployments/filter", json={}, timeout=5).json()
        return {d["name"]: d for d in found} if len(found) >= 4 else None

    try:
        yield {"deployments": wait_for(registered, 120, "deployment registration"), "store": store}
    finally:
        stop(proc)
        log.close()


def test_four_deployments_and_the_nightly_schedule(prefect_api, served):
    deps = served["deployments"]
    assert set(deps) == {"nightly-pipeline", "pipeline", "sweep", "train"}
    schedules = deps["nightly-pipeline"]["schedules"]
    assert [s["schedule"]["cron"] for s in schedules] == ["0 3 * * *"]
    assert all(d["enforce_parameter_schema"] for d in deps.values())


def test_parameter_forms_are_typed(served):
    schema = served["deployments"]["pipeline"]["parameter_openapi_schema"]
    defs = schema.get("definitions") or schema.get("$defs")
    assert defs["ModelConfig"]["properties"]["family"]["enum"] == [
        "vae",
        "gan",
        "diffusion",
        "autoregressive",
    ]
    assert "ring8" in defs["DataConfig"]["properties"]["source"]["enum"]
    loss_names = {
        v["properties"]["name"].get("const") or v["properties"]["name"].get("enum", [None])[0]
        for k, v in defs.items()
        if "name" in v.get("properties", {})
    }
    assert {"mse", "hinge", "wasserstein"} <= loss_names


def test_a_run_launched_through_the_api_completes(prefect_api, served):
    dep = served["deployments"]["pipeline"]
    params = {"config": tiny(name="from-api").model_dump(mode="json")}
    created = httpx.post(
        f"{prefect_api}/deployments/{dep['id']}/create_flow_run",
        json={"parameters": params},
        timeout=10,
    )
    assert created.status_code in (200, 201), created.text
    run_id = created.json()["id"]

    def finished():
        state = httpx.get(f"{prefect_api}/flow_runs/{run_id}", timeout=5).json()["state"]
        return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    state = wait_for(finished, 400, "the pipeline run")
    assert state["type"] == "COMPLETED", state
    store = ArtifactStore(f"file://{served['store']}")
    summaries = [k for k in store.list("pipelines") if k.endswith("summary.json")]
    assert len(summaries) == 1 and "/from-api-" in summaries[0]


def test_invalid_parameters_are_rejected_before_a_run(prefect_api, served):
    dep = served["deployments"]["pipeline"]
    bad = {"config": {**tiny().model_dump(mode="json"), "model": {"family": "vea"}}}
    response = httpx.post(
        f"{prefect_api}/deployments/{dep['id']}/create_flow_run",
        json={"parameters": bad},
        timeout=10,
    )
    assert response.status_code in (409, 422), response.text
    assert "vea" in response.text
