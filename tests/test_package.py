"""An installed genai works away from the checkout: the wheel built from this tree carries the
example configs, the search spaces, py.typed and the LICENSE; installed into a fresh virtual
environment and run from an empty directory with an empty HOME, `genai run` (the demo config,
shortened) and the Python API example of docs/python-api.md (as written, its store moved) finish,
starting and stopping their own Ray and Prefect server. The `genai run` tracks to a real `mlflow
server` on 127.0.0.1, and what it tracked is read back through MLflow's client.

The fresh environment takes the project's dependencies from this one through a .pth line (they
are not on this machine's index as a set, and installing them again is not what is under test):
only the wheel is installed into it, so ``genai`` and ``flows`` come from the wheel alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of the working tree as git sees it (tracked and new files, not ignored ones)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    src = tmp_path / "src"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("genai_pipelines-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def user_env(home: Path) -> dict[str, str]:
    """A user's shell on a machine where genai never ran: nothing of this session's services."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GENAI_", "RAY_"))}
    drop = ("XDG_CACHE_HOME", "VIRTUAL_ENV", "PYTHONPATH", "AWS_ENDPOINT_URL")
    return {**{k: v for k, v in keep.items() if k not in drop}, "HOME": str(home)}


def test_the_wheel_carries_configs_spaces_types_and_license(tmp_path):
    names = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    shipped = {f"genai/{p.relative_to(ROOT)}" for d in ("configs", "tune_spaces")
               for p in (ROOT / d).rglob("*.yaml")}  # fmt: skip
    assert len(shipped) > 10 and shipped <= names, sorted(shipped - names)
    assert "genai/py.typed" in names and "flows/api.py" in names
    modules = {
        str(p.relative_to(ROOT)) for d in ("genai", "flows") for p in (ROOT / d).rglob("*.py")
    }
    assert modules <= names, sorted(modules - names)  # every package is listed in pyproject
    assert any(re.search(r"\.dist-info/licenses/LICENSE$", n) for n in names), sorted(names)
    assert not any(n.startswith(("tests/", "bench/", "configs/")) for n in names)


def tracked_runs(url: str) -> dict[str, list]:
    """The MLflow runs of experiment ``genai`` at ``url``, by their ``genai.kind`` tag."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("genai")
    runs: dict[str, list] = {}
    for run in client.search_runs([experiment.experiment_id]):
        runs.setdefault(run.data.tags.get("genai.kind"), []).append(run)
    return runs


def check_tracked_pipeline(url: str, summary: dict, tmp_path: Path) -> None:
    """The pipeline is the parent of its sweep and its retrained run, the sweep of its trials;
    metrics per epoch, params and artifacts read back through the MLflow client."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(url)
    runs = tracked_runs(url)
    assert sorted(runs) == ["pipeline", "run", "sweep", "trial"], sorted(runs)
    (pipeline,), (sweep,), (run,) = runs["pipeline"], runs["sweep"], runs["run"]
    assert pipeline.info.run_name == summary["pipeline_id"] and pipeline.info.status == "FINISHED"
    assert pipeline.data.metrics["fid"] == pytest.approx(summary["metrics"]["fid"])
    assert pipeline.data.params["sweep.trials"] == "2"
    assert sweep.data.tags["mlflow.parentRunId"] == pipeline.info.run_id
    assert sweep.info.run_name == summary["sweep"]["sweep_id"]
    assert run.data.tags["mlflow.parentRunId"] == pipeline.info.run_id
    assert run.info.run_name == summary["best_run"]["run_id"]
    trials = runs["trial"]
    assert len(trials) == 2
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {sweep.info.run_id}
    steps = sorted(  # a point per judged epoch (train.epochs=2); ASHA may stop one after one
        [m.step for m in client.get_metric_history(t.info.run_id, "fid")] for t in trials
    )
    counts = summary["sweep"]["counts"]
    assert steps == [[0]] * counts["stopped"] + [[0, 1]] * counts["finished"], (steps, counts)
    assert all("loss.kl.weight" in t.data.params for t in trials)
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1]  # retrain_epochs=2, logged by the driver
    assert run.data.metrics["eval/fid"] == pytest.approx(summary["metrics"]["fid"])
    assert run.data.params["model.family"] == "vae"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    files |= {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"loss_curves.png", "config.json", "samples/grid.png", "samples/loss_curve.png"} <= files
    grid = download_artifacts(run_id=run.info.run_id, artifact_path="samples/grid.png",
                              dst_path=str(tmp_path / "grid"), tracking_uri=url)  # fmt: skip
    assert Path(grid).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {a.path for a in client.list_artifacts(sweep.info.run_id)} >= {"plot.png", "best.json"}
    saved = download_artifacts(run_id=pipeline.info.run_id, artifact_path="summary.json",
                               dst_path=str(tmp_path / "summary"), tracking_uri=url)  # fmt: skip
    assert json.loads(Path(saved).read_text())["pipeline_id"] == summary["pipeline_id"]


def test_installed_genai_runs_the_demo_and_the_api_example_from_anywhere(tmp_path, mlflow_server):
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = user_env(home)
    genai = str(venv / "bin" / "genai")

    where = subprocess.run([venv / "bin" / "python", "-c", "import genai, flows; print(genai.__file__, flows.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert all(f.startswith(str(venv)) for f in where.stdout.split()), where.stdout
    try:
        store = f"file://{tmp_path}/store"
        short = ["--set", "sweep.trials=2", "--set", "train.epochs=2", "--set", "retrain_epochs=2",
                 "--set", "retrain_workers=1", "--set", "evaluate.n_samples=200"]  # fmt: skip
        proc = subprocess.run([genai, "run", *short, "--store", store, "--json"], cwd=elsewhere,
                              env={**env, "MLFLOW_TRACKING_URI": mlflow_server},
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-5000:]
        summary = json.loads(proc.stdout.splitlines()[-1])
        assert summary["pipeline_id"].startswith("demo-") and summary["metrics"]["fid"] > 0
        assert summary["sweep"]["sweep_id"].startswith("vae_loss_weights-")  # the shipped space
        assert (home / ".cache" / "genai").is_dir()  # its services' state, in this HOME
        check_tracked_pipeline(mlflow_server, summary, tmp_path)
        assert not (tmp_path / "store" / "mlflow").exists()  # tracked to the server only

        text = (ROOT / "docs" / "python-api.md").read_text()
        (example,) = re.findall(r"```python\n(.*?)```", text, re.S)
        assert example.count("file:///tmp/genai-notebook") == 1
        example = example.replace("file:///tmp/genai-notebook", f"file://{tmp_path}/notebook")
        ran = subprocess.run([venv / "bin" / "python", "-c", example], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert ran.returncode == 0, ran.stderr[-5000:]
        lines = ran.stdout.splitlines()
        assert lines[0].startswith("ring8 ") and re.match(r"gan-\w+ 3 epochs$", lines[1]), lines
        assert any(line.startswith("high_quality") for line in lines), lines
        assert (tmp_path / "notebook" / "samples").is_dir()
    finally:
        down = subprocess.run([genai, "down"], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
    assert down.returncode == 0 and down.stdout.strip() == "stopped ray, prefect", down
