"""The built-in sources held in memory: digits, ring8, grid25, moons, swissroll and photos.

Their rows are made here, in the command's process (they are small); the dataset's version is a
hash of the rows. A user's files and the generated ``shapes`` are streamed instead
(:mod:`genai.data.files`). Labels of any kind (names, floats, integers that are not 0..K-1)
become 0..K-1 in the sorted order of their values (:func:`map_labels`); the values are kept as
``label_names`` in the dataset's manifest."""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genai.config import DataConfig
from genai.errors import UserError

DEFAULT_N = 5000
RING8_STD = 0.01
GRID25_STD = 0.05


class DataError(UserError, ValueError):
    """The data itself is unusable (NaN, missing column, empty, mixed shapes, ...)."""


@dataclass(frozen=True)
class SourceData:
    """Samples as one (N, *shape) float32 array, optional integer labels, and what made them."""

    values: np.ndarray  # (N, *shape)
    labels: np.ndarray | None  # (N,)
    kind: Literal["image", "points", "vector"]
    params: dict[str, Any]
    modes: np.ndarray | None = None  # (K, 2) true mode centres of a Gaussian mixture
    mode_std: float | None = None
    codes: np.ndarray | None = None  # (N,) the split of each row, where the source fixes it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])


def map_labels(raw: np.ndarray, what: str) -> tuple[np.ndarray, list | None]:
    """Labels of any kind -> codes 0..K-1 in the sorted order of their values, and those values
    (None when the labels already were 0..K-1, which they stay)."""
    if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
        bad = int(np.argmax(~np.isfinite(raw)))
        raise DataError(f"{what} holds NaN or inf; row {bad} is {raw[bad].item()!r}")
    if raw.dtype.kind not in "iufbUSO":
        raise DataError(f"{what} has values of type {raw.dtype}; expected numbers or names")
    if raw.dtype.kind == "O" and any(v is None for v in raw):
        raise DataError(f"{what} has empty labels")
    names, codes = np.unique(raw.astype(str) if raw.dtype.kind == "O" else raw, return_inverse=True)
    codes = codes.astype(np.int64)
    if names.dtype.kind in "iuf" and np.array_equal(names, np.arange(len(names))):
        return codes, None
    return codes, [n.item() if isinstance(n, np.generic) else n for n in names.tolist()]


def ring8_modes() -> np.ndarray:
    """Eight mode centres on the unit circle (PacGAN / VEEGAN 2D-ring)."""
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (8, 2)


def grid25_modes() -> np.ndarray:
    """25 mode centres at {-4, -2, 0, 2, 4}^2 (PacGAN / VEEGAN 2D-grid)."""
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)  # (25, 2)


def gaussian_mixture(modes: np.ndarray, std: float, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n points from an equal-weight mixture of isotropic Gaussians; labels are mode indices."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(modes), size=n)
    values = modes[labels] + std * rng.standard_normal((n, modes.shape[1]))
    return values.astype(np.float32), labels.astype(np.int64)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, (1797, 8, 8) float32 values 0..16 and their labels, read from
    the file its wheel ships as ``load_digits`` reads it, without importing scikit-learn (1.5 s
    here): every command names its dataset by these rows before it can answer from the store."""
    spec = importlib.util.find_spec("sklearn")  # finds the package, imports nothing
    shipped = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not shipped.is_file():  # a scikit-learn that keeps its data elsewhere
        from sklearn.datasets import load_digits

        found = load_digits()
        return found.images.astype(np.float32), found.target.astype(np.int64)
    with gzip.open(shipped, "rt", encoding="utf-8") as rows:
        table = np.loadtxt(rows, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8).astype(np.float32), table[:, -1].astype(np.int64)


def load_builtin(cfg: DataConfig) -> SourceData:
    """Make or load one of the built-in sources."""
    n, seed = cfg.n or DEFAULT_N, cfg.seed
    params: dict[str, Any] = {"source": cfg.source, "seed": seed}
    if cfg.source == "digits":
        values, labels = digits()
        return SourceData(values, labels, "image", params)
    params["n"] = n
    if cfg.source in ("ring8", "grid25"):
        modes, std = (
            (ring8_modes(), RING8_STD) if cfg.source == "ring8" else (grid25_modes(), GRID25_STD)
        )
        values, labels = gaussian_mixture(modes, std, n, seed)
        return SourceData(values, labels, "points", params, modes=modes, mode_std=std)
    if cfg.source == "moons":
        from sklearn.datasets import make_moons  # sklearn: 0.95 s, for its sources only

        values, labels = make_moons(n_samples=n, noise=0.05, random_state=seed)
        return SourceData(values.astype(np.float32), labels.astype(np.int64), "points", params)
    if cfg.source == "photos":
        return photo_patches(cfg)
    if cfg.source == "swissroll":
        from sklearn.datasets import make_swiss_roll  # sklearn: 0.95 s, for its sources only

        values, _ = make_swiss_roll(n_samples=n, noise=0.25, random_state=seed)
        return SourceData(values[:, [0, 2]].astype(np.float32), None, "points", params)
    raise DataError(f"data.source: {cfg.source!r} is not a built-in source")


PATCH, PATCH_STRIDE, BLOCK = 32, 8, 64


def photo_patches(cfg: DataConfig) -> SourceData:
    """32x32 colour patches of the two photographs scikit-learn ships (china.jpg, flower.jpg,
    427x640), labelled by photo. Each photo is cut into blocks of 64x64 pixels (the last row
    and column of blocks take the remainder); a seeded draw gives ``round(split.test x
    blocks)`` of them to test and as many (by ``split.val``) to val, the rest to train. A patch
    is cut every 8 pixels wherever all its pixels lie in one split's blocks, so no pixel is in
    two splits, and the held-out blocks are scattered over the whole photo. The patches come in
    a seeded random order."""
    from sklearn.datasets import load_sample_images  # sklearn: 0.95 s, for its sources only

    photos = load_sample_images()
    names = [n.rsplit("/", 1)[-1].removesuffix(".jpg") for n in photos.filenames]
    rng = np.random.default_rng(cfg.seed)
    values, labels, codes = [], [], []
    for label, image in enumerate(photos.images):  # (427, 640, 3) uint8
        h, w, _ = image.shape
        rows, cols = h // BLOCK, w // BLOCK
        order = rng.permutation(rows * cols)
        n_test = max(1, round(rows * cols * cfg.split.test))
        n_val = max(1, round(rows * cols * cfg.split.val))
        block_split = np.zeros(rows * cols, dtype=np.int8)
        block_split[order[:n_test]] = 2
        block_split[order[n_test : n_test + n_val]] = 1
        by = np.minimum(np.arange(h) // BLOCK, rows - 1)
        bx = np.minimum(np.arange(w) // BLOCK, cols - 1)
        pixel_split = block_split.reshape(rows, cols)[by[:, None], bx[None, :]]  # (h, w)
        for y0 in range(0, h - PATCH + 1, PATCH_STRIDE):
            for x0 in range(0, w - PATCH + 1, PATCH_STRIDE):
                where = pixel_split[y0 : y0 + PATCH, x0 : x0 + PATCH]
                if where.min() != where.max():
                    continue  # would take pixels of two splits
                values.append(image[y0 : y0 + PATCH, x0 : x0 + PATCH].transpose(2, 0, 1))
                labels.append(label)
                codes.append(where[0, 0])
    params = {"source": "photos", "seed": cfg.seed, "patch": PATCH, "stride": PATCH_STRIDE,
              "block": BLOCK, "label_names": names}  # fmt: skip
    order = rng.permutation(len(values))  # rows in a random order
    return SourceData(np.stack(values)[order].astype(np.float32),
                      np.asarray(labels, np.int64)[order], "image", params,
                      codes=np.asarray(codes, np.int8)[order])  # fmt: skip


def load_source(cfg: DataConfig) -> SourceData:
    """The in-memory source a data config names (built-in, not streamed)."""
    return load_builtin(cfg)
