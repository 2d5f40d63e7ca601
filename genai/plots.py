"""Pictures as PNG bytes: image grids, 2-D scatter plots with the true modes, loss curves."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def image_grid(images: np.ndarray, *, title: str = "", max_images: int = 64) -> bytes:
    """A square grid of (N, H, W) or (N, C, H, W) images in data units."""
    images = images[:max_images]
    if images.ndim == 4:
        images = (
            images.transpose(0, 2, 3, 1).squeeze(-1)
            if images.shape[1] == 1
            else images.transpose(0, 2, 3, 1)
        )
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + (0.3 if title else 0)))
    lo, hi = float(images.min()), float(images.max())
    for ax, img in zip(
        np.atleast_1d(axes).ravel(), list(images) + [None] * (rows * cols), strict=False
    ):
        ax.axis("off")
        if img is not None:
            ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=lo, vmax=hi)
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


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


def loss_curves(history: Sequence[Mapping[str, float]], *, title: str = "") -> bytes:
    """Every loss term and val_loss against the epoch."""
    skip = {"epoch", "epoch_s", "samples_per_s", "param_divergence"}
    terms = sorted({k for h in history for k in h} - skip)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] + 1 for h in history]
    for term in terms:
        ax.plot(epochs, [h.get(term, np.nan) for h in history], marker="o", ms=3, label=term)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _png(fig)
