"""The ``genai`` command: a thin shell over the Prefect flows beside it (it sits above them)."""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from flows import api
from flows.console import Console, active, terminal
from genai.config import PipelineConfig
from genai.configfile import load_config
from genai.errors import UserError
from genai.evaluate.names import KID_NOTE
from genai.progress import say
from genai.storage import ArtifactStore

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Train, sweep and judge generative models and their losses on Ray, with Prefect.",
)


@dataclass
class Options:
    verbose: bool = False
    console: Console | None = None


@app.callback()
def _group(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "-v", "--verbose", help="show Ray's, Prefect's and libraries' own output too"
    ),
) -> None:
    """The pipeline (run) and its stages: prepare, train, sweep, evaluate, generate."""
    ctx.obj = Options(verbose=verbose)


# Options every command shares.
STORE = typer.Option(None, help="artifact store URI (default $GENAI_STORE or ./artifacts)")
RAY_ADDRESS = typer.Option(
    None, help="Ray head address or 'auto' (default: the local Ray genai commands share)"
)
AS_JSON = typer.Option(False, "--json", help="print one JSON object as the last line of stdout")
SAMPLER = typer.Option(
    None, help="fast (default: a diffusion model samples with DDIM) | model (the run's own)"
)
DDIM_STEPS = typer.Option(None, "--ddim-steps", help="DDIM steps of the fast sampler (default 50)")
ETA = typer.Option(
    None, "--eta", help="DDIM's noise in the fast sampler, 0-1 (default: the run's diffusion.eta)"
)
OVERRIDES = typer.Option(None, "--set", help="override a config field: --set train.epochs=3")
NO_WAIT = typer.Option(
    False, "--no-wait", help="exit (status 2) if another command is producing the same result"
)


def console(ctx: typer.Context, command: str) -> Console:
    """This command's console: progress on the terminal, every other line in a log file."""
    options: Options = ctx.obj
    if options.console is None:
        options.console = Console(command, verbose=options.verbose)
    return options.console


def opener(ctx: typer.Context) -> api.OnBoot:
    """What a command does once it knows the work is not in the store, before the services start:
    open its console (progress on the terminal, every other line in a log file) and name the log."""
    return lambda command: say("log", str(console(ctx, command).path))


def emit(
    ctx: typer.Context,
    result: dict[str, Any],
    as_json: bool,
    human: str,
    *,
    last: str | None = None,
) -> None:
    """Print the human summary (then the log's path, then ``last``: the line a person reads
    first), or the JSON object as the very last stdout line."""
    options: Options = ctx.obj
    text = json.dumps(result, default=str) if as_json else human
    if not as_json and options.console is not None:
        text += f"\n  log       {options.console.path}"
    if not as_json and last is not None:
        text += f"\n\n{last}"
    if options.console is None:
        print(text, flush=True)
        return
    options.console.print(text)


@app.command()
def run(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="pipeline YAML (default: configs/demo.yaml)"),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    force: bool = typer.Option(False, "--force", help="redo every stage, even finished ones"),
    as_json: bool = AS_JSON,
    no_wait: bool = NO_WAIT,
) -> None:
    """The main job: prepare -> sweep -> retrain the best -> evaluate -> generate -> summary."""
    summary = api.run(config, overrides=overrides or (), store=store, ray_address=ray_address,
                      force=force, no_wait=no_wait, on_boot=opener(ctx))  # fmt: skip
    out = {
        "pipeline_id": summary["pipeline_id"],
        "summary_uri": summary["summary_uri"],
        "dataset": summary["dataset"],
        "sweep": summary["sweep"],
        "best_run": summary["best_run"],
        "metrics": summary["metrics"],
    }
    emit(ctx, out, as_json, summary_table(summary))


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
        at = f"{floor:>12.4g}" if floor is not None else f"{'':>12}"
        lines.append(f"  {name:<16}{value:>12.4g}{at}")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in summary["stage_seconds"].items())
    lines += ["", f"  stages    {stages}", f"  summary   {summary['summary_uri']}"]
    return "\n".join(lines)


@app.command()
def prepare(
    ctx: typer.Context,
    source: str = typer.Option(
        None,
        help="digits | photos | shapes | ring8 | grid25 | moons | swissroll | parquet | csv"
        " | npy | images",
    ),
    n: int = typer.Option(None, help="rows to generate (generated sources)"),
    seed: int = typer.Option(None, help="seed of generation and split"),
    uri: str = typer.Option(
        None, help="your data, local or s3://: Parquet file or folder, CSV, .npy, image folder"
    ),
    columns: str = typer.Option(None, help="comma-separated value columns (parquet, csv)"),
    label_column: str = typer.Option(None, help="label column (parquet, csv): any values"),
    label_uri: str = typer.Option(None, help=".npy of one label per row (npy)"),
    shape: str = typer.Option(None, help="shape of one sample, e.g. 8,8 (parquet, csv, npy)"),
    image_labels: bool = typer.Option(
        None, "--image-labels/--no-image-labels", help="label images by subfolder (images)"
    ),
    name: str = typer.Option(None, help="dataset name (default: the source's)"),
    config: Path = typer.Option(None, help="YAML data config; options above override it"),
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    no_wait: bool = NO_WAIT,
    as_json: bool = AS_JSON,
) -> None:
    """Prepare a dataset: validate, normalise, split, write Parquet to the store."""
    given = {"n": n, "seed": seed, "uri": uri, "name": name, "label_column": label_column}
    given |= {"label_uri": label_uri, "image_labels": image_labels}
    if columns is not None:
        given["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
    if shape is not None:
        given["shape"] = [d.strip() for d in shape.replace("x", ",").split(",") if d.strip()]
    result = api.prepare(source, config=config, store=store, ray_address=ray_address,
                         no_wait=no_wait, on_boot=opener(ctx), **given)  # fmt: skip
    out = {k: result[k] for k in ("dataset", "version", "uri", "rows", "feature_net")}
    rows = ", ".join(f"{k} {v}" for k, v in result["rows"].items())
    verb = "prepared" if result["created"] else "already prepared"
    human = f"{verb} {result['dataset']} version {result['version']} ({rows})"
    if result["feature_net"]:
        net = result["feature_net"]
        accuracy = (
            "" if net["test_accuracy"] is None else f", {net['test_accuracy']:.1%} test accuracy"
        )
        human += f"\n  feature network {net['net_version']}{accuracy} ({net['seconds']:.0f}s)"
    emit(ctx, out, as_json, f"{human}\n  -> {result['uri']}")


@app.command()
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="YAML run config (data, model, loss, train)"),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
    no_wait: bool = NO_WAIT,
) -> None:
    """Train a model on Ray Train; re-running the same job resumes it or finds it finished."""
    result = api.train(config, overrides=overrides or (), store=store, ray_address=ray_address,
                       no_wait=no_wait, on_boot=opener(ctx))  # fmt: skip
    out = {k: result[k] for k in ("run_id", "uri", "epochs", "metrics")}
    shown = ", ".join(
        f"{k} {v:.4g}"
        for k, v in result["metrics"].items()
        if k not in ("epoch_s", "param_divergence", "steps")
    )
    verb = "already finished" if result["reused"] else f"trained {result['epochs']} epochs"
    emit(ctx, out, as_json, f"{result['run_id']}: {verb}\n  {shown}\n  -> {result['uri']}")


@app.command()
def sweep(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="YAML base run config (data, model, loss, train)"),
    space: Path = typer.Option(
        ..., help="search space YAML, e.g. tune_spaces/vae_loss_weights.yaml"
    ),
    trials: int = typer.Option(None, help="configs to sample (default 8)"),
    search: str = typer.Option(None, help="random | optuna"),
    scheduler: str = typer.Option(None, help="asha | fifo"),
    repeats: int = typer.Option(None, help="seeds per sampled config; ranked by the mean"),
    judge_every: int = typer.Option(
        None, help="epochs between a trial's judgments (default 1; the last is always judged)"
    ),
    metric: str = typer.Option(
        None, help="the evaluate metric to rank by, e.g. high_quality (default fid or mmd2)"
    ),
    overrides: list[str] = OVERRIDES,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
    no_wait: bool = NO_WAIT,
) -> None:
    """Sweep losses, loss weights and architectures on Ray Tune; every trial judged alike."""
    given = {"trials": trials, "search": search, "scheduler": scheduler, "repeats": repeats}
    given |= {"metric": metric, "judge_every": judge_every}
    result = api.sweep(config, space=space, overrides=overrides or (), store=store,
                       ray_address=ray_address, no_wait=no_wait, on_boot=opener(ctx),
                       **given)  # fmt: skip
    out = {k: result[k] for k in ("sweep_id", "uri", "trials", "best")}
    best = result["best"]
    counts = ", ".join(f"{v} {k}" for k, v in result["counts"].items())
    params = "\n".join(f"    {k} = {v}" for k, v in best["params"].items())
    emit(
        ctx,
        out,
        as_json,
        f"sweep {result['sweep_id']}: {result['trials']} trials ({counts})\n"
        f"  best {best['metric']} {best['score']:.4g} (trial {best['trial_id']}):\n{params}\n"
        f"  -> {result['uri']}",
    )


@app.command()
def evaluate(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="a run id (genai train prints it)"),
    n_samples: int = typer.Option(None, help="samples to draw (default 2500)"),
    split: str = typer.Option(None, help="reference split: test | val"),
    seed: int = typer.Option(None, help="sampling seed"),
    sampler: str = SAMPLER,
    ddim_steps: int = DDIM_STEPS,
    eta: float = ETA,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
) -> None:
    """Judge a trained run with loss-independent metrics, each beside its floor."""
    result = api.evaluate(run_id, store=store, ray_address=ray_address, on_boot=opener(ctx),
                          n_samples=n_samples,
                          split=split, seed=seed, sampler=sampler,
                          ddim_steps=ddim_steps, eta=eta)  # fmt: skip
    lines = [
        f"{run_id}: {result['n_samples']} samples ({result['sampler']}) against the"
        f" {result['split']} split"
    ]
    for name, value in result["metrics"].items():
        floor = result["floors"][name]
        lines.append(
            f"  {name:<16} {value:>10.4g}" + (f"   floor {floor:.4g}" if floor is not None else "")
        )
    if "kid" in result["metrics"]:
        lines.append(f"  ({KID_NOTE})")
    lines.append(f"  -> {result['uri']}")
    emit(ctx, result, as_json, "\n".join(lines))


@app.command()
def generate(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="a run id (genai train prints it)"),
    n: int = typer.Option(None, "--n", help="how many samples (default 64)"),
    seed: int = typer.Option(None, help="sampling seed"),
    sampler: str = SAMPLER,
    ddim_steps: int = DDIM_STEPS,
    eta: float = ETA,
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
) -> None:
    """Draw samples from a trained run: Parquet in data units, plus a picture and loss curves."""
    result = api.generate(run_id, store=store, ray_address=ray_address, on_boot=opener(ctx),
                          n=n, seed=seed,
                          sampler=sampler, ddim_steps=ddim_steps, eta=eta)  # fmt: skip
    files = "\n".join(f"  {k}: {v}" for k, v in result["files"].items())
    emit(ctx, result, as_json, f"{result['n']} samples of {run_id}\n{files}")


def split_list(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


@app.command()
def compare(
    ctx: typer.Context,
    config: Path = typer.Argument(
        None, help="compare YAML (data, families, losses, seeds, budgets, metric, evaluate)"
    ),
    source: str = typer.Option(
        None, help="the data: digits | photos | shapes | ring8 | grid25 | ... | images (with --uri)"
    ),
    uri: str = typer.Option(None, help="your data, local or s3:// (as genai prepare --uri)"),
    n: int = typer.Option(None, help="rows to generate (generated sources)"),
    families: str = typer.Option(
        None,
        help="comma-separated: vae,gan,diffusion,autoregressive (default: all the data allows)",
    ),
    losses: str = typer.Option(
        None, help="comma-separated losses of the families' main slots (default: every one)"
    ),
    seeds: int = typer.Option(
        None, help="seeds per cell (default 3; 5 or more for a firm verdict)"
    ),
    budget: str = typer.Option(
        None,
        help="training steps per model; several, comma-separated, plot quality against the"
        " budget (default: each recipe's own steps)",
    ),
    metric: str = typer.Option(
        None,
        help="the metric to rank by (default fid for images, high_quality for 2-D mixtures,"
        " mmd2 otherwise)",
    ),
    samples: int = typer.Option(None, help="samples each model is judged on (default 1000)"),
    overrides: list[str] = typer.Option(
        None, "--set", help="set a field in every cell's recipe: --set train.lr=0.001"
    ),
    store: str = STORE,
    ray_address: str = RAY_ADDRESS,
    as_json: bool = AS_JSON,
    no_wait: bool = NO_WAIT,
) -> None:
    """Which family and loss is best for this data: every cell x seeds at one budget, judged
    by evaluate's metrics, with a 95% interval against the best and a verdict."""
    given: dict[str, Any] = {"source": source, "uri": uri, "n": n, "seeds": seeds}
    given |= {"families": split_list(families), "losses": split_list(losses), "metric": metric}
    if budget is not None:
        given["budgets"] = split_list(budget)
    if samples is not None:
        given["evaluate.n_samples"] = samples
    result = api.compare(config, overrides=overrides or (), store=store, ray_address=ray_address,
                         no_wait=no_wait, on_boot=opener(ctx), **given)  # fmt: skip
    keys = ("comparison_id", "uri", "metric", "winner", "indistinguishable", "verdict", "counts")
    out = {k: result[k] for k in keys} | {"report": result["files"]["report.md"]}
    emit(ctx, out, as_json, comparison_table(result), last=result["verdict"])


def comparison_table(summary: dict) -> str:
    """The leaderboard, the weak-verdict warning, and the verdict as the last line."""
    metric, counts = summary["metric"], summary["counts"]
    lines = [
        f"comparison {summary['comparison_id']}: {counts['models']} models"
        f" ({counts['trained']} trained now, {counts['found']} found in the store)",
        "",
        f"  {'rank':>4}  {'cell':<34}{'steps':>9}  {metric + ' mean +- sd':>22}"
        f"  {'vs best (95%)':<30} verdict",
    ]
    # here, not at the top: it loads scipy (0.3 s), which every other command would pay
    from genai.compare.verdict import shown_interval

    for e in summary["leaderboard"]:
        interval = shown_interval(e)
        mean, sd = e.get(f"{metric}_mean"), e.get(f"{metric}_sd")  # None: not finite, or none
        shown = "-" if mean is None else f"{mean:.4g} +- {'-' if sd is None else f'{sd:.2g}'}"
        lines.append(
            f"  {e['rank']:>4}  {e['cell']:<34}{e['steps']:>9,}  {shown:>22}  {interval:<30}"
            f" {e['verdict']}"
        )
    lines += ["", f"  report    {summary['files']['report.md']}"]
    if summary["weak"]:
        lines.append(
            f"  weak verdict: {summary['seeds']} seeds per cell; 5 or more give a firm one"
            " (--seeds 5 trains only the new seeds)"
        )
    return "\n".join(lines)


@app.command()
def serve(
    ctx: typer.Context,
    cron: str = typer.Option("0 3 * * *", help="schedule of nightly-pipeline (cron)"),
    config: Path = typer.Option(
        None,
        help="default pipeline config of the pipeline deployments"
        " (default: configs/demo.yaml, the job `genai run` runs)",
    ),
    store: str = STORE,
    limit: int = typer.Option(
        1, min=1, help="runs of one deployment at once; more are queued (ENQUEUE)"
    ),
) -> None:
    """Register and serve the deployments (nightly-pipeline, pipeline, sweep, train, compare)
    until stopped: with the Prefect server of PREFECT_API_URL, else the local one genai commands
    share; their flows join the Ray of RAY_ADDRESS, else the local one genai commands share.
    Open the Prefect UI to launch runs with typed forms."""
    # imported when serving: every command imports this module, and these load Ray and Prefect
    from flows.deployments import serve as serve_deployments
    from flows.services import prefect_server, use_prefect
    from genai.cluster import local_head

    pipeline = load_config(PipelineConfig, config) if config else None
    store_uri = ArtifactStore(store).uri if store else None
    server = prefect_server()
    server.wait()
    use_prefect(server.url)  # Prefect is imported already (flows.deployments)
    if not os.environ.get("RAY_ADDRESS"):  # flow runs (subprocesses) join it: one Ray here
        os.environ["RAY_ADDRESS"], _ = local_head()
    serve_deployments(cron=cron, store=store_uri, config=pipeline, limit=limit)


@app.command()
def down() -> None:
    """Stop the local Ray and Prefect server that genai commands share (they keep running
    between commands, so the next one starts in seconds)."""
    from flows.services import down as stop  # Ray's import: only for the command that needs it

    stopped = stop()
    print("stopped " + ", ".join(stopped) if stopped else "nothing was running", flush=True)


def main() -> None:
    """Entry point: user errors become one readable message and exit status 2; anything else
    one line naming the log that holds its traceback, and status 1."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no phoning home
    try:
        app()
        code: object = 0
    except SystemExit as done:  # typer's way out, also on success
        code = done.code
    except UserError as err:
        print(f"error: {err}", file=terminal(), flush=True)
        code = 2
    except Exception as err:
        traceback.print_exc()  # into the log file when the console points stderr there
        shown = active()
        hint = f" (traceback in {shown.path})" if shown and not shown.verbose else ""
        print(f"error: {type(err).__name__}: {err}{hint}", file=terminal(), flush=True)
        code = 1
    leave(code)


def leave(code: object) -> None:
    """Exit with ``code`` once the command's clean-ups have run, without the interpreter's
    teardown of the modules a command that trained has loaded (torch, Ray, Prefect, MLflow:
    1.8 s of a warm ``genai train`` after its answer was printed, bench/startup.py). The
    clean-ups are the interpreter's own first two steps of an exit, in its order: threads'
    exit hooks (Prefect's log and event workers drain to its server), then ``atexit`` (Ray's
    disconnect, logging's flush). With a thread of ours still working (not a daemon) it is the
    usual exit, which waits for it."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message"): the message, status 1
        print(code, file=sys.stderr)
        code = 1
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(not t.daemon for t in others):
        raise SystemExit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    threading._shutdown()  # type: ignore[attr-defined]  # Python's own first step of an exit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
