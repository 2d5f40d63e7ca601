"""The ``genai`` command: a thin shell over the Prefect flows in ``flows/``."""

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
    """Stages: prepare, train."""


JSON_HELP = "print one JSON object as the last line of stdout"


def emit(result: dict[str, Any], as_json: bool, human: str) -> None:
    """Print the human summary, or the JSON object as the very last stdout line."""
    sys.stderr.flush()
    if as_json:
        print(json.dumps(result, default=str), flush=True)
    else:
        print(human, flush=True)


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
    store: str = typer.Option(
        None, help="artifact store URI (default $GENAI_STORE or ./artifacts)"
    ),
    ray_address: str = typer.Option(None, help="Ray head address or 'auto' (default: local)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Prepare a dataset: validate, normalise, split, write Parquet to the store."""
    from genai.config import DataConfig, load_config

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
    overrides: list[str] = typer.Option(
        None, "--set", help="override a field: --set train.epochs=3 (repeatable)"
    ),
    store: str = typer.Option(
        None, help="artifact store URI (default $GENAI_STORE or ./artifacts)"
    ),
    ray_address: str = typer.Option(None, help="Ray head address or 'auto' (default: local)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train a model on Ray Train; re-running the same job resumes it or finds it finished."""
    from genai.config import RunConfig, load_config
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


def main() -> None:
    """Entry point: user errors become one readable message and exit status 2."""
    from genai.data.sources import DataError
    from genai.storage import StoreError

    try:
        app()
    except (ConfigError, DataError, StoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
