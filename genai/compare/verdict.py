"""The verdict: each leaderboard row against the best, paired by seed.

A row is one cell (family and loss) at one budget; its seeds are its models. The rows are ranked
by the mean of the primary metric. For each row, the differences from the best row seed by seed
(a seed draws the same data split and the same initialisation seed for both, so the pairs share
what a seed varies) give a 95% t-interval of the mean difference: ``mean +- t(0.975, n - 1) *
sd / sqrt(n)`` over the ``n`` seeds both hold. A row whose interval holds 0 cannot be told apart
from the best at this budget and seed count (``indistinguishable``); one whose interval lies
wholly on the worse side is ``worse``; with fewer than two shared seeds there is no interval
(``unknown``). The t-interval assumes the differences are roughly normal; with 3 seeds it is
wide (t = 4.30), which is the honest answer: below 5 seeds the verdict is weak, and the console
says so.

FID, MMD^2 and reverse KL are distances that vary by a factor from seed to seed, more so the
larger they are (a collapsing GAN at FID 30, 70, 41 against a model at 2.1, 3.5, 2.2: the
differences 28-67 make an interval that holds 0 although every seed is 13-20x worse). For
these the pairs are compared as log ratios, ``log(row / best)``, and the interval is reported
as a ratio (``x3.2 [x2.1, x4.9]``); the verdict is the same rule (the ratio interval holds 1).
This needs every value positive: when a value is 0 or negative (MMD^2's unbiased estimate can
be), the differences are taken as they are. Shares and rates (high-quality share, precision,
recall, coverage) and KID (an unbiased estimate around 0) are compared as differences.

No tool we know of states this; Lucic et al. (2018) found most GAN losses indistinguishable
given enough seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from genai.evaluate.names import HIGHER_IS_BETTER

LEVEL = 0.95
WEAK_BELOW = 5  # seeds: fewer make a weak verdict
RATIO_METRICS = frozenset({"fid", "mmd2", "reverse_kl"})  # compared as log ratios


def on_log_scale(rows: Mapping[str, Mapping[int, Mapping[str, float]]], metric: str) -> bool:
    """Whether ``metric`` is compared as log ratios here: a distance, every value positive."""
    values = [s[metric] for seeds in rows.values() for s in seeds.values()]
    return metric in RATIO_METRICS and all(v > 0 for v in values)


def paired_interval(diffs: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The ``level`` t-interval of the mean of paired differences; None below two pairs."""
    n = len(diffs)
    if n < 2:
        return None
    mean, sd = mean_sd(diffs)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample sd (0 for one value); an infinite value (reverse KL of a model that
    misses every mode) makes them inf and nan, as they are."""
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0


def leaderboard(
    rows: Mapping[str, Mapping[int, Mapping[str, float]]],
    metric: str,
    planned: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """``rows``: row name -> seed -> metrics of its judged models; ``planned``: row name -> the
    models it has (default: as many as it judged). The rows best first, each with its mean and
    sd of every metric, and against the best by ``metric``: the paired mean difference
    (positive: worse, whichever way the metric points), its interval and the verdict.

    A row with a diverged model (fewer judged than planned) is ``diverged``: its mean is over
    other seeds than the rest's, so it ranks after every complete row and gets no interval; the
    best is the best complete row (or, when none is complete, the best of all)."""
    planned = planned or {name: len(seeds) for name, seeds in rows.items()}
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0  # differences in "worse" units
    log = on_log_scale(rows, metric)

    def scaled(v: float) -> float:
        return math.log(v) if log else v

    means = {
        name: mean_sd([s[metric] for s in seeds.values()])[0] if seeds else math.nan
        for name, seeds in rows.items()
    }
    complete = {name for name, seeds in rows.items() if seeds and len(seeds) == planned[name]}

    def order(name: str) -> tuple:  # complete rows first; a NaN mean (inf - inf) last
        return (
            bool(complete) and name not in complete,
            math.isnan(means[name]),
            sign * means[name],
        )

    ranked = sorted(rows, key=order)
    best = ranked[0]
    out = []
    for rank, name in enumerate(ranked, 1):
        seeds = rows[name]
        shared = sorted(set(seeds) & set(rows[best]))
        diffs = [sign * (scaled(seeds[s][metric]) - scaled(rows[best][s][metric])) for s in shared]
        interval = None if name == best else paired_interval(diffs)
        if name == best:
            verdict = "best"
        elif complete and name not in complete:
            verdict, interval = "diverged", None
        elif interval is None or any(math.isnan(v) for v in interval):
            verdict, interval = "unknown", None
        else:
            verdict = "indistinguishable" if interval[0] <= 0.0 <= interval[1] else "worse"
        entry: dict[str, Any] = {"rank": rank, "row": name, "seeds": len(seeds),
                                 "diverged": planned[name] - len(seeds)}  # fmt: skip
        for m in sorted({k for s in seeds.values() for k in s}):
            values = [s[m] for s in seeds.values() if m in s and s[m] is not None]
            if values:
                entry[f"{m}_mean"], entry[f"{m}_sd"] = mean_sd(values)
        entry |= {
            "diff": mean_sd(diffs)[0] if interval is not None else (0.0 if name == best else None),
            "diff_low": interval[0] if interval else None,
            "diff_high": interval[1] if interval else None,
            "shared_seeds": len(shared),
            "scale": "log" if log else "linear",
            "verdict": verdict,
        }
        out.append(entry)
    return out


def shown_interval(entry: Mapping[str, Any]) -> str:
    """``+2.1 [+0.4, +3.8]``, or for a log ratio ``x3.2 [x2.1, x4.9]``; '' without one."""
    if entry.get("diff_low") is None:
        return ""
    d, lo, hi = entry["diff"], entry["diff_low"], entry["diff_high"]
    if entry.get("scale") == "log":
        return f"x{math.exp(d):.3g} [x{math.exp(lo):.3g}, x{math.exp(hi):.3g}]"
    return f"{d:+.3g} [{lo:+.3g}, {hi:+.3g}]"


def sentence(
    board: Sequence[Mapping[str, Any]], metric: str, label, budget: str, seeds: int
) -> str:
    """One sentence: the winner, which others cannot be told apart from it, and which could not
    be judged against it. ``label`` names a row for people."""
    best = board[0]
    named = {v: [label(r["row"]) for r in board[1:] if r["verdict"] == v]
             for v in ("indistinguishable", "unknown", "diverged")}  # fmt: skip
    head = (
        f"{label(best['row'])} is best by {metric} ({best[f'{metric}_mean']:.4g} +-"
        f" {best[f'{metric}_sd']:.2g} over {best['seeds']} seeds)"
    )
    if len(board) == 1:
        return head + "; it was the only cell."
    at = f"at {budget} and {seeds} seed{'s' if seeds != 1 else ''}"
    parts = []
    if named["indistinguishable"]:
        parts.append(f"{', '.join(named['indistinguishable'])} cannot be told apart from it {at}")
    else:
        parts.append(f"no other cell is indistinguishable from it {at}")
    if named["unknown"]:
        parts.append(f"{', '.join(named['unknown'])} could not be compared with it (too few"
                     " shared seeds)")  # fmt: skip
    if named["diverged"]:
        parts.append(f"{', '.join(named['diverged'])} had a model diverge")
    return head + "; " + "; ".join(parts) + "."
