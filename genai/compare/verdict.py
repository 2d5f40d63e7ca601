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
says so. No tool we know of states this; Lucic et al. (2018) found most GAN losses
indistinguishable given enough seeds.
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
    rows: Mapping[str, Mapping[int, Mapping[str, float]]], metric: str
) -> list[dict[str, Any]]:
    """``rows``: row name -> seed -> metrics. The rows best first, each with its mean and sd of
    every metric, and against the best by ``metric``: the paired mean difference (positive:
    worse, whichever way the metric points), its interval and the verdict."""
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0  # differences in "worse" units
    means = {name: mean_sd([s[metric] for s in seeds.values()])[0] for name, seeds in rows.items()}
    # a NaN mean (an inf minus an inf) ranks last
    ranked = sorted(rows, key=lambda n: (math.isnan(means[n]), sign * means[n]))
    best = ranked[0]
    out = []
    for rank, name in enumerate(ranked, 1):
        seeds = rows[name]
        shared = sorted(set(seeds) & set(rows[best]))
        diffs = [sign * (seeds[s][metric] - rows[best][s][metric]) for s in shared]
        interval = None if name == best else paired_interval(diffs)
        if name == best:
            verdict = "best"
        elif interval is None:
            verdict = "unknown"
        else:
            verdict = "indistinguishable" if interval[0] <= 0.0 <= interval[1] else "worse"
        entry: dict[str, Any] = {"rank": rank, "row": name, "seeds": len(seeds)}
        for m in sorted({k for s in seeds.values() for k in s}):
            values = [s[m] for s in seeds.values() if m in s and s[m] is not None]
            if values:
                entry[f"{m}_mean"], entry[f"{m}_sd"] = mean_sd(values)
        entry |= {
            "diff": mean_sd(diffs)[0] if diffs and name != best else 0.0,
            "diff_low": interval[0] if interval else None,
            "diff_high": interval[1] if interval else None,
            "shared_seeds": len(shared),
            "verdict": verdict,
        }
        out.append(entry)
    return out


def sentence(board: Sequence[Mapping[str, Any]], metric: str, label, budget: str) -> str:
    """One sentence: the winner and which others cannot be told apart from it. ``label`` names a
    row for people."""
    best = board[0]
    seeds = min(r["shared_seeds"] for r in board)
    same = [label(r["row"]) for r in board[1:] if r["verdict"] == "indistinguishable"]
    unknown = [label(r["row"]) for r in board[1:] if r["verdict"] == "unknown"]
    head = (
        f"{label(best['row'])} is best by {metric} ({best[f'{metric}_mean']:.4g} +-"
        f" {best[f'{metric}_sd']:.2g} over {best['seeds']} seeds)"
    )
    if len(board) == 1:
        return head + "; it was the only cell."
    at = f"at {budget} and {seeds} seed{'s' if seeds != 1 else ''}"
    if unknown and not same:
        return head + f"; with one seed no other can be told apart from it or not ({at})."
    if not same:
        return head + f"; every other cell is worse, beyond the 95% interval ({at})."
    return head + f"; {', '.join(same)} cannot be told apart from it {at}."
