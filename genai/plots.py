"""Pictures as PNG bytes: image grids (drawn pixel for pixel), 2-D scatter plots with the true
modes, loss curves."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


HEADER = 18  # pixels of the title strip above an image grid
GAP = 2  # pixels between cells
CELL = 64  # a cell is at least this many pixels wide (small images are scaled up, nearest)


def mosaic(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) images in data units -> one (rows, cols, 3) uint8 picture: the
    values mapped from ``value_range`` to 0..255 (clipped), a square grid with white gaps."""
    lo, hi = value_range
    x = (np.asarray(images, dtype=np.float64) - lo) / (hi - lo if hi > lo else 1.0)
    x = np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
    if x.ndim == 3:  # grey (N, H, W)
        x = np.repeat(x[..., None], 3, axis=-1)
    elif x.shape[1] == 1:
        x = np.repeat(x.transpose(0, 2, 3, 1), 3, axis=-1)
    else:
        x = x.transpose(0, 2, 3, 1)  # (N, H, W, 3)
    n, h, w, _ = x.shape
    zoom = max(1, CELL // max(h, w))
    x = x.repeat(zoom, axis=1).repeat(zoom, axis=2)
    h, w = h * zoom, w * zoom
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + GAP) : r * (h + GAP) + h, c * (w + GAP) : c * (w + GAP) + w] = x[i]
    return out


def image_grid(
    images: np.ndarray,
    *,
    value_range: tuple[float, float],
    title: str = "",
    real: np.ndarray | None = None,
    max_images: int = 64,
) -> bytes:
    """A PNG of image samples in data units (``value_range``: the data's low and high), with
    real rows beside them when given, a title strip above: pixels drawn as they are, each
    image scaled up to at least 64 pixels with nearest-neighbour copies."""
    panels = [("samples", mosaic(images[:max_images], value_range))]
    if real is not None:
        panels.append(("real (test split)", mosaic(real[:max_images], value_range)))
    height = max(p.shape[0] for _, p in panels)
    width = sum(p.shape[1] for _, p in panels) + 16 * (len(panels) - 1)
    canvas = np.full((HEADER * 2 + height, max(width, 8 * len(title) + 8), 3), 255, np.uint8)
    x0 = 0
    for _, panel in panels:
        canvas[2 * HEADER : 2 * HEADER + panel.shape[0], x0 : x0 + panel.shape[1]] = panel
        x0 += panel.shape[1] + 16
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    draw.text((2, 2), title, fill=(0, 0, 0))
    x0 = 0
    for name, panel in panels:
        draw.text((x0 + 2, HEADER + 2), name, fill=(0, 0, 0))
        x0 += panel.shape[1] + 16
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def scatter(points: np.ndarray, *, modes: np.ndarray | None = None, title: str = "") -> bytes:
    """2-D samples (N, 2), with the true mode centres marked where known."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, label="samples")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=60, c="red", label="true modes")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return _png(fig)


NOT_LOSSES = {"epoch", "epoch_s", "samples_per_s", "param_divergence", "steps"}


def loss_terms(history: Sequence[Mapping[str, float]]) -> list[str]:
    """The terms of a run's history that are losses (not counters, timings or checks: the step
    count, in the hundreds, flattened every loss curve beside it)."""
    return sorted({k for h in history for k in h} - NOT_LOSSES)


def loss_curves(history: Sequence[Mapping[str, float]], *, title: str = "") -> bytes:
    """Every loss term and val_loss against the epoch."""
    terms = loss_terms(history)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] + 1 for h in history]
    for term in terms:
        ax.plot(epochs, [h.get(term, np.nan) for h in history], marker="o", ms=3, label=term)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _png(fig)
