"""The evaluate and generate flows publish Prefect artifacts; the CLI commands behave."""

from __future__ import annotations

import json

import pytest
from prefect.artifacts import Artifact

from genai.config import EvaluateConfig, GenerateConfig
from genai.storage import ArtifactStore
from tests.flows.test_prepare_flow import genai
from tests.genai.evaluate.test_evaluate_generate import fitted_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]


@pytest.fixture(scope="module")
def ring_store(tmp_path_factory):
    store = ArtifactStore(f"file://{tmp_path_factory.mktemp('flows')}/store")
    fitted_run(
        store,
        "ring-gan",
        {"source": "ring8", "n": 2000},
        {"model.family": "gan", "train.epochs": 20},
    )
    return store


def test_evaluate_flow_publishes_metrics_beside_floors(prefect_server, ring_store):
    from flows.evaluate import evaluate_flow

    result = evaluate_flow(
        run_id="ring-gan", evaluate=EvaluateConfig(n_samples=1000), store=ring_store.uri
    )
    assert list(result["metrics"]) == [  # a 2-D mixture: VEEGAN/PacGAN's, then its own space's
        "modes", "high_quality", "reverse_kl", "mmd2", "precision", "recall", "density", "coverage",
    ]  # fmt: skip
    artifact = Artifact.get("evaluation-ring-gan")
    assert artifact is not None and artifact.type == "table"
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert {r["metric"] for r in rows} == set(result["metrics"])
    assert next(r for r in rows if r["metric"] == "modes")["floor"] == 8


def test_generate_flow_publishes_a_report_with_the_picture(prefect_server, ring_store):
    from flows.generate import generate_flow

    result = generate_flow(run_id="ring-gan", generate=GenerateConfig(n=200), store=ring_store.uri)
    assert result["n"] == 200 and "scatter" in result["files"]
    artifact = Artifact.get("samples-ring-gan")
    assert artifact is not None and artifact.type == "markdown"
    assert "data:image/png;base64," in artifact.data and "## scatter" in artifact.data


def test_cli_evaluate_and_generate_json(prefect_server, ring_store):
    proc = genai("evaluate", "ring-gan", "--n-samples", "500", "--store", ring_store.uri, "--json",
                 api_url=prefect_server, cwd=None)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["metrics"]["modes"] >= 0
    proc = genai("generate", "ring-gan", "--n", "10", "--store", ring_store.uri, "--json",
                 api_url=prefect_server, cwd=None)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["n"] == 10


def test_cli_unknown_run_is_one_message(prefect_server, ring_store):
    proc = genai(
        "evaluate", "no-such-run", "--store", ring_store.uri, api_url=prefect_server, cwd=None
    )
    assert proc.returncode == 2
    assert "no run 'no-such-run'" in proc.stderr and "ring-gan" in proc.stderr
    assert "Traceback" not in proc.stderr
