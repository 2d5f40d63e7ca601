"""What one read task does with one unit of a streamed source (run in Ray tasks; no Ray here).

:func:`read_unit` yields the unit's rows in chunks: values (B, D) float32 in the data's own units,
class codes, global row ids, each row's index among its class's rows, and a name per row for error
messages. :func:`count_labels` is the first pass of labelled tabular data (how many rows of each
label value a unit holds); :func:`process_unit` the main pass: split, statistics and, given the
normalisation, the unit's rows written as one Parquet file per split under the staging prefix.
Problems with the data (an unreadable image, a null, a row of another size) come back as
``errors`` naming the file, so the command fails with one clear message and writes nothing.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from genai import layout
from genai.config import SplitConfig
from genai.data.files import GREY_MODES, PIXEL_RANGE, Plan, Unit, is_s3, open_fs
from genai.data.sources import DataError
from genai.data.split import SPLITS, permute, streamed_codes
from genai.storage import METADATA_KEY, ArtifactStore


@dataclass
class Chunk:
    values: np.ndarray  # (B, D) float32, data units
    codes: np.ndarray  # (B,) class codes (0 when unlabelled)
    rows: np.ndarray  # (B,) global row ids
    within: np.ndarray  # (B,) index among the rows of its class
    names: list[str] = field(default_factory=list)  # what to call row i in a message


class BadUnit(Exception):
    """A unit's data is unusable; the message names the file."""


# --------------------------------------------------------------------------------- reading
def column_values(table: pa.Table, columns: tuple[str, ...], where: str) -> np.ndarray:
    """Value columns -> (N, D) float array: list columns and numeric scalar columns."""
    arrays = []
    for name in columns:
        col = table.column(name).combine_chunks()
        if col.null_count:
            raise BadUnit(f"data.columns: column {name!r} of {where} has {col.null_count} nulls")
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
            if len(np.unique(lengths)) > 1:
                bad = int(np.argmax(lengths != lengths[0]))
                raise BadUnit(
                    f"data.columns: rows of {name!r} in {where} have mixed shapes: row 0 has"
                    f" {lengths[0]} values, row {bad} has {lengths[bad]}"
                )
            flat = col.flatten().to_numpy(zero_copy_only=False)
            arrays.append(np.asarray(flat, dtype=np.float32).reshape(len(col), -1))
        elif pa.types.is_fixed_size_list(col.type):
            flat = col.flatten().to_numpy(zero_copy_only=False)
            arrays.append(np.asarray(flat, dtype=np.float32).reshape(len(col), -1))
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            arrays.append(col.to_numpy(zero_copy_only=False).astype(np.float32)[:, None])
        else:
            raise BadUnit(
                f"data.columns: column {name!r} of {where} has type {col.type}; expected numbers"
                " or a list of numbers"
            )
    return np.concatenate(arrays, axis=1)  # (N, D)


def label_codes(raw: np.ndarray, plan: Plan, where: str) -> np.ndarray:
    """A unit's raw label values -> class codes, with the dataset's map (``plan.names``)."""
    if plan.names is None:
        return raw.astype(np.int64)
    lookup = {v: i for i, v in enumerate(plan.names)}
    try:
        return np.array([lookup[v] for v in raw.tolist()], dtype=np.int64)
    except KeyError as err:
        raise BadUnit(
            f"label {err.args[0]!r} in {where} was not there when labels were counted"
        ) from None


def _image(data: bytes, rel: str, plan: Plan) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size, mode = img.size, img.mode
            grey = mode in GREY_MODES
            pixels = np.asarray(img.convert("F" if plan.image_mode == "grey" else "RGB"))
    except Exception as err:
        raise BadUnit(f"data.uri: {rel} in {plan.uri} is not a readable image: {err}") from None
    h, w = plan.shape[-2:]
    if size != (w, h):
        raise BadUnit(
            f"data.uri: images of {plan.uri} differ in size: {plan.first_file!r} is {w}x{h},"
            f" {rel!r} is {size[0]}x{size[1]}; resize them alike"
        )
    if plan.image_mode == "grey" and not grey:
        raise BadUnit(
            f"data.uri: {rel!r} in {plan.uri} is colour ({mode}) but {plan.first_file!r}, the"
            " first image, is grey; make the folder all colour or all grey"
        )
    if plan.first_mode and PIXEL_RANGE.get(mode) != PIXEL_RANGE.get(plan.first_mode):
        raise BadUnit(
            f"data.uri: {rel!r} in {plan.uri} has {mode} pixels but {plan.first_file!r}, the"
            f" first image, has {plan.first_mode}: one folder's images share one pixel depth"
            " (8-bit, or 16-bit)"
        )
    pixels = pixels.astype(np.float32)
    return pixels if plan.image_mode == "grey" else pixels.transpose(2, 0, 1)  # (C, H, W)


def _images(plan: Plan, unit: Unit) -> Iterator[Chunk]:
    paths = [f"{plan.root.rstrip('/')}/{rel}" for rel in unit.files]
    if is_s3(plan.uri):
        fs, _ = open_fs(plan.uri)
        blobs = fs.cat(paths)  # concurrent GETs
        datas = [blobs[p] for p in paths]
    else:
        datas = []
        for p in paths:
            with open(p, "rb") as fh:
                datas.append(fh.read())
    pixels = [_image(d, rel, plan) for d, rel in zip(datas, unit.files, strict=True)]
    values = np.stack(pixels).reshape(len(pixels), -1)
    labels = np.asarray(unit.labels or [0] * len(pixels), dtype=np.int64)
    yield Chunk(values, labels, np.asarray(unit.rows), np.asarray(unit.within), list(unit.files))


class _Numbering:
    """Row ids and each class's running index over a unit read in several chunks."""

    def __init__(self, unit: Unit) -> None:
        self.next_row, self.next = unit.offset, dict(unit.first)

    def __call__(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = self.next_row + np.arange(len(codes))
        self.next_row += len(codes)
        within = np.zeros(len(codes), dtype=np.int64)
        for c in np.unique(codes):
            mask = codes == c
            start = self.next.get(int(c), 0)
            within[mask] = start + np.arange(int(mask.sum()))
            self.next[int(c)] = start + int(mask.sum())
        return rows, within


def _tabular(plan: Plan, unit: Unit, tables: Iterator[pa.Table], where: str) -> Iterator[Chunk]:
    number = _Numbering(unit)
    name = (unit.files[0] if unit.files and unit.files[0] else plan.uri).rsplit("/", 1)[-1]
    if unit.group >= 0:
        name += f" row group {unit.group}"
    first = unit.start  # npy: the file's row of the unit's first row
    for table in tables:
        values = column_values(table, plan.columns, where)
        if values.shape[1] != plan.width:
            raise BadUnit(f"data.columns: rows of {where} have {values.shape[1]} values, the"
                          f" first file's have {plan.width}; every row needs as many")  # fmt: skip
        if plan.labelled:
            col = table.column(plan.label_column).combine_chunks()
            if col.null_count:
                raise BadUnit(f"data.label_column: {plan.label_column!r} in {where} has nulls")
            codes = label_codes(np.asarray(col.to_numpy(zero_copy_only=False)), plan, where)
        else:
            codes = np.zeros(len(values), dtype=np.int64)
        rows, within = number(codes)
        yield Chunk(
            values, codes, rows, within, [f"{name} row {first + i}" for i in range(len(rows))]
        )
        first += len(rows)


def _wanted(plan: Plan) -> list[str]:
    return list(plan.columns) + ([plan.label_column] if plan.label_column else [])


def _parquet(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    fs, _ = open_fs(plan.uri)
    with fs.open(f"{plan.root.rstrip('/')}/{unit.files[0]}" if unit.files[0] else plan.root) as fh:
        yield pq.ParquetFile(fh).read_row_group(unit.group, columns=_wanted(plan))


def _csv(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    import pyarrow.csv as pacsv

    fs, _ = open_fs(plan.uri)
    path = f"{plan.root.rstrip('/')}/{unit.files[0]}" if unit.files[0] else plan.root
    options = pacsv.ConvertOptions(include_columns=_wanted(plan))
    block = pacsv.ReadOptions(block_size=1 << 24)
    with fs.open(path, "rb") as fh:
        reader = pacsv.open_csv(fh, read_options=block, convert_options=options)
        for batch in reader:
            yield pa.Table.from_batches([batch])


def npy_rows(uri: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a .npy file, local (memory-mapped) or on S3 (one ranged read)."""
    fs, path = open_fs(uri)
    if not is_s3(uri):
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])
    with fs.open(path, "rb") as fh:
        shape, _, dtype = npy_header(fh)
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        fh.seek(fh.tell() + start * row_bytes)
        data = fh.read((stop - start) * row_bytes)
    return np.frombuffer(data, dtype=dtype).reshape(stop - start, *shape[1:])


def npy_header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of an open .npy file, left at the first data byte."""
    version = np.lib.format.read_magic(fh)
    reader = {(1, 0): np.lib.format.read_array_header_1_0}.get(
        version, np.lib.format.read_array_header_2_0
    )
    return reader(fh)


def _npy(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    values = npy_rows(plan.uri, unit.start, unit.stop).reshape(unit.stop - unit.start, -1)
    cols = {"x": pa.FixedSizeListArray.from_arrays(pa.array(values.astype(np.float32).ravel()),
                                                   values.shape[1])}  # fmt: skip
    if plan.label_uri:
        cols["label"] = pa.array(npy_rows(plan.label_uri, unit.start, unit.stop))
    yield pa.table(cols)


def _shapes(plan: Plan, unit: Unit) -> Iterator[Chunk]:
    from genai.data import shapes

    images, labels = shapes.chunk(unit.index, unit.stop, seed=plan.seed, size=plan.shape[-1])
    values = images.transpose(0, 3, 1, 2).reshape(len(images), -1).astype(np.float32)
    rows, within = _Numbering(unit)(labels)
    yield Chunk(values, labels, rows, within, [f"shape {r}" for r in rows])


def read_unit(plan: Plan, unit: Unit) -> Iterator[Chunk]:
    """The unit's rows, chunk by chunk (a CSV file's blocks; one chunk otherwise)."""
    where = unit.describe(plan)
    if plan.source == "images":
        yield from _images(plan, unit)
    elif plan.source == "shapes":
        yield from _shapes(plan, unit)
    elif plan.source == "parquet":
        yield from _tabular(plan, unit, _parquet(plan, unit), where)
    elif plan.source == "csv":
        yield from _tabular(plan, unit, _csv(plan, unit), where)
    else:
        yield from _tabular(plan, unit, _npy(plan, unit), where)


def count_labels(plan: Plan, unit: Unit) -> dict[str, Any]:
    """First pass: rows and rows per label value of one unit (label column only)."""
    counts: dict[Any, int] = {}
    rows = 0
    where = unit.describe(plan)
    try:
        if plan.source == "npy":
            tables: Iterator[pa.Table] = iter(
                [pa.table({"label": npy_rows(plan.label_uri, unit.start, unit.stop)})]
            )
            column = "label"
        else:
            column = plan.label_column or ""
            narrow = plan.writing(columns=())
            tables = _parquet(narrow, unit) if plan.source == "parquet" else _csv(narrow, unit)
        for table in tables:
            rows += table.num_rows
            if not plan.labelled:
                continue
            col = table.column(column).combine_chunks()
            if col.null_count:
                raise BadUnit(f"data.label_column: {column!r} in {where} has nulls")
            raw = np.asarray(col.to_numpy(zero_copy_only=False))
            if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
                raise BadUnit(f"data.label_column: {column!r} in {where} holds NaN or inf")
            values, n = np.unique(raw.astype(str) if raw.dtype.kind == "O" else raw,
                                  return_counts=True)  # fmt: skip
            for v, k in zip(values.tolist(), n.tolist(), strict=True):
                counts[v] = counts.get(v, 0) + k
    except (BadUnit, DataError) as err:
        return {"index": unit.index, "rows": 0, "counts": [], "errors": [str(err)]}
    except Exception as err:
        message = f"data.uri: {where} is not readable: {type(err).__name__}: {err}"
        return {"index": unit.index, "rows": 0, "counts": [], "errors": [message]}
    return {"index": unit.index, "rows": rows, "counts": list(counts.items()), "errors": []}


# ------------------------------------------------------------------------------ statistics
def empty_stats(width: int) -> dict[str, Any]:
    return {"n": 0, "sum": np.zeros(width), "sumsq": np.zeros(width),
            "min": np.full(width, np.inf), "max": np.full(width, -np.inf),
            "bad": 0, "bad_rows": []}  # fmt: skip


def add_stats(acc: dict[str, Any], x: np.ndarray, names: list[str]) -> None:
    """Add rows (B, D) to a split's running count, sums, squares, extremes, non-finite rows."""
    finite = np.isfinite(x).all(axis=1)
    acc["n"] += len(x)
    if not finite.all():
        acc["bad"] += int((~finite).sum())
        acc["bad_rows"] = (acc["bad_rows"] + [names[i] for i in np.flatnonzero(~finite)])[:5]
        x = x[finite]
    if len(x):
        x64 = x.astype(np.float64)
        acc["sum"] += x64.sum(0)
        acc["sumsq"] += (x64**2).sum(0)
        acc["min"] = np.minimum(acc["min"], x.min(0))
        acc["max"] = np.maximum(acc["max"], x.max(0))


def merge_stats(acc: dict[str, Any], part: dict[str, Any]) -> None:
    acc["n"] += part["n"]
    acc["sum"] += part["sum"]
    acc["sumsq"] += part["sumsq"]
    acc["min"] = np.minimum(acc["min"], part["min"])
    acc["max"] = np.maximum(acc["max"], part["max"])
    acc["bad"] += part["bad"]
    acc["bad_rows"] = (acc["bad_rows"] + part["bad_rows"])[:5]


def finish_stats(acc: dict[str, Any]) -> dict[str, Any]:
    """Mean and standard deviation from the sums (over the finite rows)."""
    n = max(acc["n"] - acc["bad"], 1)
    acc["mean"] = acc["sum"] / n
    acc["std"] = np.sqrt(np.maximum(acc["sumsq"] / n - acc["mean"] ** 2, 0.0))
    return acc


# --------------------------------------------------------------------------------- writing
class _Parts:
    """One Parquet file per split for this unit, row groups of ``plan.rows_per_group`` rows,
    written to a local file and put into the staging prefix at the end."""

    def __init__(self, plan: Plan, unit: Unit, tmp: str) -> None:
        self.plan, self.unit, self.tmp = plan, unit, tmp
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.groups: dict[str, list[int]] = {}
        fields = [("row", pa.int64()), ("x", pa.list_(pa.float32(), plan.width))]
        fields += [("label", pa.int64())] if plan.labelled else []
        meta = {METADATA_KEY: json.dumps(plan.metadata).encode()}
        self.schema = pa.schema(fields, metadata=meta)

    def write(self, split: str, x: np.ndarray, chunk: Chunk, mask: np.ndarray) -> None:
        if split not in self.writers:
            path = os.path.join(self.tmp, f"{split}.parquet")
            self.writers[split] = pq.ParquetWriter(path, self.schema)
            self.groups[split] = []
        step = self.plan.rows_per_group
        rows, codes = chunk.rows[mask], chunk.codes[mask]
        for i in range(0, len(x), step):
            cols = [pa.array(rows[i : i + step], pa.int64()),
                    pa.FixedSizeListArray.from_arrays(pa.array(x[i : i + step].ravel()),
                                                      self.plan.width)]  # fmt: skip
            if self.plan.labelled:
                cols.append(pa.array(codes[i : i + step], pa.int64()))
            self.writers[split].write_table(pa.Table.from_arrays(cols, schema=self.schema))
            self.groups[split].append(len(cols[0]))

    def commit(self) -> dict[str, list]:
        store = ArtifactStore(self.plan.store, check=False)
        parts = {}
        for split, writer in self.writers.items():
            writer.close()
            key = layout.part(layout.split(self.plan.staging, split), self.unit.index)
            store.put_file(key, os.path.join(self.tmp, f"{split}.parquet"))
            parts[split] = [key.rsplit("/", 1)[-1], self.groups[split]]
        return parts


def process_unit(plan: Plan, unit: Unit) -> dict[str, Any]:
    """Main pass over one unit: split codes, statistics per split and, when ``plan`` carries
    the normalisation, the rows written (normalised, float32) under the staging prefix."""
    split = SplitConfig(**plan.split)
    stats = {s: empty_stats(plan.width) for s in SPLITS}
    out: dict[str, Any] = {"index": unit.index, "rows": 0, "errors": [], "parts": {}}
    writing = plan.shift is not None
    with tempfile.TemporaryDirectory(prefix="genai-part-") as tmp:
        parts = _Parts(plan, unit, tmp) if writing else None
        try:
            for chunk in read_unit(plan, unit):
                codes = streamed_codes(chunk.codes, chunk.within, plan.sizes, split, plan.seed)
                # row ids in a seeded random order: the first n rows of a split are a sample
                chunk.rows = permute(chunk.rows, plan.total, plan.seed * 7919 + 17)
                out["rows"] += len(chunk.values)
                for i, name in enumerate(SPLITS):
                    mask = codes == i
                    if not mask.any():
                        continue
                    x = chunk.values[mask]
                    add_stats(stats[name], x, [chunk.names[j] for j in np.flatnonzero(mask)])
                    if parts is not None:
                        shift, scale = np.asarray(plan.shift), np.asarray(plan.scale)
                        parts.write(name, ((x - shift) / scale).astype(np.float32), chunk, mask)
            if parts is not None:
                out["parts"] = parts.commit()
        except (BadUnit, DataError) as err:
            out["errors"].append(str(err))
        except Exception as err:
            where = unit.describe(plan)
            out["errors"].append(f"data.uri: {where} is not readable: {type(err).__name__}: {err}")
    out["stats"] = stats
    return out
