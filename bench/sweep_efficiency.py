"""Sweep efficiency: ASHA with random search against the full grid, on one space, in one run.

Space: every adversarial game x three learning rates (15 configs), GANs on ring8, 8 epochs, score
MMD^2 against the validation split (lower is better). Reports trial-epochs each used, the best
score each reached at full length, and the framework's overhead per trial (wall time x
concurrency minus the time trials spent training and scoring, per trial) beside a raw Tune trial
(a function that reports once), both through Tuner on this machine.

Then the marginal cost of a trial, side by side: a genai sweep of ``--big`` one-epoch, one-worker
trials on 2,000 moons rows (random learning rates, FIFO, 2 at a time) minus one of ``--small``,
divided by the difference (after a warm-up sweep, discarded, so neither pays Ray's first start),
beside the same difference for a raw Tune function trainable that imports torch and takes 50 Adam
steps on a small MLP, with Tune's actors reused and without. Issue 27's aim: genai's marginal
trial <= 1 s beyond the raw one with actors reused.

    .venv/bin/python bench/sweep_efficiency.py [--trials 15] [--epochs 8] [--marginal-only]
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
from genai.data.prepare import prepare
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


def raw_marginal(trials: int, reuse: bool) -> float:
    """Wall seconds of a Tune run of ``trials`` raw torch trials, 2 at a time."""

    def steps(config):
        import torch  # in the trial: a fresh actor imports it again, a reused one has it

        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(2, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 2),
        )
        opt = torch.optim.Adam(net.parameters(), lr=config["lr"])
        x = torch.randn(64, 2)
        for _ in range(50):
            loss = (net(x) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        tune.report({"score": loss.item()})

    t = time.perf_counter()
    tune.Tuner(
        tune.with_resources(steps, {"cpu": 1}),
        param_space={"lr": tune.loguniform(3e-4, 3e-3)},
        tune_config=tune.TuneConfig(
            num_samples=trials,
            metric="score",
            mode="min",
            max_concurrent_trials=2,
            reuse_actors=reuse,
        ),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
    ).fit()
    return time.perf_counter() - t


def marginal(small: int, big: int) -> dict:
    """Seconds a trial adds to a sweep: genai's, and the raw trial's with and without reuse."""
    base = load_config(
        RunConfig,
        data={"data.source": "moons", "data.n": 2000, "train.epochs": 1, "train.num_workers": 1},
    )
    walls: dict[str, dict[int, float]] = {"genai": {}, "raw, reused": {}, "raw, fresh": {}}
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(f"file://{tmp}/store")
        space = Path(tmp, "lr.yaml")
        space.write_text("train.lr: {loguniform: [0.0003, 0.003]}\n")
        prepare(base.data, store)  # neither sweep pays for the dataset
        busy = []
        sweep(base, SweepConfig(space=str(space), trials=small + 1, scheduler="fifo"), store)
        raw_marginal(small, reuse=True)  # both warm: Ray's worker pool, the files' caches
        for n in (small, big):
            t = time.perf_counter()
            done = sweep(base, SweepConfig(space=str(space), trials=n, scheduler="fifo"), store)
            walls["genai"][n] = time.perf_counter() - t
            rows = store.read_table(f"sweeps/{done.sweep_id}/trials.parquet").to_pylist()
            busy += [r["wall_s"] for r in rows]
            processes = len({r["pid"] for r in rows})
            print(f"genai sweep of {n} trials: {walls['genai'][n]:.1f} s, {processes} processes")
            walls["raw, reused"][n] = raw_marginal(n, reuse=True)
            walls["raw, fresh"][n] = raw_marginal(n, reuse=False)
    per = {k: (w[big] - w[small]) / (big - small) for k, w in walls.items()}
    return {
        "walls": {k: {str(n): round(s, 2) for n, s in w.items()} for k, w in walls.items()},
        "marginal_s": {k: round(v, 2) for k, v in per.items()},
        "beyond_raw_reused_s": round(per["genai"] - per["raw, reused"], 2),
        "genai_trial_s": round(sum(busy) / len(busy), 2),  # its own training and judging
    }


def print_marginal(m: dict, small: int, big: int) -> None:
    print(f"marginal seconds a trial ({big} trials minus {small}, / {big - small}; 2 at a time)")
    for name, s in m["marginal_s"].items():
        w = m["walls"][name]
        print(f"  {name:12}{s:>8.2f}   (wall {w[str(small)]:.1f} s and {w[str(big)]:.1f} s)")
    print(f"  genai beyond the raw trial with actors reused: {m['beyond_raw_reused_s']:.2f} s")
    print(f"  a genai trial's own time (training and judging, mean): {m['genai_trial_s']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--grace", type=int, default=1, help="ASHA grace period (epochs)")
    ap.add_argument("--factor", type=int, default=3, help="ASHA reduction factor")
    ap.add_argument("--small", type=int, default=4, help="trials of the marginal's small sweep")
    ap.add_argument("--big", type=int, default=28, help="trials of the marginal's big sweep")
    ap.add_argument("--marginal-only", action="store_true", help="only the marginal cost")
    args = ap.parse_args()
    ensure_ray()
    if args.marginal_only:
        m = marginal(args.small, args.big)
        print_marginal(m, args.small, args.big)
        print(json.dumps({"marginal": m}))
        return
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
    result["marginal"] = marginal(args.small, args.big)
    print_marginal(result["marginal"], args.small, args.big)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
