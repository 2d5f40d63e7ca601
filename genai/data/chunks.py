"""What one read task does with one unit of a streamed source (run in Ray tasks; no Ray here).

:func:`count_labels` is the first pass of labelled tabular data (how many rows of each label value
a unit holds); :func:`process_unit` the main pass: the unit's rows, read by
:func:`genai.data.readers.read_unit`, split, their statistics per split and, given the
normalisation, written as one Parquet file per split under the staging prefix. Problems with the
data (an unreadable image, a null, a row of another size) come back as ``errors`` naming the
file, so the command fails with one clear message and writes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genai import layout
from genai.config import SplitConfig
from genai.data.files import Plan, Unit
from genai.data.readers import BadUnit, Chunk, csv_tables, npy_rows, parquet_tables, read_unit
from genai.data.sources import DataError
from genai.data.split import SPLITS, permute, streamed_codes
from genai.storage import METADATA_KEY, ArtifactStore


# ------------------------------------------------------------------------------ first pass
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
            read = parquet_tables if plan.source == "parquet" else csv_tables
            tables = read(narrow, unit)
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
