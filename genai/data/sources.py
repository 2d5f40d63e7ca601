"""Data sources: built-in (digits, ring8, grid25, moons, swissroll) and a user's files: Parquet,
CSV, NumPy .npy and folders of images, local or on S3.

A user's rows are read here, in the command's process, before Ray starts: the dataset's version
is a hash of its rows, and a dataset already in the store is found without Ray. Ray Data then
computes the statistics and writes the splits (:mod:`genai.data.prepare`). Labels of any kind
(names, floats, integers that are not 0..K-1) become 0..K-1 in the sorted order of their values;
the values are kept as ``label_names`` in the dataset's manifest."""

from __future__ import annotations

import os
from collections.abc import Iterable
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
    from fsspec.implementations.local import LocalFileSystem

    fs, path = _file_system(uri)
    local = isinstance(fs, LocalFileSystem)  # pyarrow's own local filesystem reads faster
    arrow_fs = pafs.LocalFileSystem() if local else pafs.PyFileSystem(pafs.FSSpecHandler(fs))
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
    table = dataset.to_table(columns=_wanted(dataset.schema.names, cfg.columns or (), cfg, uri))
    return _tabular(table, tuple(cfg.columns or ()), cfg, uri)


def _wanted(available: list[str], columns: Iterable[str], cfg: DataConfig, uri: str) -> list[str]:
    """The value columns and the label column, each checked to be in the file."""
    wanted = list(columns) + ([cfg.label_column] if cfg.label_column else [])
    missing = [c for c in wanted if c not in available]
    if missing:
        field = "label_column" if missing == [cfg.label_column] else "columns"
        raise DataError(
            f"data.{field}: {', '.join(repr(m) for m in missing)} not in {uri};"
            f" its columns are {', '.join(repr(a) for a in available)}"
        )
    return wanted


def _tabular(table: pa.Table, columns: tuple[str, ...], cfg: DataConfig, uri: str) -> SourceData:
    """A table's value columns (shaped) and its label column (mapped): Parquet's and CSV's rows."""
    if table.num_rows == 0:
        raise DataError(f"data.uri: {uri} has no rows")
    if not columns:
        raise DataError(f"data.columns: {uri} has no value columns besides the label")
    values = _shaped(_column_values(table, columns, uri), cfg, uri)
    labels = names = None
    if cfg.label_column:
        col = table.column(cfg.label_column).combine_chunks()
        if col.null_count:
            raise DataError(f"data.label_column: {cfg.label_column!r} has {col.null_count} nulls")
        raw = np.asarray(col.to_numpy(zero_copy_only=False))
        labels, names = map_labels(raw, f"data.label_column: {cfg.label_column!r}")
    params = {"source": cfg.source, "uri": uri, "columns": list(columns)}
    params |= {"label_column": cfg.label_column, "shape": list(cfg.shape) if cfg.shape else None}
    return _user_data(values, labels, names, params)


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


def _user_data(
    values: np.ndarray, labels: np.ndarray | None, names: list | None, params: dict[str, Any]
) -> SourceData:
    """A user's rows: images when a sample has two or more dimensions; label names, if mapped,
    kept with the source's parameters (so they are in the version's hash and the manifest)."""
    if names is not None:
        params = {**params, "label_names": names}
    kind = "image" if values.ndim >= 3 else ("points" if values.shape[1] == 2 else "vector")
    return SourceData(values.astype(np.float32, copy=False), labels, kind, params)


def _shaped(values: np.ndarray, cfg: DataConfig, uri: str) -> np.ndarray:
    """(N, D) rows -> (N, *data.shape), checking the count; (N, D) when no shape is given."""
    if cfg.shape is None:
        return values.reshape(len(values), -1)
    if int(np.prod(cfg.shape)) != int(np.prod(values.shape[1:])):
        raise DataError(
            f"data.shape: {list(cfg.shape)} holds {int(np.prod(cfg.shape))} values but rows"
            f" of {uri} have {int(np.prod(values.shape[1:]))}"
        )
    return values.reshape(len(values), *cfg.shape)


def _file_system(uri: str, field: str = "data.uri"):
    """(fsspec filesystem, path) of a local or s3:// location that exists."""
    from fsspec.implementations.local import LocalFileSystem

    from genai.storage import StoreError, s3_filesystem

    if uri.startswith(("s3://", "s3a://")):
        fs, path = s3_filesystem(), uri.split("://", 1)[1]
    else:
        fs = LocalFileSystem()
        path = os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))
    try:
        found = fs.exists(path)
    except Exception as err:
        raise StoreError(f"{field}: cannot open {uri}: {type(err).__name__}: {err}") from None
    if not found:
        raise DataError(f"{field}: {uri} does not exist")
    return fs, path


def load_csv(cfg: DataConfig) -> SourceData:
    """A user's CSV file (a header row, then one sample per row), local or on S3."""
    import pyarrow.csv as pacsv

    uri = cfg.uri or ""
    fs, path = _file_system(uri)
    try:
        with fs.open(path, "rb") as fh:
            table = pacsv.read_csv(fh)
    except pa.ArrowInvalid as err:
        raise DataError(f"data.uri: {uri} is not readable CSV: {err}") from None
    available = table.schema.names
    columns = tuple(cfg.columns or (c for c in available if c != cfg.label_column))
    _wanted(available, columns, cfg, uri)
    return _tabular(table, columns, cfg, uri)


def _read_npy(uri: str, field: str) -> np.ndarray:
    fs, path = _file_system(uri, field)
    try:
        if not uri.startswith(("s3://", "s3a://")):
            return np.load(path, mmap_mode="r", allow_pickle=False)  # read as it is used
        with fs.open(path, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{field}: {uri} is not a readable .npy array: {err}") from None


def load_npy(cfg: DataConfig) -> SourceData:
    """A user's NumPy array, one sample per row (N, ...), with labels from data.label_uri."""
    uri = cfg.uri or ""
    raw = _read_npy(uri, "data.uri")
    if raw.dtype.kind not in "iufb":
        raise DataError(f"data.uri: {uri} holds {raw.dtype} values; expected numbers")
    if raw.ndim == 0 or len(raw) == 0:
        raise DataError(f"data.uri: {uri} has no rows")
    values = _shaped(np.asarray(raw, dtype=np.float32).reshape(len(raw), -1), cfg, uri)
    labels = names = None
    if cfg.label_uri:
        given = np.asarray(_read_npy(cfg.label_uri, "data.label_uri"))
        if given.ndim != 1 or len(given) != len(values):
            raise DataError(
                f"data.label_uri: {cfg.label_uri} holds an array of shape {list(given.shape)};"
                f" expected one label per row of {uri}: [{len(values)}]"
            )
        labels, names = map_labels(given, f"data.label_uri: {cfg.label_uri}")
    params = {"source": "npy", "uri": uri, "label_uri": cfg.label_uri}
    params |= {"shape": list(cfg.shape) if cfg.shape else None}
    return _user_data(values, labels, names, params)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_images(cfg: DataConfig) -> SourceData:
    """A folder of PNG/JPEG images of one size, labelled by subfolder (``cat/001.png``) unless
    data.image_labels is false. Grey images give (H, W) samples, colour ones (3, H, W)."""
    from PIL import Image

    uri = cfg.uri or ""
    fs, root = _file_system(uri)
    files = sorted(f for f in fs.find(root) if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise DataError(f"data.uri: {uri} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    relative = [f[len(root.rstrip("/")) + 1 :] for f in files]
    labels = names = None
    if cfg.image_labels:
        loose = [r for r in relative if "/" not in r]
        if loose:
            raise DataError(
                f"data.image_labels: {len(loose)} images sit directly in {uri} (e.g. {loose[0]!r})"
                "; put each class in a subfolder named after it, or set data.image_labels false"
            )
        labels, names = map_labels(np.array([r.split("/", 1)[0] for r in relative]),
                                   "data.image_labels: subfolder")  # fmt: skip
    pictures = []
    for name, rel in zip(files, relative, strict=True):
        try:
            with fs.open(name, "rb") as fh, Image.open(fh) as img:
                img.load()
                pictures.append(img.copy())
        except Exception as err:
            raise DataError(f"data.uri: {rel} in {uri} is not a readable image: {err}") from None
    size = pictures[0].size
    for rel, img in zip(relative, pictures, strict=True):
        if img.size != size:
            raise DataError(
                f"data.uri: images of {uri} differ in size: {relative[0]!r} is"
                f" {size[0]}x{size[1]}, {rel!r} is {img.size[0]}x{img.size[1]}; resize them alike"
            )
    grey = all(img.mode in ("1", "L", "I", "I;16", "F") for img in pictures)
    if grey:
        values = np.stack([np.asarray(img.convert("F"), dtype=np.float32) for img in pictures])
    else:  # channels first, as the conv bodies take them
        values = np.stack([np.asarray(img.convert("RGB"), dtype=np.float32) for img in pictures])
        values = values.transpose(0, 3, 1, 2)
    params = {"source": "images", "uri": uri, "images": len(files), "labels": cfg.image_labels}
    return _user_data(values, labels, names, params)


LOADERS = {"parquet": load_parquet, "csv": load_csv, "npy": load_npy, "images": load_images}


def load_source(cfg: DataConfig) -> SourceData:
    """The source a data config names."""
    return LOADERS.get(cfg.source, load_builtin)(cfg)
