"""A comparison's pictures, as PNG bytes: the samples of every cell side by side, a dot plot per
metric with each row's seeds and 95% interval, precision against recall (modes against
high-quality share for 2-D mixtures), and with several budgets the primary metric against the
budget."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from scipy import stats  # noqa: E402

from genai.plots import mosaic  # noqa: E402

TITLE = 16  # pixels of a panel's title strip
PANEL_GAP = 12


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="PNG", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def image_panels(
    panels: Sequence[tuple[str, np.ndarray]], value_range: tuple[float, float], title: str
) -> bytes:
    """Each cell's samples as a square grid under its name, the panels in rows of four: pixels
    drawn as they are (small images scaled up, nearest), the data's range mapped to 0..255."""
    tiles = [(name, mosaic(images, value_range)) for name, images in panels]
    h = max(t.shape[0] for _, t in tiles) + TITLE
    w = max(max(t.shape[1] for _, t in tiles), 7 * max(len(n) for n, _ in tiles))
    cols = min(4, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    canvas = np.full(
        (TITLE + rows * (h + PANEL_GAP), cols * (w + PANEL_GAP), 3), 255, dtype=np.uint8
    )
    places = []
    for i, (name, tile) in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = TITLE + r * (h + PANEL_GAP), c * (w + PANEL_GAP)
        canvas[y + TITLE : y + TITLE + tile.shape[0], x : x + tile.shape[1]] = tile
        places.append((name, x, y))
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    draw.text((2, 2), title, fill=(0, 0, 0))
    for name, x, y in places:
        draw.text((x + 2, y + 2), name, fill=(0, 0, 0))
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def point_panels(
    panels: Sequence[tuple[str, np.ndarray]],
    real: np.ndarray,
    modes: np.ndarray | None,
    title: str,
) -> bytes:
    """Each cell's samples (the first two coordinates) over the real test rows, true modes
    marked, on one scale."""
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    lo = np.minimum(
        real[:, :2].min(0), np.percentile(np.concatenate([p[:, :2] for _, p in panels]), 1, axis=0)
    )
    hi = np.maximum(
        real[:, :2].max(0), np.percentile(np.concatenate([p[:, :2] for _, p in panels]), 99, axis=0)
    )
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (name, points) in zip(axes.flat, panels, strict=False):
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.8", label="real (test)")
        ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:blue", label="samples")
        if modes is not None:
            ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="tab:red", s=30, label="modes")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def _interval(values: Sequence[float]) -> float:
    """Half the width of the 95% t-interval of the mean (0 for one value)."""
    n = len(values)
    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def dot_plots(
    rows: Mapping[str, Mapping[int, Mapping[str, float]]],
    metrics: Sequence[str],
    floors: Mapping[str, float],
    best: str,
) -> bytes:
    """One panel per metric: each row's seeds as dots, its mean with a 95% interval, the floor
    (as many real rows) as a dashed line; the best row in red."""
    names = list(rows)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.2 * len(metrics), 0.4 * len(names) + 1.4), squeeze=False
    )
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for y, name in enumerate(names):
            values = [s[metric] for s in rows[name].values() if s.get(metric) is not None]
            if not values:
                continue
            colour = "tab:red" if name == best else "tab:blue"
            ax.scatter(values, [y] * len(values), s=12, c=colour, alpha=0.5)
            ax.errorbar(np.mean(values), y, xerr=_interval(values), fmt="|", c=colour, ms=12,
                        capsize=3)  # fmt: skip
        if floors.get(metric) is not None:
            ax.axvline(floors[metric], ls="--", c="0.5", lw=1)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if ax is axes.flat[0] else [""] * len(names), fontsize=8)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_title(metric, fontsize=9)
        if metric in ("fid", "mmd2", "reverse_kl") and all(
            v > 0 for r in rows.values() for s in r.values() if (v := s.get(metric)) is not None
        ):
            ax.set_xscale("log")
    fig.suptitle("each seed (dots), mean and 95% interval; dashed: the floor", fontsize=9, y=1.04)
    return _png(fig)


def quality_plot(
    rows: Mapping[str, Mapping[int, Mapping[str, float]]], x: str, y: str, best: str
) -> bytes:
    """``y`` against ``x`` (recall against precision, or high-quality share against modes):
    a marker per seed, the row's mean labelled."""
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab20")
    for i, (name, seeds) in enumerate(rows.items()):
        xs = [s[x] for s in seeds.values()]
        ys = [s[y] for s in seeds.values()]
        colour = cmap(i % 20)
        ax.scatter(xs, ys, s=14, color=colour, alpha=0.5)
        ax.scatter(np.mean(xs), np.mean(ys), s=50, color=colour, edgecolor="k",
                   marker="*" if name == best else "o", label=name)  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{y} against {x}: each seed, and the mean (star: best)", fontsize=9)
    return _png(fig)


def budget_plot(
    curves: Mapping[str, Sequence[tuple[int, Sequence[float]]]], metric: str, floor: float | None
) -> bytes:
    """``metric`` against training steps for each cell: mean and 95% interval at each budget."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        points = sorted(points)
        steps = [p[0] for p in points]
        means = [float(np.mean(p[1])) for p in points]
        ax.errorbar(steps, means, yerr=[_interval(p[1]) for p in points], marker="o", capsize=3,
                    label=name)  # fmt: skip
    if floor is not None:
        ax.axhline(floor, ls="--", c="0.5", lw=1, label="floor")
    ax.set_xscale("log")
    ax.set_xlabel("training steps")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title(f"{metric} against the budget (mean, 95% interval)", fontsize=9)
    return _png(fig)
