"""The demo pipeline's wall time, per stage, and the share that is framework overhead.

Runs `genai run --json` (the default config, what `make run` runs) as a user does on a fresh
machine (fresh store, fresh processes, no shared Ray head or Prefect server running: a state
directory of its own, stopped with `genai down` at the end), then a second time (answered from
the store). Prefect's database stays where the user's Prefect keeps it (``~/.prefect``): only
the first run on a machine makes it (the untracked one below, when there is none yet).
Framework overhead is everything that is not training, scoring or evaluating: process and import
start-up, the Prefect server, Ray start-up, Ray Train worker start-up, Tune trial start-up. Each
is measured apart in the same run:

* process, imports, starting the shared Ray head and Prefect server: `genai run` wall time minus
  the stages' sum;
* of it, Ray start-up alone: `ensure_ray()` in a fresh process;
* sweep trial start-up: the sweep stage x 2 CPUs minus the time trials spent working, per trial;
* Ray Train start-up: the train stage minus the epochs' own time.

Beside it, in the same run and first, the same fresh-machine `genai run` with MLflow tracking
off (`GENAI_TRACKING=off`): what tracking to the default SQLite beside the store costs.

    .venv/bin/python bench/pipeline.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genai import layout
from genai.storage import ArtifactStore
from genai.train.runs import history_of

ROOT = Path(__file__).resolve().parents[1]


def genai_run(store: str, env: dict[str, str]) -> tuple[dict, float]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--store", store, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t


def ray_startup() -> float:
    code = (
        "import time; t = time.perf_counter(); from genai.cluster import ensure_ray; ensure_ray();"
        " print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def fresh_env(tmp: str, **extra: str) -> dict[str, str]:
    """A user's shell on a machine where genai never ran (a state directory of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GENAI_"))}
    return env | {"GENAI_STATE_DIR": f"{tmp}/home", "GENAI_LOG_DIR": f"{tmp}/home/logs", **extra}


def down(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "flows.cli", "down"], cwd=ROOT, env=env,
                   capture_output=True)  # fmt: skip


def untracked_run() -> tuple[float, dict[str, float]]:
    """The same fresh-machine `genai run` with tracking off: wall and stage seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"file://{tmp}/store"
        env = fresh_env(tmp, GENAI_TRACKING="off")
        try:
            result, wall = genai_run(uri, env)
        finally:
            down(env)
        assert not Path(tmp, "store", "mlflow").exists()
        summary = ArtifactStore(uri).read_json(result["summary_uri"].removeprefix(uri + "/"))
    return wall, summary["stage_seconds"]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    off_wall, off_stages = untracked_run()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"file://{tmp}/store"
        env = fresh_env(tmp)
        try:
            first, wall = genai_run(uri, env)
            _, rerun_wall = genai_run(uri, env)
        finally:
            down(env)
        assert Path(tmp, "store", "mlflow", "mlflow.db").is_file()  # tracked, by default
        store = ArtifactStore(uri)
        summary = store.read_json(first["summary_uri"].removeprefix(uri + "/"))
        stages = summary["stage_seconds"]
        trials = store.read_table(layout.sweep_trials(summary["sweep"]["sweep_id"])).to_pylist()
        run_id = summary["best_run"]["run_id"]
        history = history_of(store.read_table(layout.run_metrics(run_id)))
    ray_s = ray_startup()
    epochs_s = sum(h["epoch_s"] for h in history)
    trial_work = sum(t["wall_s"] or 0 for t in trials)
    overhead = {
        "process, imports, Ray head and Prefect server start": wall - sum(stages.values()),
        "sweep: trial start-up and scheduling": max(stages["sweep"] * 2 - trial_work, 0) / 2,
        "train: Ray Train start-up, reports, checkpoints": stages["train"] - epochs_s,
    }
    total_overhead = sum(overhead.values())
    print(
        f"demo pipeline: {wall:.1f}s end to end; re-run answered from the store: {rerun_wall:.1f}s"
    )
    print("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    for name, seconds in overhead.items():
        print(f"  overhead  {name:<52} {seconds:6.1f}s")
    print(f"  of which a Ray start-up alone (measured apart)       {ray_s:6.1f}s")
    print(
        f"framework overhead {total_overhead:.1f}s = {100 * total_overhead / wall:.0f}% of the run"
    )
    print(
        f"tracking off: {off_wall:.1f}s end to end ("
        + ", ".join(f"{k} {v:.1f}s" for k, v in off_stages.items())
        + f"); tracked / untracked = {wall / off_wall:.3f}"
    )
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "rerun_wall_s": round(rerun_wall, 2),
                "stages_s": stages,
                "overhead_s": {k: round(v, 2) for k, v in overhead.items()},
                "overhead_share": round(total_overhead / wall, 3),
                "ray_startup_s": round(ray_s, 2),
                "sweep_trials": len(trials),
                "train_epochs_s": round(epochs_s, 2),
                "untracked_wall_s": round(off_wall, 2),
                "untracked_stages_s": off_stages,
                "tracked_over_untracked": round(wall / off_wall, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
