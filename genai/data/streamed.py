"""A streamed preparation: a user's files (or the generated shapes) read in parallel Ray tasks,
one read unit each, with the command's memory and every task's bounded by a unit, not the data.

1. Plan (:mod:`genai.data.plans`): headers only, in the command's process.
2. Count (labelled tabular data, and CSV): each task counts its unit's rows and label values;
   the command maps labels to classes and numbers every class's rows across units.
3. Statistics (only when the normalisation is fitted: ``standard``, or ``minmax`` on data that
   has no fixed range): each task returns per-split sums, squares and extremes.
4. Write: each task splits its rows (:func:`genai.data.split.streamed_codes`), normalises them,
   writes one Parquet file per split under the staging prefix and returns its statistics. An
   image folder's ``auto`` normalisation is its pixel format's range (8-bit: / 255), so its
   files are read once.

Tasks report problems with the data as values, not exceptions; the command raises one
:class:`~genai.data.sources.DataError` naming the files, and the staging prefix is removed.
At most ``2 x CPUs`` units are in flight; a progress line at least every 10 s.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import ray

from genai.config import DataConfig, SplitConfig
from genai.data import chunks, plans
from genai.data.files import PIXEL_RANGE, Listing, Plan, Unit
from genai.data.sources import DataError
from genai.data.split import SPLITS, class_counts
from genai.progress import heartbeat
from genai.storage import ArtifactStore

PROGRESS_S = 10.0


def run_tasks(
    fn: Callable[[Plan, Unit], dict[str, Any]],
    plan: Plan,
    units: list[Unit],
    on_result: Callable[[dict[str, Any]], None],
    *,
    what: str,
    noun: str,
) -> None:
    """``fn(plan, unit)`` as a Ray task per unit, results handed to ``on_result`` as they come."""
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    plan_ref = ray.put(plan)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    total = sum(u.count for u in units) or len(units)
    pending: dict[Any, Unit] = {}
    done, started, shown = 0, time.monotonic(), time.monotonic()
    queue = list(reversed(units))
    # a unit can take longer than 10 s (a large CSV file): the heartbeat repeats the last line
    with heartbeat("prepare") as status:
        status(f"{what}: {total:,} {noun} in {len(units):,} Ray task{'s' * (len(units) > 1)}")
        try:
            while queue or pending:
                while queue and len(pending) < window:
                    unit = queue.pop()
                    pending[remote.remote(plan_ref, unit)] = unit
                ready, _ = ray.wait(list(pending), num_returns=1)
                unit = pending.pop(ready[0])
                on_result(ray.get(ready[0]))
                done += unit.count or 1
                if time.monotonic() - shown >= PROGRESS_S and (queue or pending):
                    rate = done / (time.monotonic() - started)
                    status(f"{what}: {done:,}/{total:,} {noun} ({rate:,.0f}/s)")
                    shown = time.monotonic()
        finally:  # a task failed in Ray, or an interrupt: stop the others (asynchronously)
            for ref in pending:
                with contextlib.suppress(Exception):  # the error that got us here wins
                    ray.cancel(ref, force=True)


def _raise_errors(errors: list[str], uri: str) -> None:
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise DataError("; ".join(errors[:3]) + more)


def planned(cfg: DataConfig, listing: Listing) -> tuple[Plan, list[Unit], str]:
    """The plan and units, classes numbered (a counting pass where the headers cannot tell)."""
    mode = ""
    if cfg.source == "images":
        plan, units, mode = plans.plan_images(cfg, listing)
    elif cfg.source == "shapes":
        plan, units = plans.plan_shapes(cfg, listing)
    elif cfg.source == "npy":
        plan, units = plans.plan_npy(cfg, listing)
    else:
        plan, units = plans.plan_tabular(cfg, listing)
    if cfg.source in ("parquet", "csv", "npy"):
        if plans.needs_count(plan):
            counted: list[dict[str, Any]] = []
            noun = "rows" if any(u.count for u in units) else "files"  # CSV: rows unknown yet
            run_tasks(chunks.count_labels, plan, units, counted.append,
                      what="counting rows", noun=noun)  # fmt: skip
            _raise_errors([e for c in counted for e in c["errors"]], cfg.uri or "")
            plan, units = plans.with_counts(plan, units, counted)
        else:
            plan, units = plans.numbered(plan, units)
    rows = sum(plan.sizes.values())
    plan = plan.writing(total=rows)
    if rows == 0:
        raise DataError(f"data.uri: {cfg.uri} has no rows")
    short = [s for s, n in zip(SPLITS, split_rows(plan), strict=True) if n == 0]
    if short:
        raise DataError(f"data: {rows} rows are too few to fill the {', '.join(short)} split(s)")
    return plan, units, mode


def split_rows(plan: Plan) -> tuple[int, int, int]:
    """Rows each split will get, from the class sizes alone."""
    split = SplitConfig(**plan.split)
    val = test = 0
    for k in plan.sizes.values():
        v, t = class_counts(k, split)
        val, test = val + v, test + t
    return sum(plan.sizes.values()) - val - test, val, test


def fixed_range(cfg: DataConfig, plan: Plan, mode: str) -> float | None:
    """The range an image source's ``auto`` normalisation divides by, when its pixel format
    fixes one (8-bit: 255); None when the normalisation must be fitted on the train split."""
    if cfg.normalise != "auto" or plan.kind != "image":
        return None
    if cfg.source == "shapes":
        return 255.0
    return PIXEL_RANGE.get(mode) if cfg.source == "images" else None


def read_pass(plan: Plan, units: list[Unit], *, what: str) -> dict[str, Any]:
    """One pass of :func:`chunks.process_unit` over every unit: statistics per split (merged
    as results arrive), the files written, the errors."""
    stats = {s: chunks.empty_stats(plan.width) for s in SPLITS}
    parts: dict[str, list] = {s: [] for s in SPLITS}
    errors: list[str] = []

    def add(result: dict[str, Any]) -> None:
        errors.extend(result["errors"])
        for s in SPLITS:
            chunks.merge_stats(stats[s], result["stats"][s])
            if s in result["parts"]:
                parts[s].append(result["parts"][s])

    noun = "images" if plan.kind == "image" else "rows"
    run_tasks(chunks.process_unit, plan, units, add, what=what, noun=noun)
    _raise_errors(errors, plan.uri)
    for s in SPLITS:
        parts[s].sort()
    return {"stats": {s: chunks.finish_stats(a) for s, a in stats.items()}, "parts": parts}


def write_streamed(
    cfg: DataConfig,
    store: ArtifactStore,
    listing: Listing,
    tmp: str,
    metadata: dict[str, Any],
    normalisation: Callable[[dict[str, Any]], dict[str, Any]],
    check: Callable[[dict[str, Any]], None],
) -> tuple[Plan, dict[str, Any], dict[str, Any]]:
    """Plan, (fit the normalisation,) write under ``tmp``: (plan, pass result, normalisation).
    ``normalisation(train stats)`` gives the affine map, ``check(stats)`` refuses bad rows."""
    plan, units, mode = planned(cfg, listing)
    plan = plan.writing(store=store.uri, staging=tmp)
    rng = fixed_range(cfg, plan, mode)
    if rng is not None:
        norm = {"method": "pixel_range", "shift": [0.0] * plan.width, "scale": [rng] * plan.width}
    elif cfg.normalise == "none":
        norm = {"method": "none", "shift": [0.0] * plan.width, "scale": [1.0] * plan.width}
    else:
        fitted = read_pass(plan, units, what="statistics")
        check(fitted["stats"])
        norm = normalisation(fitted["stats"]["train"])
    meta = {**metadata, "shape": list(plan.shape), "kind": plan.kind, "normalisation": norm,
            "label": plan.labelled}  # fmt: skip
    plan = plan.writing(shift=tuple(norm["shift"]), scale=tuple(norm["scale"]), metadata=meta)
    result = read_pass(plan, units, what="reading and writing")
    check(result["stats"])
    return plan, result, norm
