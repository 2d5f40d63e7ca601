"""The trial table (one row per trial) and the sweep plot, from a Tune ResultGrid."""

from __future__ import annotations

import io
import math
import os
from typing import Any

import pyarrow as pa

from genai.evaluate.names import METRICS
from genai.tune.space import SearchSpace, trial_epochs


def error_line(error: BaseException | None) -> str | None:
    """The line of a trial's error that names the exception (not the whole traceback)."""
    if error is None:
        return None
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln.split(":")[0] or "Exception" in ln.split(":")[0]]
    return (named[-1] if named else lines[-1] if lines else type(error).__name__)[:500]


def trials_table(grid, space: SearchSpace, base_epochs: int) -> pa.Table:
    """One row per trial; ``finished`` when it trained all its epochs (its own ``train.epochs``
    where the space sweeps it, else ``base_epochs``), ``stopped`` when ASHA ended it first."""
    rows: list[dict[str, Any]] = []
    for result in grid:
        config = result.config or {}
        frame = result.metrics_dataframe
        history = frame.to_dict("records") if frame is not None and len(frame) else []
        # one score per epoch: a trial restored from an older checkpoint after its driver died
        # reports an epoch again (with the same numbers: epochs are seeded), keep the last; an
        # epoch whose report the dead driver never saw (a wide trial checkpoints first), or that
        # was not judged (sweep.judge_every), is NaN
        by_epoch = {int(h["epoch"]): float(h["score"]) for h in history if "score" in h}
        done = max(by_epoch) + 1 if by_epoch else 0
        scores = [by_epoch.get(e, math.nan) for e in range(done)]
        last = history[-1] if history else {}
        own = trial_epochs(config, base_epochs)
        status = "failed" if result.error else ("finished" if done >= own else "stopped")
        row = {
            "trial_id": last.get("trial_id") or os.path.basename(str(result.path)),
            **{p.path: config.get(p.path) for p in space.params},
            "seeds": last.get("seeds"),
            "epochs": done,
            "score_by_epoch": scores,
            "score": scores[-1] if scores else None,
            "score_std": float(last["score_std"]) if "score_std" in last else None,
            "status": status,
            "error": error_line(result.error),
            "wall_s": float(last.get("time_total_s", 0.0)) if last else None,
            "workers": int(last.get("workers", 1)),
            # the trial's process (a wide trial's driver): one-worker trials reuse processes
            "pid": int(last["pid"]) if "pid" in last else None,
        }
        for metric in METRICS:  # the Judge's metrics at the last epoch, as evaluate names them
            if metric in last:
                row[metric] = float(last[metric])
        rows.append(row)
    for p in space.params:  # a choice of mixed types becomes text
        kinds = {type(r[p.path]) for r in rows if r[p.path] is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            for r in rows:
                r[p.path] = None if r[p.path] is None else str(r[p.path])
    return pa.Table.from_pylist(sorted(rows, key=lambda r: r["trial_id"]))


def leaderboard(rows: list[dict[str, Any]], mode: str, top: int = 20) -> list[dict[str, Any]]:
    """Trials best first by ``mode`` ("min" or "max"), unscored ones last; without the
    per-epoch scores and errors."""
    sign = 1 if mode == "min" else -1
    ranked = sorted(rows, key=lambda r: (r["score"] is None, sign * (r["score"] or 0)))
    skip = {"score_by_epoch", "error"}
    return [{k: v for k, v in r.items() if k not in skip} for r in ranked[:top]]


def plot_sweep(rows: list[dict[str, Any]], space: SearchSpace, metric: str, mode: str) -> bytes:
    """The score against each swept parameter (one panel each); failed trials left out."""
    import matplotlib  # 0.3 s: a finished sweep's answer from the store reads this module

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["score"] is not None and r["status"] != "failed"]
    n = len(space.params)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, p in zip(axes[0], space.params, strict=True):
        values = [r[p.path] for r in ok]
        numeric = all(isinstance(v, int | float) for v in values)
        colors = ["tab:blue" if r["status"] == "finished" else "tab:orange" for r in ok]
        if numeric:
            ax.scatter(values, [r["score"] for r in ok], c=colors)
            if p.kind == "loguniform":
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.scatter([labels.index(str(v)) for v in values], [r["score"] for r in ok], c=colors)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_xlabel(p.path, fontsize=8)
        better = "lower" if mode == "min" else "higher"
        ax.set_ylabel(f"{metric} ({better} is better)", fontsize=8)
    fig.suptitle("blue: ran to the end, orange: stopped early by ASHA", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
