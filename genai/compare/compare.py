"""``genai compare``: which family and loss is best for this data, with a verdict.

Every (family, loss) cell the compare selects (:mod:`genai.compare.cells`), at each budget and
for each seed, is one model: a Ray Tune trial on the cluster (:mod:`genai.tune.cells`; one
CPU each, processes reused), trained with the one training core and judged by ``evaluate``'s
loss-independent metrics beside their floors. A model whose record is in the store (by its
content key) is not trained again: more seeds, another family or a killed compare compute only
what is missing. Then the leaderboard with a verdict (:mod:`genai.compare.verdict`), the
pictures, a Markdown report and, written last, the summary:

    comparisons/{id}/cells.parquet        one row per model: every metric and its floor, steps,
                                          CPU seconds
    comparisons/{id}/leaderboard.parquet  one row per cell and budget, best first, with the verdict
    comparisons/{id}/samples.png, metrics.png, quality.png [, budgets.png], report.md
    comparisons/{id}/summary.json         (last)
    cells/{key}/record.json, samples.npy  each model's record, shared by every comparison

MLflow (where the store tracks): the comparison's run, one child per leaderboard row.
"""

from __future__ import annotations

import io
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from genai import layout
from genai.cluster import ensure_ray
from genai.compare.cells import (
    RECIPES,
    Cell,
    cell_config,
    cell_key,
    comparison_id_for,
    epochs_for,
    finished_comparison,
    primary_metric,
    recipe_dataset,
    selection,
)
from genai.compare.pictures import (
    budget_plot,
    dot_plots,
    image_panels,
    point_panels,
    quality_plot,
)
from genai.compare.verdict import WEAK_BELOW, leaderboard, sentence, shown_interval
from genai.config import CompareConfig, RunConfig
from genai.data.dataset import SplitReader, denormalise
from genai.data.prepare import PreparedDataset, prepare
from genai.evaluate.names import (
    HIGHER_IS_BETTER,
    METRICS,
    mode_of,
)
from genai.generate import value_range
from genai.lease import hold
from genai.progress import say
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.tracking import store_files, tracked, tracking_for
from genai.train.loop import steps_per_epoch
from genai.train.trained import build_for
from genai.tune.cells import read_record, train_models

log = logging.getLogger(__name__)
PICTURE_IMAGES, PICTURE_POINTS = 16, 500  # samples a cell shows in samples.png
PICTURE_SEED = 0  # every cell's picture samples are drawn with this seed
SAY_EVERY_S = 10.0


def compare(
    cfg: CompareConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Run the comparison (or find it finished) and return its summary."""
    metric = primary_metric(cfg)  # before anything starts
    comparison_id = comparison_id_for(cfg)
    done = finished_comparison(store, cfg)
    if done is not None:
        return done
    key = layout.comparison(comparison_id)
    with hold(store, layout.lease(key), f"comparison {comparison_id}", wait=wait):
        done = finished_comparison(store, cfg)
        if done is not None:
            return done
        tracking = tracking_for(store)
        params = {"compare": cfg.model_dump(mode="json")}
        tags = {"genai.kind": "comparison"}
        with tracked(tracking, key, comparison_id, params, tags) as mlflow_run:
            summary = _compare(cfg, store, comparison_id, metric, ray_address, wait)
            if mlflow_run is not None:
                _track(tracking, mlflow_run, store, comparison_id, summary)
        return summary


@dataclass(frozen=True)
class Plan:
    cells: list[Cell]
    excluded: list[str]
    prepared: dict[int, PreparedDataset]  # by seed
    dataset: str  # whose recipes


def plan(cfg: CompareConfig, store: ArtifactStore, ray_address: str | None, wait: bool) -> Plan:
    """Prepare the data of every seed and resolve every model; the cells the data does not allow
    are left out with the reason when the compare chose them (every family or loss), and are an
    error when the user named them."""
    done: dict[str, PreparedDataset] = {}

    def prepared_for(data) -> PreparedDataset:  # each distinct data config once
        key = data.model_dump_json()
        if key not in done:
            done[key] = prepare(data, store, ray_address=ray_address, wait=wait)
        return done[key]

    if (cfg.data.source, "vae") in RECIPES:  # a built-in dataset: its own recipes
        dataset = cfg.data.source
    else:  # a user's data: the recipes of its kind, images by their size
        shape = prepared_for(cfg.data.model_copy(update={"seed": 0})).manifest.get("shape")
        dataset = recipe_dataset(cfg.data, shape)
    chosen, excluded = [], []
    for family, loss in selection(cfg):
        named = loss in cfg.losses  # the user's own choice: an error, not a quiet omission
        try:
            probe = cell_config(cfg, family, loss, 0, dataset)
            build_for(probe, prepared_for(probe.data).manifest)
        except (ConfigError, ValueError) as err:
            if named:
                raise ConfigError(f"{family}/{loss}: {err}") from None
            excluded.append(f"{family}/{loss}: {err}")
            continue
        chosen.append((family, loss))
    if not chosen:
        raise ConfigError(f"compare: the data allows none of the selected cells; {excluded[0]}")
    by_seed: dict[int, PreparedDataset] = {}
    cells = []
    judged = cfg.evaluate.model_dump(mode="json")
    picture = PICTURE_IMAGES if cfg.data.image else PICTURE_POINTS
    for seed in range(cfg.seeds):
        for family, loss in chosen:
            base = cell_config(cfg, family, loss, seed, dataset)
            data = prepared_for(base.data)
            if seed not in by_seed:
                by_seed[seed] = data
                say("compare", f"seed {seed}: {data.dataset}/{data.version}"
                    f" ({data.rows['train']:,} train rows)")  # fmt: skip
            per_epoch = steps_per_epoch(data.rows["train"], base.train, 1)
            epochs_of = {b: epochs_for(b, per_epoch) for b in cfg.budgets}
            if len(set(epochs_of.values())) < len(epochs_of):
                raise ConfigError(
                    f"compare.budgets: {cfg.budgets} steps round to the same whole epochs for"
                    f" {family}/{loss} ({per_epoch:,} steps an epoch: {epochs_of}); choose budgets"
                    " at least an epoch apart"
                )
            for budget in cfg.budgets or [None]:
                epochs = base.train.epochs if budget is None else epochs_of[budget]
                tree = base.model_dump(mode="json")
                tree["train"]["epochs"] = epochs
                run = RunConfig.model_validate(tree)
                key = cell_key(run, data.version, {**judged, "seed": seed}, picture)
                tree["train"]["run_id"] = run_id = f"{family}-{key[:12]}"
                cells.append(Cell(family, loss, seed, budget, epochs * per_epoch,
                                  RunConfig.model_validate(tree), run_id, key))  # fmt: skip
    return Plan(cells, excluded, by_seed, dataset)


def train_cells(
    cells: list[Cell], cfg: CompareConfig, store: ArtifactStore, metric: str, offset: int,
    total: int,
) -> None:  # fmt: skip
    """The models without a record, as Ray Tune trials (:mod:`genai.tune.cells`)."""
    picture = PICTURE_IMAGES if cfg.data.image else PICTURE_POINTS
    models = [
        {
            "key": c.key,
            "name": c.name,
            "run_id": c.run_id,
            "loss": c.loss,
            "seed": c.seed,
            "budget": c.budget,
            "steps": c.steps,
            "config": c.config.model_dump(mode="json"),
            "evaluate": {**cfg.evaluate.model_dump(mode="json"), "seed": c.seed},
            "picture": picture,
            "picture_seed": PICTURE_SEED,
            "metric": metric,
        }
        for c in cells
    ]
    train_models(models, store, offset=offset, total=total)


def _compare(
    cfg: CompareConfig,
    store: ArtifactStore,
    comparison_id: str,
    metric: str,
    ray_address: str | None,
    wait: bool,
) -> dict[str, Any]:
    start = time.monotonic()
    ensure_ray(ray_address)
    planned = plan(cfg, store, ray_address, wait)
    cells = planned.cells
    missing = [c for c in cells if not store.exists(layout.cell_record(c.key))]
    rows = list(dict.fromkeys(c.row for c in cells))
    say(
        "compare",
        f"{comparison_id}: {len(rows)} cells x {cfg.seeds} seeds = {len(cells)} models;"
        f" {len(cells) - len(missing)} in the store, {len(missing)} to train",
    )
    for reason in planned.excluded:
        say("compare", f"left out: {reason}")
    if missing:
        train_cells(missing, cfg, store, metric, len(cells) - len(missing), len(cells))
    records = {c.key: read_record(store, c.key) for c in cells}
    lost = [c for c in cells if records[c.key] is None]
    if lost:
        raise RuntimeError(f"compare: {len(lost)} models left no record, e.g. {lost[0].run_id}")
    return finish(cfg, store, comparison_id, metric, planned, records, len(missing), start)


@dataclass(frozen=True)
class Outcome:
    """What the tables, pictures and report are made of: the compare, its models and their
    records, the leaderboard, and each row's name for people."""

    cfg: CompareConfig
    store: ArtifactStore
    comparison_id: str
    metric: str
    planned: Plan
    records: dict[str, dict[str, Any]]
    board: list[dict[str, Any]]
    name_of: Callable[[str], str]
    failed: list[str]  # the models that diverged: no metrics
    rows: dict[str, dict[int, dict[str, float]]]  # row -> seed -> metrics (judged_rows)

    @property
    def cells(self) -> list[Cell]:
        return self.planned.cells


def judged_rows(
    cells: Sequence[Cell], records: dict[str, dict[str, Any]]
) -> dict[str, dict[int, dict[str, float]]]:
    """Row -> seed -> metrics of the models that were judged (a diverged model has none; a row
    whose models all diverged is empty)."""
    rows: dict[str, dict[int, dict[str, float]]] = {c.row: {} for c in cells}
    for c in cells:
        if not records[c.key].get("error"):
            rows[c.row][c.seed] = records[c.key]["metrics"]
    return rows


def label(cells: Sequence[Cell], several_budgets: bool):
    """A row's name for people: ``gan/hinge`` (and its steps when there are several budgets)."""
    names = {c.row: c.name + (f" @ {c.steps:,} steps" if several_budgets else "") for c in cells}
    return lambda row: names[row]


def finish(
    cfg: CompareConfig,
    store: ArtifactStore,
    comparison_id: str,
    metric: str,
    planned: Plan,
    records: dict[str, dict[str, Any]],
    trained: int,
    start: float,
) -> dict[str, Any]:
    """The tables, the verdict, the pictures, the report and the summary (written last)."""
    cells = planned.cells
    name_of = label(cells, len(cfg.budgets) > 1)
    by_row = judged_rows(cells, records)
    failed = [f"{c.name} seed {c.seed} ({c.steps:,} steps): {records[c.key]['error']}"
              for c in cells if records[c.key].get("error")]  # fmt: skip
    if not any(by_row.values()):
        raise RuntimeError(f"compare: every model diverged; the first: {failed[0]}")
    planned_models = {row: sum(c.row == row for c in cells) for row in by_row}
    board = leaderboard(by_row, metric, planned_models)
    steps = {c.row: c.steps for c in cells}
    cell_of = {c.row: c for c in cells}
    for entry in board:
        c = cell_of[entry["row"]]
        cpu = max(records[x.key].get("cpu_s") or 0.0 for x in cells if x.row == c.row)
        entry |= {"cell": c.name, "family": c.family, "loss": c.loss, "steps": steps[c.row],
                  "cpu_s_max": cpu}  # fmt: skip
    budget = (
        f"{', '.join(f'{b:,}' for b in cfg.budgets)} steps"
        if cfg.budgets
        else "each recipe's steps"
    )
    verdict = sentence(board, metric, name_of, budget, cfg.seeds)
    weak = cfg.seeds < WEAK_BELOW
    outcome = Outcome(cfg, store, comparison_id, metric, planned, records, board, name_of, failed,
                      by_row)  # fmt: skip
    files = write_tables(outcome)
    files |= write_pictures(outcome)
    report = render_report(outcome, verdict, weak, files)
    files["report.md"] = store.write_bytes(
        layout.comparison_file(comparison_id, "report.md"), report.encode()
    )
    best = board[0]
    summary = {
        "comparison_id": comparison_id,
        "uri": store.key_uri(layout.comparison(comparison_id)),
        "metric": metric,
        "mode": mode_of(metric),
        "seeds": cfg.seeds,
        "budgets": cfg.budgets,
        "datasets": {s: p.summary() for s, p in planned.prepared.items()},
        "recipes": planned.dataset,
        "winner": name_of(best["row"]),
        "indistinguishable": [
            name_of(r["row"]) for r in board if r["verdict"] == "indistinguishable"
        ],
        "verdict": verdict,
        "weak": weak,
        "leaderboard": board,
        "excluded": planned.excluded,
        "failed": failed,
        "counts": {"models": len(cells), "trained": trained, "found": len(cells) - trained},
        "files": files,
        "wall_s": round(time.monotonic() - start, 1),
    }
    summary = finite(summary)  # JSON has no inf or NaN (leaderboard.parquet keeps them)
    store.write_json(layout.comparison_summary(comparison_id), summary)  # last: it is complete
    return summary


def finite(value: Any) -> Any:
    """``value`` with every inf or NaN float (a reverse KL when a model misses every mode, the
    sd of those) as None."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def floors_by_seed(cells: Sequence[Cell], records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each metric's floor, the mean over the seeds' splits."""
    seen: dict[int, dict[str, Any]] = {}
    for c in cells:
        if records[c.key]["floors"]:  # a diverged model was not judged
            seen.setdefault(c.seed, records[c.key]["floors"])
    names = {k for f in seen.values() for k, v in f.items() if v is not None}
    return {k: statistics.mean(f[k] for f in seen.values() if f.get(k) is not None) for k in names}


def write_tables(o: Outcome) -> dict[str, str]:
    cells, records = o.cells, o.records
    names = [m for m in METRICS if any(m in records[c.key]["metrics"] for c in cells)]
    extra = sorted({m for c in cells for m in records[c.key]["metrics"]} - set(names))
    columns: dict[str, list] = {k: [] for k in (
        "row", "family", "loss", "seed", "budget", "steps", "epochs", "batch_size", "cpu_s",
        "train_s", "evaluate_s", "sampler", "run_id", "key", "resumed_from_epoch", "error",
    )}  # fmt: skip
    for m in [*names, *extra]:
        columns[m], columns[f"floor_{m}"] = [], []
    for c in cells:
        r = records[c.key]
        for k in columns:
            if k == "row":
                columns[k].append(c.row)
            elif k.startswith("floor_"):
                columns[k].append(r["floors"].get(k[len("floor_") :]))
            elif k in r["metrics"]:
                columns[k].append(r["metrics"][k])
            elif k in names or k in extra:
                columns[k].append(None)
            else:
                columns[k].append(r.get(k) if k != "steps" else c.steps)
    table = pa.table(columns)
    files = {
        layout.CELLS_TABLE: o.store.write_table(
            layout.comparison_file(o.comparison_id, layout.CELLS_TABLE), table
        )
    }
    keys = sorted({k for e in o.board for k in e})
    board_table = pa.table({k: [e.get(k) for e in o.board] for k in keys})
    files[layout.LEADERBOARD_TABLE] = o.store.write_table(
        layout.comparison_file(o.comparison_id, layout.LEADERBOARD_TABLE), board_table
    )
    return files


def write_pictures(o: Outcome) -> dict[str, str]:
    cells, records = o.cells, o.records
    order = [e["row"] for e in o.board]
    by_row = {r: o.rows[r] for r in order if o.rows[r]}  # a row whose models all diverged: none
    named = {o.name_of(r): v for r, v in by_row.items()}
    best = o.name_of(order[0])
    files: dict[str, str] = {}

    def put(name: str, png: bytes) -> None:
        files[name] = o.store.write_bytes(layout.comparison_file(o.comparison_id, name), png)

    # the samples of every row's first judged seed, drawn with the same sampling seed, each in
    # data units by its own split's normalisation
    first = min(c.seed for c in cells)
    manifest = o.planned.prepared[first].manifest
    panels = []
    for row in by_row:
        c = next(x for x in cells if x.row == row and x.seed == min(by_row[row]))
        raw = np.load(io.BytesIO(o.store.read_bytes(layout.cell_samples(c.key))))
        own = o.planned.prepared[c.seed].manifest
        panels.append((o.name_of(row), denormalise(raw, own)))
    title = f"{o.comparison_id}: samples of each cell's first seed, best first"
    if o.cfg.data.image:
        put("samples.png", image_panels(panels, value_range(manifest), title))
    else:
        key = o.planned.prepared[first].key
        real = SplitReader(o.store, key, "test", manifest=manifest).read_all()[0]
        real = denormalise(real, manifest)
        modes = None if manifest.get("modes") is None else np.asarray(manifest["modes"])
        put("samples.png", point_panels(panels, real, modes, title))
    shown = [m for m in METRICS if all(m in s for r in by_row.values() for s in r.values())]
    shown = [o.metric, *[m for m in shown if m != o.metric]][:6]
    put("metrics.png", dot_plots(named, shown, floors_by_seed(cells, records), best))
    if "modes" in shown:
        put("quality.png", quality_plot(named, "modes", "high_quality", best))
    else:
        put("quality.png", quality_plot(named, "precision", "recall", best))
    if len(o.cfg.budgets) > 1:
        curves: dict[str, list[tuple[int, list[float]]]] = {}
        for row in by_row:
            c = next(x for x in cells if x.row == row)
            values = [s[o.metric] for s in by_row[row].values()]
            curves.setdefault(c.name, []).append((c.steps, values))
        floor = floors_by_seed(cells, records).get(o.metric)
        put("budgets.png", budget_plot(curves, o.metric, floor))
    return files


def budget_text(cfg: CompareConfig) -> str:
    if not cfg.budgets:
        return "each recipe's own steps"
    shown = ", ".join(f"{b:,}" for b in cfg.budgets)
    return f"{shown} training steps (whole epochs: the fewest that reach it)"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def render_report(o: Outcome, verdict: str, weak: bool, files: dict[str, str]) -> str:
    """The comparison in Markdown: the verdict, the leaderboard, the pictures, every model."""
    cfg, metric, planned, board, name_of = o.cfg, o.metric, o.planned, o.board, o.name_of
    cells, records = o.cells, o.records
    floors = floors_by_seed(cells, records)
    better = "higher" if metric in HIGHER_IS_BETTER else "lower"
    data = planned.prepared[min(planned.prepared)]
    ev = cfg.evaluate
    others = [m for m in METRICS if m != metric and f"{m}_mean" in board[0]][:4]
    lines = [
        f"# Comparison {o.comparison_id}",
        "",
        f"**{verdict}**",
        "",
    ]
    if weak:
        lines += [
            f"> The verdict is weak: {cfg.seeds} seed{'s' if cfg.seeds != 1 else ''} per cell"
            f" (fewer than {WEAK_BELOW}); the 95% intervals are wide. Run it again with more"
            " `--seeds`: only the new seeds train.",
            "",
        ]
    lines += [
        f"- data: `{data.dataset}` ({cfg.data.source}), a split per seed:"
        f" {', '.join(p.version for p in planned.prepared.values())};"
        f" recipes: the {planned.dataset} recipes",
        f"- judged: {ev.n_samples} samples ({ev.sampler} sampler) against the {ev.split} split,"
        f" in the metrics of `genai evaluate`; ranked by **{metric}** ({better} is better)",
        f"- budget: {budget_text(cfg)}; each model trains on one CPU at its recipe's global batch",
        f"- {len(cells)} models: {len({c.row for c in cells})} cells x {cfg.seeds} seeds",
        "",
        "## Leaderboard",
        "",
        f"The interval is the 95% t-interval of the mean difference from the best in {metric},"
        " paired by seed (positive: worse); for FID, MMD^2 and reverse KL, of the log ratio, shown"
        " as a ratio (x2 [x1.5, x2.6]: twice the best's). A cell whose interval holds 0 (a ratio"
        " interval, 1) cannot be told apart from the best.",
        "",
        "| rank | cell | steps | "
        + f"{metric} (floor {_fmt(floors.get(metric), 3)})"
        + " | vs best [95% interval] | verdict | "
        + " | ".join(others)
        + " | CPU s (max) |",
        "|---:|---|---:|---:|---|---|" + "---:|" * len(others) + "---:|",
    ]
    for e in board:
        interval = shown_interval(e)
        cols = " | ".join(
            f"{_fmt(e.get(f'{m}_mean'), 3)} ± {_fmt(e.get(f'{m}_sd'), 2)}" for m in others
        )
        lines.append(
            f"| {e['rank']} | {name_of(e['row'])} | {e['steps']:,}"
            f" | {_fmt(e.get(f'{metric}_mean'))} ± {_fmt(e.get(f'{metric}_sd'), 2)}"
            f" | {interval} | {e['verdict']} | {cols}"
            f" | {e['cpu_s_max']:.0f} |"
        )
    lines += ["", "## Pictures", ""]
    for name, what in (
        ("samples.png", "samples of every cell (its first seed's model, one sampling seed)"),
        ("metrics.png", "every metric: each seed, the mean and its 95% interval"),
        (
            "quality.png",
            "precision against recall (2-D mixtures: high-quality share against modes)",
        ),
        ("budgets.png", f"{metric} against the budget"),
    ):
        if name in files:
            lines += [f"![{what}]({name})", ""]
    if planned.excluded:
        lines += ["## Left out (the data does not allow them)", ""]
        lines += [f"- {reason}" for reason in planned.excluded] + [""]
    if o.failed:
        lines += ["## Diverged (no metrics; the leaderboard holds their cells' other seeds)", ""]
        lines += [f"- {reason}" for reason in o.failed] + [""]
    lines += [
        "## Every model",
        "",
        f"| cell | seed | steps | {metric} | floor | CPU s | judged in s | run |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        r = records[c.key]
        lines.append(
            f"| {name_of(c.row)} | {c.seed} | {c.steps:,}"
            f" | {'diverged' if r.get('error') else _fmt(r['metrics'].get(metric))}"
            f" | {_fmt(r['floors'].get(metric), 3)} | {r['cpu_s']:.0f} | {r['evaluate_s']:.0f}"
            f" | {r['run_id']} |"
        )
    return "\n".join(lines) + "\n"


def _track(tracking, parent, store: ArtifactStore, comparison_id: str, summary: dict) -> None:
    """The comparison's MLflow run: the winner's metric and the files; a child run per
    leaderboard row with its means, sds and interval."""
    best = summary["leaderboard"][0]
    metric = summary["metric"]
    parent.log_metrics({f"best_{metric}": best.get(f"{metric}_mean"), **summary["counts"]})
    names = [layout.comparison_file(comparison_id, n) for n in summary["files"]]
    parent.log_files(store_files(store, *names))
    for e in summary["leaderboard"]:
        params = {"family": e["family"], "loss": e["loss"], "steps": e["steps"],
                  "seeds": e["seeds"], "verdict": e["verdict"]}  # fmt: skip
        tags = {"genai.kind": "comparison-cell", "genai.comparison": comparison_id}
        key = layout.comparison_row(comparison_id, e["row"])
        with tracked(tracking, key, e["cell"], params, tags) as child:
            if child is not None:
                numbers = {k: v for k, v in e.items() if isinstance(v, int | float) and
                           not isinstance(v, bool) and v is not None}  # fmt: skip
                child.log_metrics(numbers)
