"""What a user runs is what the tests run: every `genai ...` line in README.md's code blocks runs
here as written, with only a temporary `--store` added, in a fresh process, as a user types it.

The README's sweep is the digits sweep of 6 in-process trials (FID, ASHA) and its `genai run` is
the default job, unmodified; both are checked beyond their exit status. Adding a command to the
README without adding it here fails `test_the_readme_shows_exactly_the_commands_run_here`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from genai.config import PipelineConfig
from genai.pipeline import pipeline_id_for
from genai.storage import ArtifactStore
from tests.flows.test_deployments import stop

ROOT = Path(__file__).resolve().parents[1]
# what libraries print on their own: none of it belongs on the console
NOISE = re.compile(
    r"WARNING|INFO|DEBUG|Warning|warn\(|\(pid=|\(RayTrain|Traceback|torchmetrics|tensorboard"
    r"|Prefect|prefect\.|Task run|Flow run|ray\.|logging_progress|Dataset|╭|│"
)
GENAI = str(Path(sys.executable).parent / "genai")

COMMANDS = [
    "genai prepare --source digits",
    "genai train configs/vae.yaml --set train.run_id=my-vae --set train.epochs=20",
    "genai evaluate my-vae",
    "genai generate my-vae --n 64",
    "genai sweep configs/vae.yaml --space tune_spaces/vae_loss_weights.yaml --trials 6 --set train.epochs=5 --set train.num_workers=1",
    "genai compare --source digits --seeds 2 --budget 300",
    "genai run",
    "genai run --json",
    "genai down",
    "genai serve",
]


# opens the tracking the commands above wrote beside the default store (`artifacts`)
MLFLOW = "mlflow server --backend-store-uri sqlite:///artifacts/mlflow/mlflow.db --host 127.0.0.1 --port 5000"


def readme_commands(program: str = "genai") -> list[str]:
    """Every line of a fenced code block of README.md that runs ``program``."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [
        ln.strip() for b in blocks for ln in b.splitlines() if ln.strip().startswith(f"{program} ")
    ]


def test_the_readme_shows_exactly_the_commands_run_here():
    assert readme_commands() == COMMANDS
    assert readme_commands("mlflow") == [MLFLOW]


def tracked_by_mlflow_server(store: Path) -> dict[str, list]:
    """Run README's `mlflow server` line on the store the commands used (the store's path for
    `artifacts`, a free port for 5000); the MLflow runs it serves, by their genai.kind tag."""
    from mlflow import MlflowClient

    from tests.conftest import free_port

    port = free_port()
    command = MLFLOW.replace("sqlite:///artifacts/", f"sqlite:///{store}/").replace(
        "5000", str(port)
    )
    argv = [str(Path(sys.executable).with_name("mlflow")), *shlex.split(command)[1:]]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "mlflow server died"
            time.sleep(0.5)
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("genai")
        runs: dict[str, list] = {}
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            runs.setdefault(run.data.tags["genai.kind"], []).append(run)
        history = {r.info.run_name: len(client.get_metric_history(r.info.run_id, "val_loss"))
                   for r in runs.get("run", [])}  # fmt: skip
        return {**runs, "val_loss_points": history}
    finally:
        stop(server)


def user_env() -> dict[str, str]:
    """A user's shell: no Prefect server configured (each command starts its temporary one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def run(command: str, store: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    argv = [GENAI, *shlex.split(command)[1:]]
    if command != "genai down":  # the one command that touches no store
        argv += ["--store", store]
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=user_env(), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    seconds = time.monotonic() - start
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc, seconds


def serve_launches(command: str, store: str, api_url: str, log: Path) -> tuple[list[str], dict]:
    """Start `genai serve` against a real Prefect server, wait for its deployments, launch
    `pipeline` with the form's defaults (no parameters given) and wait for that flow run; stop
    the server. Its output goes to ``log`` (a pipe nobody reads could fill and stall it).
    (the deployments' names, the finished flow run)"""
    argv = [GENAI, *shlex.split(command)[1:], "--store", store]
    env = {**user_env(), "PREFECT_API_URL": api_url}
    out = log.open("w")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                found = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=5).json()
            except httpx.HTTPError:
                found = []
            names = sorted(d["name"] for d in found)
            if len(names) >= 5:
                break
            time.sleep(1)
        else:
            pytest.fail("genai serve registered no deployments within 120 s")
        (dep,) = [d for d in found if d["name"] == "pipeline"]
        launched = httpx.post(f"{api_url}/deployments/{dep['id']}/create_flow_run", json={},
                              timeout=10)  # fmt: skip
        assert launched.status_code in (200, 201), launched.text
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            flow_run = httpx.get(f"{api_url}/flow_runs/{launched.json()['id']}", timeout=10).json()
            if flow_run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return names, flow_run
            time.sleep(1)
        pytest.fail(
            f"the launch with the form's defaults did not end in 300 s: {log.read_text()[-3000:]}"
        )
    finally:
        stop(proc)
        out.close()


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, prefect_server):
    uri = f"file://{tmp_path}/store"
    store = ArtifactStore(uri)
    seconds = {}
    first_run: dict = {}  # `genai run`'s summary
    for command in COMMANDS:
        if command.startswith("genai serve"):  # after `genai run`: the store holds the demo
            names, flow_run = serve_launches(command, uri, prefect_server, tmp_path / "serve.log")
            assert {"nightly-pipeline", "pipeline", "sweep", "train", "compare"} <= set(names)
            assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
            # the form's defaults are the demo: the same pipeline id as `genai run`'s, answered
            # from the store (no second pipeline in it)
            launched = PipelineConfig.model_validate(flow_run["parameters"]["config"])
            assert pipeline_id_for(launched) == first_run["pipeline_id"]
            assert len([k for k in store.list("pipelines") if k.endswith("summary.json")]) == 1
            continue
        proc, seconds[command] = run(command, uri, timeout=600)
        out = proc.stdout
        if command.startswith("genai prepare"):
            assert "prepared digits version" in out
        elif command.startswith("genai train"):
            result = store.read_json("runs/my-vae/result.json")
            assert result["epochs"] == 20
            assert store.read_json("runs/my-vae/config.json")["config"]["train"]["num_workers"] == 2
        elif command.startswith("genai evaluate"):
            metrics = store.read_table("evaluations/my-vae/metrics.parquet").to_pylist()
            assert {"fid", "kid", "precision", "recall"} <= {m["metric"] for m in metrics}
            assert "fid" in out and "floor" in out
        elif command.startswith("genai generate"):
            assert store.read_table("samples/my-vae/samples.parquet").num_rows == 64
            assert store.exists("samples/my-vae/grid.png")
        elif command.startswith("genai sweep"):  # the digits sweep of 6 in-process trials
            (best,) = [k for k in store.list("sweeps") if k.endswith("/best.json")]
            rows = store.read_table(best.replace("best.json", "trials.parquet")).to_pylist()
            assert len(rows) == 6 and all(r["workers"] == 1 for r in rows), rows
            assert all(r["status"] != "failed" for r in rows), rows
            assert any(r["status"] == "stopped" for r in rows), "ASHA stopped none"
            assert all(r["fid"] > 0 for r in rows) and store.read_json(best)["metric"] == "fid"
            assert len({r["trial_id"] for r in rows}) == 6
            assert all(len(r["score_by_epoch"]) == r["epochs"] for r in rows)
            chosen = store.read_json(best)
            assert chosen["score"] == min(r["score"] for r in rows)
            assert (
                chosen["config"]["loss"]["reconstruction"]["name"]
                == chosen["params"]["loss.reconstruction.name"]
            )
            assert store.exists(best.replace("best.json", "plot.png"))
        elif command.startswith("genai compare"):  # 13 cells x 2 seeds on the digits
            (key,) = [k for k in store.list("comparisons") if k.endswith("summary.json")]
            compared = store.read_json(key)
            cells = store.read_table(key.replace("summary.json", "cells.parquet")).to_pylist()
            assert len(cells) == 26 and compared["counts"]["trained"] == 26
            assert {c["family"] for c in cells} == {"vae", "gan", "diffusion", "autoregressive"}
            assert all(c["steps"] >= 300 and c["fid"] > c["floor_fid"] > 0 for c in cells)
            board = compared["leaderboard"]
            assert len(board) == 13 and board[0]["verdict"] == "best"
            assert all(b["verdict"] in ("indistinguishable", "worse") for b in board[1:])
            lines = proc.stderr.splitlines()
            done = [ln for ln in lines if re.match(r"compare\s+\d+/26 \S+ seed \d", ln)]
            assert len(done) == 26, proc.stderr  # a line per finished model
            assert [ln for ln in lines if NOISE.search(ln)] == [], proc.stderr
            assert out.strip().splitlines()[-1] == compared["verdict"]  # the verdict, last
            assert "weak verdict: 2 seeds" in out
            for name in ("samples.png", "metrics.png", "quality.png", "report.md"):
                assert store.exists(key.replace("summary.json", name))
        elif command == "genai run":  # the default job, unmodified
            assert re.search(r"^pipeline demo-\w+", out, re.M), out
            assert re.search(r"^\s+fid\s+[\d.]+\s+[\d.]+$", out, re.M), out  # value and floor
            assert "6 trials" in out and "(40 epochs)" in out
            # the console: progress lines on stderr, at most 40, none of a library's own; the
            # summary on stdout; Ray's, Prefect's and the rest in the log file named first and last
            console = proc.stderr.splitlines()
            assert 10 <= len(console) <= 40, proc.stderr
            assert [line for line in console if NOISE.search(line)] == [], proc.stderr
            steps = {line.split()[0] for line in console}
            assert {"log", "ray", "prefect", "pipeline", "sweep", "train", "evaluate"} <= steps
            assert re.search(r"^sweep .*trials done .* best fid", proc.stderr, re.M)
            assert re.search(r"^train .* epoch 40/40 ", proc.stderr, re.M)
            log = Path(console[0].split(None, 1)[1])
            assert console[0].startswith("log ") and log == Path(out.splitlines()[-1].split()[-1])
            text = log.read_text()
            assert "prefect.flow_runs" in text and "Beginning flow run" in text
            assert re.search(r"genai.detail: train .* epoch 39/40 ", text)  # not shown, kept
            (summary,) = [k for k in store.list("pipelines") if k.endswith("summary.json")]
            saved = store.read_json(summary)
            assert saved["metrics"]["fid"] > saved["floors"]["fid"] > 0
            first_run = saved
        elif command == "genai run --json":  # the same job again: answered from the store
            again = json.loads(out.strip().splitlines()[-1])
            assert again["pipeline_id"] == first_run["pipeline_id"]
            assert again["metrics"] == first_run["metrics"]
            assert seconds[command] < 10 and proc.stderr == ""  # no Prefect, no Ray
        elif command == "genai down":  # the shared Ray and Prefect server the commands started
            assert out.strip() == "stopped ray, prefect"
    # what the commands tracked in MLflow beside the store, through README's `mlflow server`
    tracked = tracked_by_mlflow_server(tmp_path / "store")
    assert tracked["val_loss_points"]["my-vae"] == 20  # an epoch each
    (pipeline,) = tracked["pipeline"]
    assert pipeline.info.run_name == first_run["pipeline_id"]
    assert pipeline.data.metrics["fid"] == pytest.approx(first_run["metrics"]["fid"])
    sweeps = {s.info.run_name: s for s in tracked["sweep"]}
    assert len(sweeps) == 2 and len(tracked["trial"]) == 12  # README's sweep and the demo's
    demo_sweep = sweeps[first_run["sweep"]["sweep_id"]]
    assert demo_sweep.data.tags["mlflow.parentRunId"] == pipeline.info.run_id
    assert sum(t.data.tags["mlflow.parentRunId"] == demo_sweep.info.run_id
               for t in tracked["trial"]) == 6  # fmt: skip
    assert tracked["val_loss_points"][first_run["best_run"]["run_id"]] == 40
    (comparison,) = tracked["comparison"]
    assert len(tracked["comparison-cell"]) == 13
    assert {c.data.tags["mlflow.parentRunId"] for c in tracked["comparison-cell"]} == {
        comparison.info.run_id
    }
    print("seconds per command:", json.dumps(seconds, indent=1))
