"""Where a command's time goes: cold (nothing running), warm (the shared Ray and Prefect server
up) and a re-run of a finished job, side by side in one run.

    .venv/bin/python bench/startup.py [--repeats 2] [--warm 3]

Each case runs `genai train configs/vae.yaml --set train.epochs=2` in a fresh process, as a user
types it, in a GENAI_STATE_DIR of its own (so "cold" means no Ray head, no Prefect server, no
Prefect database yet). The work is what the command is for: the training epochs (their epoch_s) and,
cold, writing the dataset (its own line); everything else is fixed overhead, broken down from the
timestamps of the progress lines in the command's log:

* start: process start and imports until the first progress line (the log's path);
* services: the Ray head and the Prefect server (started, or found and joined), and the
  command's flow module imported meanwhile;
* flow to data: Prefect's flow and task set-up, the dataset read or prepared;
* train start-up: Ray Train's controller and worker group, until the first epoch's line;
* per-epoch and finish: reports, checkpoints, the result, Prefect's final states.

Before each warm command, issue 27's yardstick: a bare 2-worker TorchTrainer timed as a fresh
process (interpreter, imports, joining the warm Ray, the fit). Also Ray Train's own floor on the
warm Ray (a bare TorchTrainer: 1 and 2 workers, a gloo group, one report, no model, no data,
timed around fit() alone), the re-runs of a finished `genai train`, `genai sweep` and
`genai run` (answered from the store) and `python -c "import flows.cli"` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENAI = str(Path(sys.executable).parent / "genai")
TRAIN = ["train", "configs/vae.yaml", "--set", "train.epochs=2"]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO genai\.progress: (\S+)\s+(.*)$")


def genai(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    proc = subprocess.run([GENAI, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"genai {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc, seconds


def progress(log: Path) -> list[tuple[float, str, str]]:
    """(unix time, step, message) of every progress line in a command's log."""
    out = []
    for line in log.read_text().splitlines():
        m = STAMP.match(line)
        if m:
            when = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, m.group(2), m.group(3)))
    return out


def breakdown(proc, wall: float, began: float, store: str) -> dict[str, float]:
    """Split a train command's wall time by its progress lines."""
    from genai.storage import ArtifactStore
    from genai.train.runs import history_of

    log = Path(proc.stderr.splitlines()[0].split(None, 1)[1])
    lines = progress(log)
    first = {step: when for when, step, _ in reversed(lines)}
    epochs = [when for when, step, msg in lines if step == "train" and " epoch " in msg]
    run_id = json.loads(proc.stdout.splitlines()[-1])["run_id"]
    history = history_of(ArtifactStore(store).read_table(f"runs/{run_id}/metrics.parquet"))
    work = sum(h["epoch_s"] for h in history)
    written = next(
        (float(re.search(r"in ([\d.]+)s", m).group(1)) for _, s, m in lines if s == "prepare"),
        0.0,
    )
    train_line = next(when for when, step, msg in lines if step == "train" and "epochs on" in msg)
    parts = {
        "start (process, imports)": lines[0][0] - began,
        "services (Ray head, Prefect server)": first["prefect"] - lines[0][0],
        "flow to data (Prefect set-up, dataset)": train_line - first["prefect"],
        "train start-up (controller, workers)": epochs[0] - train_line - history[0]["epoch_s"],
        "epochs (their own work)": work,
        "per-epoch reports, finish": began + wall - epochs[0] - (work - history[0]["epoch_s"]),
    }
    return {
        "wall_s": wall,
        "work_s": work,
        "dataset_prepare_s": written,
        "overhead_s": wall - work - written,  # the definition: not the data writing
        **{k: round(v, 2) for k, v in parts.items()},
    }


FLOOR = """
import sys, time
from genai.cluster import ensure_ray, local_head
ensure_ray(local_head()[0])
import ray.train
from ray.train.torch import TorchTrainer

def loop():
    ray.train.report({"done": 1})

for workers in (1, 2):
    t = time.perf_counter()
    TorchTrainer(
        loop,
        scaling_config=ray.train.ScalingConfig(num_workers=workers),
        run_config=ray.train.RunConfig(storage_path=sys.argv[1], name=f"floor-{workers}"),
    ).fit()
    print(workers, time.perf_counter() - t, flush=True)
"""


def floor(env: dict[str, str], storage: str) -> dict[int, float]:
    """Ray Train's own start-up on the warm Ray: a bare TorchTrainer (gloo group, one report,
    no torch model, no data) with 1 and 2 workers, timed around fit() in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", FLOOR, storage], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"bare TorchTrainer failed:\n{proc.stderr[-3000:]}")
    rows = [line.split() for line in proc.stdout.splitlines() if line[:1].isdigit()]
    return {int(w): float(s) for w, s in rows}


FRESH = """
import sys
from genai.cluster import ensure_ray, local_head
ensure_ray(local_head()[0])
import ray.train
from ray.train.torch import TorchTrainer

def loop():
    ray.train.report({"done": 1})

TorchTrainer(
    loop,
    scaling_config=ray.train.ScalingConfig(num_workers=2),
    run_config=ray.train.RunConfig(storage_path=sys.argv[1], name="fresh"),
).fit()
"""


def fresh(env: dict[str, str], storage: str) -> float:
    """The issue's yardstick: a bare 2-worker TorchTrainer.fit() timed as a fresh process
    (interpreter start, imports, connecting to the warm Ray, the fit), as a command is."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, storage], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"bare TorchTrainer failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--warm",
        type=int,
        default=3,
        help="warm commands per repeat, alternating with the fresh-process bare fit",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import flows.cli"], cwd=ROOT, check=True)
        imports = time.perf_counter() - t
        cold, warm, rerun = [], [], {"train": [], "sweep": [], "run": []}
        bare: list[dict[int, float]] = []
        yardstick: list[float] = []
        for r in range(args.repeats):
            home = f"{tmp}/home{r}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            env |= {"GENAI_STATE_DIR": home, "GENAI_LOG_DIR": f"{home}/logs", "PREFECT_HOME": home}
            store = f"{tmp}/store{r}"
            try:
                began = time.time()
                proc, wall = genai([*TRAIN, "--store", store, "--json"], env)
                cold.append(breakdown(proc, wall, began, store))
                for w in range(args.warm):  # the same data and services, a new seed each
                    yardstick.append(fresh(env, f"{tmp}/fresh{r}-{w}"))
                    began = time.time()
                    seeded = [*TRAIN, "--set", f"train.seed={w + 1}", "--store", store, "--json"]
                    proc, wall = genai(seeded, env)
                    warm.append(breakdown(proc, wall, began, store))
                bare.append(floor(env, f"{tmp}/floor{r}"))
                rerun["train"].append(genai([*TRAIN, "--store", store], env)[1])
                tiny = ["--set", "train.epochs=1", "--trials", "2", "--set", "train.num_workers=1"]
                sweep = [
                    "sweep",
                    "configs/vae.yaml",
                    "--space",
                    "tune_spaces/vae_loss_weights.yaml",
                ]
                genai([*sweep, *tiny, "--store", store], env)
                rerun["sweep"].append(genai([*sweep, *tiny, "--store", store], env)[1])
                demo = ["run", "--store", store]
                genai(demo, env)
                rerun["run"].append(genai(demo, env)[1])
            finally:
                subprocess.run([GENAI, "down"], env=env, capture_output=True)

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    keys = [k for k in cold[0] if k not in ("wall_s", "work_s", "dataset_prepare_s")]
    counts = f"median of {len(cold)} cold, {len(warm)} warm"
    print(f"`genai train configs/vae.yaml --set train.epochs=2`, {counts}:")
    print("| | cold s | warm s |\n|---|---:|---:|")
    for key in ["wall_s", "work_s", "dataset_prepare_s", *keys]:
        print(f"| {key} | {med(cold, key):.2f} | {med(warm, key):.2f} |")
    for workers in (1, 2):
        seconds = statistics.median(b[workers] for b in bare)
        print(f"bare TorchTrainer.fit(), {workers} worker(s), warm Ray: {seconds:.2f} s")
    ruler = statistics.median(yardstick)
    print(f"bare 2-worker TorchTrainer.fit() as a fresh process, warm Ray: {ruler:.2f} s")
    over = med(warm, "overhead_s")
    print(f"warm fixed overhead {over:.2f} s = that + {over - ruler:.2f} s (aim: + 6 s or less)")
    print(f"\n`import flows.cli`: {imports:.2f} s")
    for name, times in rerun.items():
        print(f"re-run of a finished `genai {name}`: {statistics.median(times):.2f} s")
    print(
        json.dumps(
            {
                "cold": cold,
                "warm": warm,
                "bare": bare,
                "fresh_bare_s": yardstick,
                "rerun": rerun,
                "imports_s": imports,
            }
        )
    )


if __name__ == "__main__":
    main()
