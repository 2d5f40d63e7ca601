"""Deployments on real servers: `prefect server start` on 127.0.0.1 and `genai serve`, driven
through the REST API the Prefect UI uses."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml

from flows.pipeline import pipeline_flow
from genai.pipeline import demo_config, pipeline_id_for
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


def api(method: str, url: str, **kwargs) -> httpx.Response:
    """One REST call, retried like Prefect's own client does on 429/502/503: the server answers 503
    for errors it calls retryable (SQLite busy while the served runner writes at the same time)."""
    for attempt in range(8):
        response = httpx.request(method, url, timeout=10, **kwargs)
        if response.status_code not in (429, 502, 503):
            return response
        time.sleep(min(0.25 * 2**attempt, 5))
    return response


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
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # a queued run (deployment concurrency limit) is proposed again after this long (default 30)
    env["PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"] = "2"
    env["PREFECT_UI_API_URL"] = url  # the UI's own calls go to this server, not :4200
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
    config = store.parent / "tiny.yaml"  # the pipeline form starts from a config that runs fast
    config.write_text(yaml.safe_dump(tiny(name="ui").model_dump(mode="json")))
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = open(store.parent / "serve.log", "w")  # noqa: SIM115 - closed below
    command = ["serve", "--store", f"file://{store}", "--config", str(config)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *command],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def registered():
        found = api("POST", f"{prefect_api}/deployments/filter", json={}).json()
        return {d["name"]: d for d in found} if len(found) >= 5 else None

    try:
        yield {"deployments": wait_for(registered, 120, "deployment registration"), "store": store}
    finally:
        stop(proc)
        log.close()


def test_the_pipeline_flow_defaults_to_the_demo():
    """prefect.yaml's pipeline deployments pass no config: a launch as the form opens runs the
    flow's default, the demo as it ships (in a checkout, the file `genai run` reads)."""
    default = inspect.signature(pipeline_flow.fn).parameters["config"].default
    assert default == demo_config()
    assert pipeline_id_for(default) == pipeline_id_for(demo_config(as_shipped=True))
    assert default.name == "demo" and default.retrain_workers == 2


def test_five_deployments_and_the_nightly_schedule(prefect_api, served):
    deps = served["deployments"]
    assert set(deps) == {"nightly-pipeline", "pipeline", "sweep", "train", "compare"}
    schedules = deps["nightly-pipeline"]["schedules"]
    assert [s["schedule"]["cron"] for s in schedules] == ["0 3 * * *"]
    assert all(d["enforce_parameter_schema"] for d in deps.values())


def test_parameter_forms_are_typed(served):
    schema = served["deployments"]["pipeline"]["parameter_openapi_schema"]
    defs = schema.get("definitions") or schema.get("$defs")
    model = defs["PipelineConfig"]["properties"]["model"]["properties"]  # one form, a dropdown
    assert model["family"]["enum"] == ["vae", "gan", "diffusion", "autoregressive"]
    assert model["diffusion"]["description"].startswith("options of the diffusion family")
    assert "ring8" in defs["DataConfig"]["properties"]["source"]["enum"]
    slots = defs["LossSlots"]["properties"]
    assert slots["adversarial"]["anyOf"][0]["properties"]["name"]["enum"] == [
        "minimax", "non_saturating", "hinge", "least_squares", "wasserstein"
    ]  # fmt: skip
    assert slots["noise"]["anyOf"][0]["properties"]["name"]["enum"] == ["mse", "mae", "huber"]
    penalty = slots["gradient_penalty"]["anyOf"][0]["properties"]
    assert penalty["name"]["enum"] == ["gradient_penalty", "r1"]
    # the two penalties' weights mean different things: no one default preselected for both
    assert "default" not in penalty["weight"]["anyOf"][0]
    assert penalty["weight"]["description"] == (
        "gradient_penalty: lambda of WGAN-GP, default 10.0; r1: gamma / 2 of the R1 penalty,"
        " default 1.0 (empty: the loss's default)"
    )


def test_three_launches_at_once_queue_and_all_complete(prefect_api, served):
    """A burst through the REST API (a single launch is the first of them: no test of its own):
    the pipeline deployment runs one at a time (limit 1, ENQUEUE), the rest wait in
    AwaitingConcurrencySlot; all complete one after another (no two overlap), none crash, and the
    work is done once (the later runs find the summary in the store)."""
    dep = served["deployments"]["pipeline"]
    assert dep["global_concurrency_limit"]["limit"] == 1
    assert dep["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    params = {"config": tiny(name="burst").model_dump(mode="json")}
    url = f"{prefect_api}/deployments/{dep['id']}/create_flow_run"
    with ThreadPoolExecutor(3) as pool:
        created = list(pool.map(lambda _: api("POST", url, json={"parameters": params}), range(3)))
    assert all(r.status_code in (200, 201) for r in created), [r.text for r in created]
    ids = [r.json()["id"] for r in sorted(created, key=lambda r: r.json()["created"])]

    def runs():
        return [api("GET", f"{prefect_api}/flow_runs/{i}").json() for i in ids]

    def all_finished():
        done = runs()
        terminal = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        return done if all(r["state"]["type"] in terminal for r in done) else None

    finished = wait_for(all_finished, 600, "three queued pipeline runs")
    assert [r["state"]["type"] for r in finished] == ["COMPLETED"] * 3, finished
    spans = sorted((r["start_time"], r["end_time"]) for r in finished)
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False)), spans
    # some run queued rather than clashed; which one depends on when the runner's poll saw the
    # burst (a run picked up after the others finished finds the slot free: CI saw that once)
    queued = [
        {
            s["name"]
            for s in api("GET", f"{prefect_api}/flow_run_states/", params={"flow_run_id": i}).json()
        }
        for i in ids
    ]
    assert any("AwaitingConcurrencySlot" in names for names in queued), queued
    store = ArtifactStore(f"file://{served['store']}")
    (summary,) = [k for k in store.list("pipelines") if "/burst-" in k]
    run_id = store.read_json(summary)["best_run"]["run_id"]
    table = store.read_table(f"runs/{run_id}/metrics.parquet").to_pydict()
    epochs = [e for e, t in zip(table["epoch"], table["term"], strict=True) if t == "epoch_s"]
    assert sorted(epochs) == list(range(len(epochs)))  # each epoch once
    written = Path(served["store"], summary).stat().st_mtime
    first_end = datetime.fromisoformat(spans[0][1]).timestamp()
    assert written <= first_end + 1  # the summary was written by the first run only


def test_invalid_parameters_are_rejected_before_a_run(prefect_api, served):
    dep = served["deployments"]["pipeline"]
    bad = {"config": {**tiny().model_dump(mode="json"), "model": {"family": "vea"}}}
    response = api(
        "POST", f"{prefect_api}/deployments/{dep['id']}/create_flow_run", json={"parameters": bad}
    )
    assert response.status_code in (409, 422), response.text
    assert "vea" in response.text


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def form_field(page, label: str):
    """The innermost form property whose label is ``label`` (in ``page`` or a form property)."""
    return page.locator(
        f"xpath=.//span[contains(@class,'schema-form-property__label') and normalize-space()='{label}']"
        "/ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')][1]"
    )


def choose(page, label: str, value: str, within: str | None = None) -> list[str]:
    """Open the dropdown of ``label`` (inside the property ``within``), read its options, pick
    ``value``."""
    field = form_field(form_field(page, within) if within else page, label)
    control = field.locator(".p-select-button__control").first
    control.click()
    control.press("ArrowDown")  # the click focuses the select; a key opens its list
    options = page.get_by_role("option")
    options.first.wait_for()
    names = [options.nth(i).inner_text().strip() for i in range(options.count())]
    page.get_by_role("option", name=value, exact=True).click()
    from playwright.sync_api import expect

    expect(field.locator(".p-select-button__value").first).to_have_text(value)  # retries
    return names


def test_launch_from_the_ui_with_a_typed_form(prefect_api, served, tmp_path):
    from playwright.sync_api import sync_playwright

    ui = prefect_api.removesuffix("/api")
    dep = served["deployments"]["pipeline"]
    before = {r["id"] for r in api("POST", f"{prefect_api}/flow_runs/filter", json={}).json()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{ui}/deployments/deployment/{dep['id']}/run", wait_until="networkidle")
        form_field(page, "Source (Optional)").wait_for()
        sources = choose(page, "Source (Optional)", "grid25")  # a non-default dataset
        assert sources == [
            "digits",
            "photos",
            "shapes",
            "ring8",
            "grid25",
            "moons",
            "swissroll",
            "parquet",
            "csv",
            "npy",
            "images",
        ]
        families = choose(page, "Family (Optional)", "gan")
        assert families == ["vae", "gan", "diffusion", "autoregressive"]
        losses = choose(page, "Name", "hinge", within="Adversarial (Optional)")
        assert losses == ["minimax", "non_saturating", "hinge", "least_squares", "wasserstein"]
        trials = form_field(page, "Trials (Optional)").locator("input[type=number]").first
        trials.fill("2")  # a typed number field
        page.screenshot(path=str(tmp_path / "pipeline-custom-run.png"), full_page=True)
        form_field(page, "Adversarial (Optional)").screenshot(path=str(tmp_path / "loss-slot.png"))
        page.get_by_role("button", name="Submit").click()
        page.wait_for_url(lambda url: not url.endswith("/run"), timeout=30_000)  # form submitted
        page.screenshot(path=str(tmp_path / "pipeline-flow-run.png"))
        browser.close()
    print(f"screenshots: {tmp_path}")
    runs = api("POST", f"{prefect_api}/flow_runs/filter", json={}).json()
    (run,) = [r for r in runs if r["id"] not in before]
    assert run["parameters"]["config"]["data"]["source"] == "grid25"
    assert run["parameters"]["config"]["sweep"]["trials"] == 2
    assert run["parameters"]["config"]["loss"]["adversarial"]["name"] == "hinge"

    def finished():
        state = api("GET", f"{prefect_api}/flow_runs/{run['id']}").json()["state"]
        return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    assert wait_for(finished, 400, "the UI-launched run")["type"] == "COMPLETED"
    store = ArtifactStore(f"file://{served['store']}")
    summaries = [store.read_json(k) for k in store.list("pipelines") if k.endswith("summary.json")]
    (summary,) = [s for s in summaries if s["dataset"]["dataset"] == "grid25"]
    assert summary["sweep"]["trials"] == 2
