"""Data sources: built-in (digits, ring8, grid25, moons, swissroll) and a user's Parquet."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])


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


def load_builtin(cfg: DataConfig) -> SourceData:
    """Make or load one of the built-in sources."""
    n, seed = cfg.n or DEFAULT_N, cfg.seed
    params: dict[str, Any] = {"source": cfg.source, "seed": seed}
    if cfg.source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        values = digits.images.astype(np.float32)  # (1797, 8, 8), values 0..16
        return SourceData(values, digits.target.astype(np.int64), "image", params)
    params["n"] = n
    if cfg.source in ("ring8", "grid25"):
        modes, std = (
            (ring8_modes(), RING8_STD) if cfg.source == "ring8" else (grid25_modes(), GRID25_STD)
        )
        values, labels = gaussian_mixture(modes, std, n, seed)
        return SourceData(values, labels, "points", params, modes=modes, mode_std=std)
    if cfg.source == "moons":
        from sklearn.datasets import make_moons

        values, labels = make_moons(n_samples=n, noise=0.05, random_state=seed)
        return SourceData(values.astype(np.float32), labels.astype(np.int64), "points", params)
    if cfg.source == "swissroll":
        from sklearn.datasets import make_swiss_roll

        values, _ = make_swiss_roll(n_samples=n, noise=0.25, random_state=seed)
        return SourceData(values[:, [0, 2]].astype(np.float32), None, "points", params)
    raise DataError(f"data.source: {cfg.source!r} is not a built-in source")


def _open_parquet(uri: str) -> pads.Dataset:
    from genai.storage import StoreError

    if uri.startswith(("s3://", "s3a://")):
        from genai.storage import s3_filesystem

        fs, path = s3_filesystem(), uri.split("://", 1)[1]
        arrow_fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    else:
        local = os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))
        arrow_fs, path = pafs.LocalFileSystem(), local
    try:
        info = arrow_fs.get_file_info(path)
    except Exception as err:
        raise StoreError(f"data.uri: cannot open {uri}: {type(err).__name__}: {err}") from None
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"data.uri: {uri} does not exist")
    try:
        return pads.dataset(path, filesystem=arrow_fs, format="parquet")
    except Exception as err:
        raise DataError(f"data.uri: {uri} is not readable Parquet: {err}") from None


def _column_values(table: pa.Table, columns: tuple[str, ...], uri: str) -> np.ndarray:
    """Value columns -> (N, D) float array: one list column, or several numeric scalar columns."""
    arrays = []
    for name in columns:
        col = table.column(name).combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
            if col.null_count:
                raise DataError(
                    f"data.columns: column {name!r} of {uri} has {col.null_count} nulls"
                )
            if len(np.unique(lengths)) > 1:
                bad = int(np.argmax(lengths != lengths[0]))
                raise DataError(
                    f"data.columns: rows of {name!r} in {uri} have mixed shapes: row 0 has"
                    f" {lengths[0]} values, row {bad} has {lengths[bad]}"
                )
            flat = col.flatten().to_numpy(zero_copy_only=False)
            arrays.append(np.asarray(flat, dtype=np.float64).reshape(len(col), -1))
        elif pa.types.is_fixed_size_list(col.type):
            flat = col.flatten().to_numpy(zero_copy_only=False)
            arrays.append(np.asarray(flat, dtype=np.float64).reshape(len(col), -1))
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            if col.null_count:
                raise DataError(
                    f"data.columns: column {name!r} of {uri} has {col.null_count} nulls"
                )
            arrays.append(col.to_numpy(zero_copy_only=False).astype(np.float64)[:, None])
        else:
            raise DataError(
                f"data.columns: column {name!r} of {uri} has type {col.type}; expected numbers"
                " or a list of numbers"
            )
    return np.concatenate(arrays, axis=1)  # (N, D)


def load_parquet(cfg: DataConfig) -> SourceData:
    """A user's Parquet file or folder, local or on S3, validated column by column."""
    uri = cfg.uri or ""
    dataset = _open_parquet(uri)
    available = dataset.schema.names
    wanted = list(cfg.columns or ()) + ([cfg.label_column] if cfg.label_column else [])
    missing = [c for c in wanted if c not in available]
    if missing:
        field = "label_column" if missing == [cfg.label_column] else "columns"
        raise DataError(
            f"data.{field}: {', '.join(repr(m) for m in missing)} not in {uri};"
            f" its columns are {', '.join(repr(a) for a in available)}"
        )
    table = dataset.to_table(columns=wanted)
    if table.num_rows == 0:
        raise DataError(f"data.uri: {uri} has no rows")
    values = _column_values(table, tuple(cfg.columns or ()), uri)
    if cfg.shape is not None:
        if int(np.prod(cfg.shape)) != values.shape[1]:
            raise DataError(
                f"data.shape: {list(cfg.shape)} holds {int(np.prod(cfg.shape))} values but rows"
                f" of {uri} have {values.shape[1]}"
            )
        values = values.reshape(len(values), *cfg.shape)
    labels = None
    if cfg.label_column:
        col = table.column(cfg.label_column).combine_chunks()
        if col.null_count:
            raise DataError(f"data.label_column: {cfg.label_column!r} has {col.null_count} nulls")
        raw = np.asarray(col.to_numpy(zero_copy_only=False))
        if not np.issubdtype(raw.dtype, np.number) or not np.all(np.isfinite(raw)):
            raise DataError(f"data.label_column: {cfg.label_column!r} must hold integers")
        if not np.all(raw == np.round(raw)):
            bad = int(np.argmax(raw != np.round(raw)))
            raise DataError(
                f"data.label_column: {cfg.label_column!r} must hold integers; row {bad} is"
                f" {raw[bad].item()!r}"
            )
        labels = raw.astype(np.int64)
    kind = "image" if values.ndim >= 3 else ("points" if values.shape[1] == 2 else "vector")
    params = {"source": "parquet", "uri": uri, "columns": list(cfg.columns or ())}
    params |= {"label_column": cfg.label_column, "shape": list(cfg.shape) if cfg.shape else None}
    return SourceData(values.astype(np.float32, copy=False), labels, kind, params, extra={})


def load_source(cfg: DataConfig) -> SourceData:
    """The source a data config names."""
    return load_parquet(cfg) if cfg.source == "parquet" else load_builtin(cfg)
