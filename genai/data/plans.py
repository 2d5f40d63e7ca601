"""The driver's part of a streamed preparation: read one header or footer, cut the source into
read units, and number each class's rows (no row is read here but a label column's counts,
which the first pass brings back from the tasks).

- images: the first file gives the size and mode every image must share; labels come from the
  subfolders in the listing; the files go to units in a seeded order, so every written part
  holds a random sample of the folder (a training worker's window then mixes classes).
- shapes: chunks of :data:`genai.data.shapes.CHUNK`; their labels are the generator's first draw.
- parquet: the first file's schema picks the value columns (every numeric or list column but the
  label by default) and each file's footer lists its row groups: a unit per row group.
- csv: a unit per file; a first pass counts its rows (and labels).
- npy: the header gives rows and shape; a unit per range of rows; labels from ``label_uri``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from PIL import Image

from genai.config import DataConfig
from genai.data import shapes
from genai.data.files import (
    GREY_MODES,
    Listing,
    Plan,
    Unit,
    open_fs,
    split_shares,
    unit_rows,
)
from genai.data.readers import BadUnit, column_values, npy_header
from genai.data.sources import DataError, map_labels

PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # a pandas index saved as a column


def _image_header(listing: Listing) -> tuple[tuple[int, ...], str, str]:
    """(shape, "grey" or "colour", mode) from the folder's first image."""
    fs, _ = open_fs(listing.uri)
    first = listing.files[0][0]
    try:
        with fs.open(listing.path(first), "rb") as fh, Image.open(fh) as img:
            w, h = img.size
            mode = img.mode
    except Exception as err:
        raise DataError(
            f"data.uri: {first} in {listing.uri} is not a readable image: {err}"
        ) from None
    grey = mode in GREY_MODES
    return ((h, w) if grey else (3, h, w)), ("grey" if grey else "colour"), mode


def _base(cfg: DataConfig, listing: Listing, **fields: Any) -> Plan:
    return Plan(source=cfg.source, uri=listing.uri, root=listing.root,
                split=split_shares(cfg), seed=cfg.seed, **fields)  # fmt: skip


def _shaped(cfg: DataConfig, width: int, where: str) -> tuple[int, ...]:
    if cfg.shape is None:
        return (width,)
    if int(np.prod(cfg.shape)) != width:
        raise DataError(
            f"data.shape: {list(cfg.shape)} holds {int(np.prod(cfg.shape))} values but rows"
            f" of {where} have {width}"
        )
    return tuple(cfg.shape)


def _kind(shape: tuple[int, ...]) -> str:
    return "image" if len(shape) >= 2 else ("points" if shape == (2,) else "vector")


def plan_images(cfg: DataConfig, listing: Listing) -> tuple[Plan, list[Unit], str]:
    shape, image_mode, mode = _image_header(listing)
    rels = [rel for rel, _, _ in listing.files]
    n = len(rels)
    names = None
    if cfg.image_labels:
        labels, names = map_labels(np.array([r.split("/", 1)[0] for r in rels]),
                                   "data.image_labels: subfolder")  # fmt: skip
    else:
        labels = np.zeros(n, dtype=np.int64)
    within = np.zeros(n, dtype=np.int64)
    sizes: dict[int, int] = {}
    for i, c in enumerate(labels.tolist()):
        within[i] = sizes.get(c, 0)
        sizes[c] = within[i] + 1
    plan = _base(cfg, listing, kind="image", shape=shape, labelled=cfg.image_labels,
                 image_mode=image_mode, first_file=rels[0], first_mode=mode,
                 names=tuple(names) if names is not None else None, sizes=sizes)  # fmt: skip
    order = np.random.default_rng(cfg.seed).permutation(n)
    step = unit_rows(plan)
    units = [
        Unit(
            index=k,
            files=tuple(rels[i] for i in idx),
            rows=tuple(idx.tolist()),
            labels=tuple(labels[idx].tolist()),
            within=tuple(within[idx].tolist()),
            count=len(idx),
        )  # fmt: skip
        for k, idx in enumerate(order[i : i + step] for i in range(0, n, step))
    ]
    return plan, units, mode


def plan_shapes(cfg: DataConfig, listing: Listing) -> tuple[Plan, list[Unit]]:
    n, size = listing.params["n"], listing.params["size"]
    sizes: Counter = Counter()
    units = []
    for k in range(-(-n // shapes.CHUNK)):
        count = min(shapes.CHUNK, n - k * shapes.CHUNK)
        labels = np.random.default_rng(cfg.seed * 1_000_003 + k).integers(0, 3, count)
        first = {c: sizes[c] for c in range(3)}
        sizes.update(labels.tolist())
        units.append(Unit(index=k, start=k * shapes.CHUNK, stop=k * shapes.CHUNK + count,
                          offset=k * shapes.CHUNK, first=first, count=count))  # fmt: skip
    plan = _base(cfg, listing, kind="image", shape=(3, size, size), labelled=True,
                 image_mode="colour", names=shapes.SHAPES, sizes=dict(sizes))  # fmt: skip
    return plan, units


def _parquet_footers(cfg: DataConfig, listing: Listing) -> tuple[pa.Schema, list[tuple]]:
    fs, _ = open_fs(listing.uri)
    groups = []
    schema = None
    for rel, _, _ in listing.files:
        try:
            with fs.open(listing.path(rel), "rb") as fh:
                meta = pq.ParquetFile(fh).metadata
        except Exception as err:
            where = rel or listing.uri
            raise DataError(f"data.uri: {where} is not readable Parquet: {err}") from None
        schema = schema or meta.schema.to_arrow_schema()
        groups += [(rel, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return schema, groups


def _value_columns(cfg: DataConfig, available: list[str], types: dict[str, pa.DataType]) -> tuple:
    """The value columns: those named, else every numeric or list column but the label."""
    wanted = list(cfg.columns or ()) + ([cfg.label_column] if cfg.label_column else [])
    missing = [c for c in wanted if c not in available]
    if missing:
        field = "label_column" if missing == [cfg.label_column] else "columns"
        raise DataError(
            f"data.{field}: {', '.join(repr(m) for m in missing)} not in {cfg.uri};"
            f" its columns are {', '.join(repr(a) for a in available)}"
        )
    if cfg.columns:
        return tuple(cfg.columns)

    def numeric(t: pa.DataType) -> bool:
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return numeric(t.value_type)
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    # pandas' saved index (``__index_level_0__``) is not a feature
    columns = tuple(c for c in available if c != cfg.label_column and numeric(types[c])
                    and not PANDAS_INDEX.fullmatch(c))  # fmt: skip
    if not columns:
        raise DataError(f"data.columns: {cfg.uri} has no numeric value columns besides the label")
    return columns


def _first_width(cfg: DataConfig, listing: Listing, columns: tuple, rel: str) -> int:
    """Values per row, from the first row of the first file."""
    fs, _ = open_fs(listing.uri)
    with fs.open(listing.path(rel), "rb") as fh:
        if cfg.source == "parquet":
            batches = pq.ParquetFile(fh).iter_batches(batch_size=1, columns=list(columns))
            first = next(batches, None)
            if first is None:
                raise DataError(f"data.uri: {rel} in {cfg.uri} has no rows")
        else:
            opts = pacsv.ConvertOptions(include_columns=list(columns))
            first = pacsv.open_csv(fh, convert_options=opts).read_next_batch()
    try:
        return column_values(pa.Table.from_batches([first]), columns, cfg.uri or "").shape[1]
    except BadUnit as err:
        raise DataError(str(err)) from None


def plan_tabular(cfg: DataConfig, listing: Listing) -> tuple[Plan, list[Unit]]:
    """Parquet and CSV: value columns, width and shape, and the units (rows counted later)."""
    fs, _ = open_fs(listing.uri)
    if cfg.source == "parquet":
        schema, groups = _parquet_footers(cfg, listing)
        if sum(rows for _, _, rows in groups) == 0:
            raise DataError(f"data.uri: {cfg.uri} has no rows")
        units = [Unit(index=k, files=(rel,), group=g, count=rows)
                 for k, (rel, g, rows) in enumerate(groups) if rows]  # fmt: skip
        first = units[0].files[0]  # the first file with rows gives the width
    else:
        rel = listing.files[0][0]
        try:
            with fs.open(listing.path(rel), "rb") as fh:
                schema = pacsv.open_csv(fh).schema
        except pa.ArrowInvalid as err:
            raise DataError(f"data.uri: {cfg.uri} is not readable CSV: {err}") from None
        if schema.names and all(pa.types.is_null(f.type) for f in schema):
            raise DataError(f"data.uri: {rel} in {cfg.uri} has a header but no rows to type its"
                            " columns by; remove it or put a file with rows first")  # fmt: skip
        units = [Unit(index=k, files=(rel,)) for k, (rel, _, _) in enumerate(listing.files)]
        first = rel
    types = {f.name: f.type for f in schema}
    columns = _value_columns(cfg, schema.names, types)
    width = _first_width(cfg, listing, columns, first)
    shape = _shaped(cfg, width, cfg.uri or "")
    plan = _base(cfg, listing, kind=_kind(shape), shape=shape, columns=columns,
                 label_column=cfg.label_column, labelled=cfg.label_column is not None)  # fmt: skip
    return plan, units


def plan_npy(cfg: DataConfig, listing: Listing) -> tuple[Plan, list[Unit]]:
    shape, dtype = _npy_shape(cfg.uri or "", "data.uri")
    if dtype.kind not in "iufb":
        raise DataError(f"data.uri: {cfg.uri} holds {dtype} values; expected numbers")
    if len(shape) == 0 or shape[0] == 0:
        raise DataError(f"data.uri: {cfg.uri} has no rows")
    n, width = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    if cfg.label_uri:
        given, _ = _npy_shape(cfg.label_uri, "data.label_uri")
        if len(given) != 1 or given[0] != n:
            raise DataError(
                f"data.label_uri: {cfg.label_uri} holds an array of shape {list(given)};"
                f" expected one label per row of {cfg.uri}: [{n}]"
            )
    sample = _shaped(cfg, width, cfg.uri or "")
    plan = _base(cfg, listing, kind=_kind(sample), shape=sample, columns=("x",),
                 label_column="label" if cfg.label_uri else None, label_uri=cfg.label_uri,
                 labelled=cfg.label_uri is not None)  # fmt: skip
    step = unit_rows(plan)
    units = [Unit(index=k, start=a, stop=min(a + step, n), offset=a, count=min(step, n - a))
             for k, a in enumerate(range(0, n, step))]  # fmt: skip
    return plan, units


def _npy_shape(uri: str, field: str) -> tuple[tuple[int, ...], np.dtype]:
    fs, path = open_fs(uri, field)
    try:
        with fs.open(path, "rb") as fh:
            shape, fortran, dtype = npy_header(fh)
    except Exception as err:
        raise DataError(f"{field}: {uri} is not a readable .npy array: {err}") from None
    if fortran:
        raise DataError(
            f"{field}: {uri} is stored in Fortran order; save it with"
            " np.save(path, np.ascontiguousarray(x)) to read it in chunks"
        )
    return tuple(shape), dtype


def with_counts(plan: Plan, units: list[Unit], counted: list[dict[str, Any]]) -> tuple:
    """The first pass's row and label counts -> classes (labels mapped as :func:`map_labels`
    does), their sizes, and each unit's first row id and first index in every class."""
    by_index = {c["index"]: c for c in counted}
    totals: Counter = Counter()
    for c in counted:
        totals.update(dict(c["counts"]))
    names = None
    if plan.labelled:
        what = f"data.label_column: {plan.label_column!r}"
        try:
            values = np.array(sorted(totals))
        except TypeError:
            raise DataError(f"{what} mixes numbers and names; make it one kind") from None
        _, names = map_labels(values, what)
    code = {v: i for i, v in enumerate(names)} if names is not None else None
    sizes: Counter = Counter()
    offset, out = 0, []
    for u in units:
        c = by_index[u.index]
        first = {k: sizes[k] for k in range(max(len(totals), 1))}
        if plan.labelled:
            sizes.update({(code[v] if code else int(v)): k for v, k in c["counts"]})
        else:
            sizes[0] += c["rows"]
        out.append(Unit(index=u.index, files=u.files, group=u.group, start=u.start,
                        stop=u.stop, offset=offset, first=first, count=c["rows"]))  # fmt: skip
        offset += c["rows"]
    names = tuple(names) if names is not None else None
    return plan.writing(names=names, sizes=dict(sizes)), out


def needs_count(plan: Plan) -> bool:
    """Whether a first pass must count rows or labels before rows can be numbered."""
    return plan.labelled or plan.source == "csv"


def numbered(plan: Plan, units: list[Unit]) -> tuple[Plan, list[Unit]]:
    """Unlabelled rows whose counts the headers gave: one class, numbered in unit order."""
    offset, out = 0, []
    for u in units:
        out.append(Unit(index=u.index, files=u.files, group=u.group, start=u.start,
                        stop=u.stop, offset=offset, first={0: offset}, count=u.count))  # fmt: skip
        offset += u.count
    return plan.writing(sizes={0: offset}), out
