"""Every store key in one place: the artifact layout of DESIGN section 3.

Keys are relative to the store root and ``/``-separated; only this module formats them.

    datasets/{name}/{version}/split={train|val|test}/part-*.parquet + manifest.json
    features/{dataset}/{version}/{net_version}/model.pt + meta.json
    runs/{run_id}/config.json, metrics.parquet, checkpoints/epoch-NNNNN/state.pt, result.json
    sweeps/{sweep_id}/trials.parquet, best.json, plot.png, tune/, trials/{trial_id}/epoch-NNNNN/
    evaluations/{run_id}/metrics.parquet
    samples/{run_id}/samples.parquet + grid.png | scatter.png + loss_curve.png
    pipelines/{pipeline_id}/summary.json
    leases/{artifact key}/lease-NNNNNNNN.json (while a command produces a dataset, run or sweep)
"""

from __future__ import annotations

STATE_FILE = "state.pt"  # the one checkpoint file (genai.train.checkpoint)


# ------------------------------------------------------------------------------------ datasets
def dataset(name: str, version: str) -> str:
    return f"datasets/{name}/{version}"


def manifest(dataset_key: str) -> str:
    return f"{dataset_key}/manifest.json"


def split(dataset_key: str, name: str) -> str:
    return f"{dataset_key}/split={name}"


def part(split_key: str, index: int) -> str:
    """The Parquet file one read unit of a streamed preparation writes into a split."""
    return f"{split_key}/part-{index:05d}.parquet"


def features(dataset_name: str, version: str, net_version: str) -> str:
    """The domain feature network of a dataset version; ``net_version`` hashes its
    architecture, budget and scaling, so a changed network never mixes with the old one's."""
    return f"features/{dataset_name}/{version}/{net_version}"


def features_model(features_key: str) -> str:
    return f"{features_key}/model.pt"


def features_meta(features_key: str) -> str:
    return f"{features_key}/meta.json"


# ---------------------------------------------------------------------------------------- runs
RUNS = "runs"


def run(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def run_config(run_id: str) -> str:
    return f"{run(run_id)}/config.json"


def run_metrics(run_id: str) -> str:
    return f"{run(run_id)}/metrics.parquet"


def run_result(run_id: str) -> str:
    return f"{run(run_id)}/result.json"


def run_checkpoints(run_id: str) -> str:
    """Ray Train's storage for the run (``RunConfig(name=...)`` is its last part)."""
    return f"{run(run_id)}/checkpoints"


def checkpoint_dir_name(epoch: int) -> str:
    return f"epoch-{epoch:05d}"


def run_checkpoint(run_id: str, epoch: int) -> str:
    return f"{run_checkpoints(run_id)}/{checkpoint_dir_name(epoch)}/{STATE_FILE}"


# -------------------------------------------------------------------------------------- sweeps
def sweep(sweep_id: str) -> str:
    return f"sweeps/{sweep_id}"


def sweep_trials(sweep_id: str) -> str:
    return f"{sweep(sweep_id)}/trials.parquet"


def sweep_best(sweep_id: str) -> str:
    return f"{sweep(sweep_id)}/best.json"


def sweep_plot(sweep_id: str) -> str:
    return f"{sweep(sweep_id)}/plot.png"


def sweep_tune(sweep_id: str) -> str:
    """Tune's experiment directory (``RunConfig(name="tune")``): its state, so a sweep resumes."""
    return f"{sweep(sweep_id)}/tune"


def sweep_trial_runs(sweep_id: str) -> str:
    """Ray Train storage of multi-worker trials: one folder per trial id below it."""
    return f"{sweep(sweep_id)}/trials"


# ------------------------------------------------------------------------ evaluation, samples
def evaluation(run_id: str) -> str:
    return f"evaluations/{run_id}/metrics.parquet"


def samples(run_id: str) -> str:
    return f"samples/{run_id}"


def samples_table(run_id: str) -> str:
    return f"{samples(run_id)}/samples.parquet"


def samples_picture(run_id: str, name: str) -> str:
    """``grid``, ``scatter`` or ``loss_curve`` as PNG."""
    return f"{samples(run_id)}/{name}.png"


# ----------------------------------------------------------------------------------- pipelines
def pipeline(pipeline_id: str) -> str:
    return f"pipelines/{pipeline_id}"


def pipeline_summary(pipeline_id: str) -> str:
    return f"{pipeline(pipeline_id)}/summary.json"


# --------------------------------------------------------------------------------- comparisons
CELLS_TABLE, LEADERBOARD_TABLE = "cells.parquet", "leaderboard.parquet"
COMPARISON_FILES = (
    CELLS_TABLE, LEADERBOARD_TABLE, "report.md", "samples.png", "metrics.png",
    "quality.png", "budgets.png",
)  # fmt: skip


def comparison(comparison_id: str) -> str:
    return f"comparisons/{comparison_id}"


def comparison_file(comparison_id: str, name: str) -> str:
    """One of ``COMPARISON_FILES`` of a comparison."""
    if name not in COMPARISON_FILES:
        raise ValueError(f"a comparison has no file {name!r}; its files: {COMPARISON_FILES}")
    return f"{comparison(comparison_id)}/{name}"


def comparison_summary(comparison_id: str) -> str:
    """Written last: the comparison is complete."""
    return f"{comparison(comparison_id)}/summary.json"


def comparison_row(comparison_id: str, row: str) -> str:
    """A leaderboard row's key (its MLflow run's ``genai.key``): ``family-loss-steps``."""
    return f"{comparison(comparison_id)}/rows/{row}"


def cell(cell_key: str) -> str:
    """One model of a comparison (a cell at one seed and budget), by its content key: shared by
    every comparison that holds it."""
    return f"cells/{cell_key}"


def cell_record(cell_key: str) -> str:
    """Written last: the cell's model is trained and judged."""
    return f"{cell(cell_key)}/record.json"


def cell_samples(cell_key: str) -> str:
    """The few samples the comparison's picture shows (NumPy .npy, normalised as the model
    draws them)."""
    return f"{cell(cell_key)}/samples.npy"


def run_ids(keys: list[str]) -> list[str]:
    """Run ids among keys listed under ``runs/`` (those with a config.json)."""
    return sorted({k.split("/")[1] for k in keys if k.endswith("/config.json")})


def newest_state(keys: list[str]) -> str | None:
    """The newest checkpoint file among listed keys (epoch directories sort by epoch)."""
    files = [k for k in keys if k.endswith(f"/{STATE_FILE}")]
    return max(files) if files else None


# -------------------------------------------------------------------------------------- leases
LEASES = "leases"
LEASE_PREFIX = "lease-"


def lease(artifact_key: str) -> str:
    """The lease of the command producing ``artifact_key`` (:mod:`genai.lease`): beside the
    artifacts, not inside them, so replacing or --force-deleting an artifact never touches it."""
    return f"{LEASES}/{artifact_key}"


def lease_object(lease_key: str, number: int) -> str:
    """The ``number``-th lease object of an artifact's lease (the highest is the current one)."""
    return f"{lease_key}/{LEASE_PREFIX}{number:08d}.json"


def lease_number(key: str) -> int | None:
    """The number of a lease object's key, or None for any other key."""
    name = key.rsplit("/", 1)[-1]
    if name.startswith(LEASE_PREFIX) and name.endswith(".json"):
        return int(name[len(LEASE_PREFIX) : -len(".json")])
    return None
