"""Sweep efficiency: ASHA with random search against the full grid, on one space, in one run.

Space: every adversarial game x three learning rates (15 configs), GANs on ring8, 8 epochs, score
MMD^2 against the validation split (lower is better). Reports trial-epochs each used, the best
score each reached at full length, and the framework's overhead per trial (wall time x
concurrency minus the time trials spent training and scoring, per trial) beside a raw Tune trial
(a function that reports once), both through Tuner on this machine.

    .venv/bin/python bench/sweep_efficiency.py [--trials 15] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ray import tune

from genai.cluster import ensure_ray
from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from genai.storage import ArtifactStore
from genai.tune.sweep import sweep

SPACE = """
loss.adversarial.name: {%s: [minimax, non_saturating, hinge, least_squares, wasserstein]}
train.lr: {%s: [0.0003, 0.001, 0.003]}
"""


def run(store: ArtifactStore, base: RunConfig, space: Path, cfg: SweepConfig) -> dict:
    t = time.perf_counter()
    result = sweep(base, cfg, store)
    wall = time.perf_counter() - t
    rows = store.read_table(f"sweeps/{result.sweep_id}/trials.parquet").to_pylist()
    full = [r for r in rows if r["epochs"] == base.train.epochs]
    busy = sum(r["wall_s"] or 0.0 for r in rows)
    return {
        "trials": len(rows),
        "trial_epochs": sum(r["epochs"] for r in rows),
        "best_full_length": min(r["score"] for r in full),
        "wall_s": wall,
        "busy_s": busy,
    }


def raw_tune(trials: int) -> float:
    """Seconds per trial of a trivial Tune function trainable (2 at a time, like ours)."""

    def noop(config):
        tune.report({"score": config["x"]})

    t = time.perf_counter()
    tune.Tuner(
        tune.with_resources(noop, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=trials, metric="score", mode="min"),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
    ).fit()
    return (time.perf_counter() - t) * 2 / trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--grace", type=int, default=1, help="ASHA grace period (epochs)")
    ap.add_argument("--factor", type=int, default=3, help="ASHA reduction factor")
    args = ap.parse_args()
    ensure_ray()
    base = load_config(
        RunConfig,
        data={
            "data.source": "ring8",
            "data.n": 3000,
            "model.family": "gan",
            "train.epochs": args.epochs,
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(f"file://{tmp}/store")
        grid_space, asha_space = Path(tmp, "grid.yaml"), Path(tmp, "asha.yaml")
        grid_space.write_text(SPACE % ("grid", "grid"))
        asha_space.write_text(SPACE % ("choice", "choice"))
        grid = run(
            store, base, grid_space, SweepConfig(space=str(grid_space), trials=1, scheduler="fifo")
        )
        asha = run(
            store,
            base,
            asha_space,
            SweepConfig(
                space=str(asha_space),
                trials=args.trials,
                grace_period=args.grace,
                reduction_factor=args.factor,
            ),
        )
        asha_grid = run(
            store,
            base,
            grid_space,
            SweepConfig(
                space=str(grid_space),
                trials=1,
                grace_period=args.grace,
                reduction_factor=args.factor,
            ),
        )
    raw = raw_tune(8)
    runs = (("full grid", grid), ("ASHA+random", asha), ("ASHA over grid", asha_grid))
    overhead = {name: (r["wall_s"] * 2 - r["busy_s"]) / r["trials"] for name, r in runs}
    result = {
        "grid": grid,
        "asha_random": asha,
        "asha_grid": asha_grid,
        "trial_epochs_ratio": {
            "asha_random": round(asha["trial_epochs"] / grid["trial_epochs"], 3),
            "asha_grid": round(asha_grid["trial_epochs"] / grid["trial_epochs"], 3),
        },
        "best_ratio": {
            "asha_random": round(asha["best_full_length"] / grid["best_full_length"], 3),
            "asha_grid": round(asha_grid["best_full_length"] / grid["best_full_length"], 3),
        },
        "overhead_s_per_trial": {k: round(v, 2) for k, v in overhead.items()},
        "raw_tune_s_per_trial": round(raw, 2),
    }
    head = f"{'trials':>7}{'trial-epochs':>14}{'best MMD^2 (full length)':>26}{'wall s':>9}"
    print(f"{'':16}{head}{'overhead/trial s':>18}")
    for name, r in runs:
        print(
            f"{name:16}{r['trials']:>7}{r['trial_epochs']:>14}{r['best_full_length']:>26.5f}"
            f"{r['wall_s']:>9.1f}{overhead[name]:>18.2f}"
        )
    print(f"raw Tune trial (no-op function): {raw:.2f}s per trial")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
