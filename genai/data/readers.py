"""Reading one read unit's rows, per format: images, shapes, Parquet, CSV and .npy (no Ray here)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from PIL import Image

from genai.data import shapes
from genai.data.files import GREY_MODES, PIXEL_RANGE, Plan, Unit, is_s3, open_fs


@dataclass
class Chunk:
    """Rows of a unit: values in the data's own units, class codes, global row ids, each row's
    index among its class's rows, and a name per row for error messages."""

    values: np.ndarray  # (B, D) float32, data units
    codes: np.ndarray  # (B,) class codes (0 when unlabelled)
    rows: np.ndarray  # (B,) global row ids
    within: np.ndarray  # (B,) index among the rows of its class
    names: list[str] = field(default_factory=list)  # what to call row i in a message


class BadUnit(Exception):
    """A unit's data is unusable; the message names the file."""


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


def parquet_tables(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    """The unit's row group (value and label columns) as one table."""
    fs, _ = open_fs(plan.uri)
    with fs.open(f"{plan.root.rstrip('/')}/{unit.files[0]}" if unit.files[0] else plan.root) as fh:
        yield pq.ParquetFile(fh).read_row_group(unit.group, columns=_wanted(plan))


def csv_tables(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    """The unit's CSV file (value and label columns), a table per block."""
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


def npy_tables(plan: Plan, unit: Unit) -> Iterator[pa.Table]:
    """The unit's range of rows as one table: ``x`` and, given ``plan.label_uri``, ``label``."""
    values = npy_rows(plan.uri, unit.start, unit.stop).reshape(unit.stop - unit.start, -1)
    cols = {"x": pa.FixedSizeListArray.from_arrays(pa.array(values.astype(np.float32).ravel()),
                                                   values.shape[1])}  # fmt: skip
    if plan.label_uri:
        cols["label"] = pa.array(npy_rows(plan.label_uri, unit.start, unit.stop))
    yield pa.table(cols)


def _shapes(plan: Plan, unit: Unit) -> Iterator[Chunk]:
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
        yield from _tabular(plan, unit, parquet_tables(plan, unit), where)
    elif plan.source == "csv":
        yield from _tabular(plan, unit, csv_tables(plan, unit), where)
    else:
        yield from _tabular(plan, unit, npy_tables(plan, unit), where)
