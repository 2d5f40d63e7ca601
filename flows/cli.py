"""The ``genai`` command: a thin shell over the Prefect flows beside it (it sits above them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from genai.strict import ConfigError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Train, sweep and judge generative models and their losses on Ray, with Prefect.",
)


@app.callback()
def _group() -> None:
    """The pipeline (run) and its stages: prepare, train, sweep, evaluate, generate."""


# Options every command shares.
STORE = typer.Option(None, help="artifact store URI (default $GENAI_STORE or ./artifacts)")
RAY_ADDRESS = typer.Option(None, help="Ray head address or 'auto' (default: start a local Ray)")
AS_JSON = typer.Option(False, "--json", help="print one JSON object as the last line of stdout")
OVERRIDES = typer.Option(None, "--set", help="override a config field: --set train.epochs=3")


def emit(result: dict[str, Any], as_json: bool, human: str) -> None:
    """Print the human summary, or the JSON object as the very last stdout line."""
    sys.stderr.flush()
    if as_json:
        print(json.dumps(result, default=str), flush=True)
    else:
        print(human, flush=True)


DEMO = Path("configs/demo.yaml")


@app.command()
def run(
    config: Path = typer.Argument(None, help="pipeline YAML (default: configs/demo.yaml)"),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    force: bool = typer.Option(False, "--force", help="redo every stage, even finished ones"),
    as_json: bool = AS_JSON,
) -> None:
    """The main job: prepare -> sweep -> retrain the best -> evaluate -> generate -> summary."""
    from genai.config import PipelineConfig
    from genai.configfile import load_config
    from genai.storage import ArtifactStore
    from genai.tune.space import load_space

    path = config or (DEMO if DEMO.is_file() else None)
    cfg = load_config(PipelineConfig, path, overrides=overrides or ())
    base = cfg.model_dump(mode="json", include={"data", "model", "loss", "train"})
    from genai.config import RunConfig

    load_space(cfg.sweep.space, RunConfig.model_validate(base))  # before anything starts
    store_uri = ArtifactStore(store).uri

    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(config=cfg, store=store_uri, ray_address=ray_address, force=force)
    out = {
        "pipeline_id": summary["pipeline_id"],
        "summary_uri": summary["summary_uri"],
        "dataset": summary["dataset"],
        "sweep": summary["sweep"],
        "best_run": summary["best_run"],
        "metrics": summary["metrics"],
    }
    emit(out, as_json, summary_table(summary))


def summary_table(summary: dict) -> str:
    """The pipeline's outcome as a small table a person reads at the end of `genai run`."""
    ds, sw, best = summary["dataset"], summary["sweep"], summary["best_run"]
    rows = sum(ds["rows"].values())
    lines = [
        f"pipeline {summary['pipeline_id']}",
        f"  dataset   {ds['dataset']}/{ds['version']} ({rows} rows)",
        f"  sweep     {sw['sweep_id']}: {sw['trials']} trials "
        + ", ".join(f"{v} {k}" for k, v in sw["counts"].items()),
        "  best      " + ", ".join(f"{k}={v}" for k, v in summary["best_config"].items()),
        f"  run       {best['run_id']} ({best['epochs']} epochs)",
        "",
        f"  {'metric':<16}{'value':>12}{'floor':>12}",
    ]
    for name, value in summary["metrics"].items():
        floor = summary["floors"].get(name)
        shown = f"{floor:>12.4g}" if floor is not None else f"{'':>12}"
        lines.append(f"  {name:<16}{value:>12.4g}{shown}")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in summary["stage_seconds"].items())
    lines += ["", f"  stages    {stages}", f"  summary   {summary['summary_uri']}"]
    return "\n".join(lines)


@app.command()
def prepare(
    source: str = typer.Option(None, help="digits | ring8 | grid25 | moons | swissroll | parquet"),
    n: int = typer.Option(None, help="rows to generate (generated sources)"),
    seed: int = typer.Option(None, help="seed of generation and split"),
    uri: str = typer.Option(None, help="Parquet file or folder (source parquet), local or s3://"),
    columns: str = typer.Option(None, help="comma-separated value columns (source parquet)"),
    label_column: str = typer.Option(None, help="integer label column (source parquet)"),
    name: str = typer.Option(None, help="dataset name (default: the source's)"),
    config: Path = typer.Option(None, help="YAML data config; options above override it"),
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
) -> None:
    """Prepare a dataset: validate, normalise, split, write Parquet to the store."""
    from genai.config import DataConfig
    from genai.configfile import load_config

    given = {"source": source, "n": n, "seed": seed, "uri": uri, "name": name}
    given |= {"label_column": label_column}
    if columns is not None:
        given["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
    data = load_config(
        DataConfig,
        config,
        data={k: v for k, v in given.items() if v is not None},
        prefix="data",
    )
    from genai.storage import ArtifactStore

    store_uri = ArtifactStore(store).uri  # fail on a bad store before any compute

    from flows.prepare import prepare_data

    result = prepare_data(data=data, store=store_uri, ray_address=ray_address)
    out = {k: result[k] for k in ("dataset", "version", "uri", "rows")}
    rows = ", ".join(f"{k} {v}" for k, v in result["rows"].items())
    verb = "prepared" if result["created"] else "already prepared"
    emit(
        out,
        as_json,
        f"{verb} {result['dataset']} version {result['version']} ({rows})\n  -> {result['uri']}",
    )


@app.command()
def train(
    config: Path = typer.Argument(None, help="YAML run config (data, model, loss, train)"),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
) -> None:
    """Train a model on Ray Train; re-running the same job resumes it or finds it finished."""
    from genai.config import RunConfig
    from genai.configfile import load_config
    from genai.storage import ArtifactStore

    run = load_config(RunConfig, config, overrides=overrides or ())
    store_uri = ArtifactStore(store).uri

    from flows.train import train_flow

    result = train_flow(run=run, store=store_uri, ray_address=ray_address)
    out = {k: result[k] for k in ("run_id", "uri", "epochs", "metrics")}
    shown = ", ".join(
        f"{k} {v:.4g}"
        for k, v in result["metrics"].items()
        if k not in ("epoch_s", "param_divergence")
    )
    verb = "already finished" if result["reused"] else f"trained {result['epochs']} epochs"
    emit(out, as_json, f"{result['run_id']}: {verb}\n  {shown}\n  -> {result['uri']}")


@app.command()
def sweep(
    config: Path = typer.Argument(None, help="YAML base run config (data, model, loss, train)"),
    space: Path = typer.Option(
        ..., help="search space YAML, e.g. tune_spaces/vae_loss_weights.yaml"
    ),
    trials: int = typer.Option(None, help="configs to sample (default 8)"),
    search: str = typer.Option(None, help="random | optuna"),
    scheduler: str = typer.Option(None, help="asha | fifo"),
    repeats: int = typer.Option(None, help="seeds per sampled config; ranked by the mean"),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
) -> None:
    """Sweep losses, loss weights and architectures on Ray Tune; every trial judged alike."""
    from genai.config import RunConfig, SweepConfig
    from genai.configfile import load_config
    from genai.storage import ArtifactStore
    from genai.tune.space import load_space

    run = load_config(RunConfig, config, overrides=overrides or ())
    given = {"space": str(space), "trials": trials, "search": search, "scheduler": scheduler}
    given["repeats"] = repeats
    cfg = load_config(
        SweepConfig, data={k: v for k, v in given.items() if v is not None}, prefix="sweep"
    )
    load_space(cfg.space, run)  # a bad space fails here, in well under a second, before Ray
    store_uri = ArtifactStore(store).uri

    from flows.sweep import sweep_flow

    result = sweep_flow(run=run, sweep=cfg, store=store_uri, ray_address=ray_address)
    out = {k: result[k] for k in ("sweep_id", "uri", "trials", "best")}
    best = result["best"]
    counts = ", ".join(f"{v} {k}" for k, v in result["counts"].items())
    params = "\n".join(f"    {k} = {v}" for k, v in best["params"].items())
    emit(
        out,
        as_json,
        f"sweep {result['sweep_id']}: {result['trials']} trials ({counts})\n"
        f"  best {best['metric']} {best['score']:.4g} (trial {best['trial_id']}):\n{params}\n"
        f"  -> {result['uri']}",
    )


@app.command()
def evaluate(
    run_id: str = typer.Argument(..., help="a run id (genai train prints it)"),
    n_samples: int = typer.Option(None, help="samples to draw (default 2500)"),
    split: str = typer.Option(None, help="reference split: test | val"),
    seed: int = typer.Option(None, help="sampling seed"),
    store: str = STORE,
    as_json: bool = AS_JSON,
) -> None:
    """Judge a trained run with loss-independent metrics, each beside its floor."""
    from genai.config import EvaluateConfig
    from genai.configfile import load_config
    from genai.runs import check_run
    from genai.storage import ArtifactStore

    given = {"n_samples": n_samples, "split": split, "seed": seed}
    cfg = load_config(
        EvaluateConfig, data={k: v for k, v in given.items() if v is not None}, prefix="evaluate"
    )
    checked = ArtifactStore(store)
    check_run(checked, run_id)  # an unknown run fails here, before any flow starts
    store_uri = checked.uri

    from flows.evaluate import evaluate_flow

    result = evaluate_flow(run_id=run_id, evaluate=cfg, store=store_uri)
    lines = [f"{run_id}: {cfg.n_samples} samples against the {cfg.split} split"]
    for name, value in result["metrics"].items():
        floor = result["floors"][name]
        lines.append(
            f"  {name:<16} {value:>10.4g}" + (f"   floor {floor:.4g}" if floor is not None else "")
        )
    lines.append(f"  -> {result['uri']}")
    emit(result, as_json, "\n".join(lines))


@app.command()
def generate(
    run_id: str = typer.Argument(..., help="a run id (genai train prints it)"),
    n: int = typer.Option(None, "--n", help="how many samples (default 64)"),
    seed: int = typer.Option(None, help="sampling seed"),
    store: str = STORE,
    as_json: bool = AS_JSON,
) -> None:
    """Draw samples from a trained run: Parquet in data units, plus a picture and loss curves."""
    from genai.config import GenerateConfig
    from genai.configfile import load_config
    from genai.runs import check_run
    from genai.storage import ArtifactStore

    given = {"n": n, "seed": seed}
    cfg = load_config(
        GenerateConfig, data={k: v for k, v in given.items() if v is not None}, prefix="generate"
    )
    checked = ArtifactStore(store)
    check_run(checked, run_id)  # an unknown run fails here, before any flow starts
    store_uri = checked.uri

    from flows.generate import generate_flow

    result = generate_flow(run_id=run_id, generate=cfg, store=store_uri)
    files = "\n".join(f"  {k}: {v}" for k, v in result["files"].items())
    emit(result, as_json, f"{result['n']} samples of {run_id}\n{files}")


@app.command()
def serve(
    cron: str = typer.Option("0 3 * * *", help="schedule of nightly-pipeline (cron)"),
    config: Path = typer.Option(None, help="default pipeline config of the pipeline deployments"),
    store: str = STORE,
) -> None:
    """Register and serve the deployments (nightly-pipeline, pipeline, sweep, train) locally.

    Point PREFECT_API_URL at your Prefect server; open its UI to launch runs with typed forms.
    """
    from genai.config import PipelineConfig
    from genai.configfile import load_config
    from genai.storage import ArtifactStore

    pipeline = load_config(PipelineConfig, config) if config else None
    store_uri = ArtifactStore(store).uri if store else None
    from flows.deployments import serve as serve_deployments

    serve_deployments(cron=cron, store=store_uri, config=pipeline)


def main() -> None:
    """Entry point: user errors become one readable message and exit status 2."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no phoning home
    from genai.data.sources import DataError
    from genai.evaluate.evaluate import EvaluationError
    from genai.storage import StoreError

    try:
        app()
    except (ConfigError, DataError, StoreError, EvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
