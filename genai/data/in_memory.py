"""The built-in sources' preparation on Ray Data: their rows are made in the command's process
(they are small), split by :func:`genai.data.split.split_codes` (or by the source, photos), and
Ray Data computes the statistics and writes the splits. This is how genai always prepared them,
so their versions, splits and files do not change.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import ray.data
from ray.data import SaveMode
from ray.data.datasource import FilenameProvider

from genai.config import DataConfig
from genai.data.chunks import empty_stats, finish_stats, merge_stats
from genai.data.sources import SourceData
from genai.data.split import SPLITS, split_codes
from genai.storage import METADATA_KEY, ArtifactStore

ROWS_PER_BLOCK = 250_000


def _to_table(values: np.ndarray, labels: np.ndarray | None, codes: np.ndarray) -> pa.Table:
    flat = values.reshape(len(values), -1)  # (N, D)
    cols = {
        "row": pa.array(np.arange(len(values), dtype=np.int64)),
        "x": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1]),
    }
    if labels is not None:
        cols["label"] = pa.array(labels)
    cols["split"] = pa.array(np.asarray(SPLITS)[codes])
    return pa.table(cols)


def _flat(batch: pa.Table) -> np.ndarray:
    col = batch.column("x").combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)


def partial_stats(batch: pa.Table) -> pa.Table:
    """Per split in this block: count, sums, squares, extremes and non-finite values."""
    x = _flat(batch).astype(np.float64)  # (B, D)
    split = batch.column("split").to_numpy(zero_copy_only=False)
    rows = batch.column("row").to_numpy()
    out: dict[str, list] = {k: [] for k in ("split", "n", "sum", "sumsq", "min", "max", "bad")}
    for name in SPLITS:
        part = x[split == name]
        if not len(part):
            continue
        finite = np.isfinite(part).all(axis=1)
        bad_rows = rows[split == name][~finite]
        clean = part[finite] if len(part[finite]) else np.zeros((1, x.shape[1]))
        out["split"].append(name)
        out["n"].append(len(part))
        out["sum"].append(clean.sum(0).tolist())
        out["sumsq"].append((clean**2).sum(0).tolist())
        out["min"].append(clean.min(0).tolist())
        out["max"].append(clean.max(0).tolist())
        out["bad"].append(bad_rows[:5].tolist() + [-len(bad_rows)])  # first rows, -count
    return pa.table(out)


def combine_stats(parts: list[dict[str, Any]], width: int) -> dict[str, dict[str, Any]]:
    """Merge per-block statistics into per-split mean, std, min, max."""
    acc: dict[str, dict[str, Any]] = {}
    for p in parts:
        a = acc.setdefault(p["split"], empty_stats(width))
        bad = -p["bad"][-1]
        merge_stats(a, {"n": p["n"], "sum": np.asarray(p["sum"]), "sumsq": np.asarray(p["sumsq"]),
                        "min": np.asarray(p["min"]), "max": np.asarray(p["max"]), "bad": bad,
                        "bad_rows": [f"row {r}" for r in p["bad"][:-1]]})  # fmt: skip
    return {s: finish_stats(a) for s, a in acc.items()}


def normalise_batch(
    batch: pa.Table, *, shift: list[float], scale: list[float], metadata: dict[str, Any]
) -> pa.Table:
    """Ray Data map: apply the affine normalisation and attach the schema metadata."""
    x = ((_flat(batch) - np.asarray(shift)) / np.asarray(scale)).astype(np.float32)  # (B, D)
    col = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    batch = batch.set_column(batch.schema.get_field_index("x"), "x", col)
    return batch.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})


def part_names():
    """``part-00000.parquet`` per write task, as the store layout names them."""

    class PartNames(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"part-{task_index:05d}.parquet"

    return PartNames()


class InMemory:
    """A source held in memory, split and ready for Ray Data: statistics first, then the
    normalised write (:meth:`write`) once the caller has chosen the normalisation."""

    def __init__(self, source: SourceData, cfg: DataConfig) -> None:
        n = len(source.values)
        codes = source.codes if source.codes is not None else (
            split_codes(source.labels, n, cfg.split, cfg.seed)
        )  # fmt: skip
        self.codes = codes
        table = _to_table(source.values, source.labels, codes)
        self.width = table.column("x").type.list_size
        step = math.ceil(n / max(1, math.ceil(n / ROWS_PER_BLOCK)))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # same input, same files
        ctx.enable_progress_bars = False  # the command's own lines say what was done
        self.ds = ray.data.from_arrow([table.slice(i, step) for i in range(0, n, step)])

    def stats(self) -> dict[str, dict[str, Any]]:
        parts = self.ds.map_batches(partial_stats, batch_format="pyarrow", batch_size=None)
        return combine_stats(parts.take_all(), self.width)

    def write(self, store: ArtifactStore, tmp: str, norm: dict, metadata: dict) -> None:
        fs, _ = store.arrow_filesystem()
        self.ds.map_batches(
            normalise_batch,
            fn_kwargs={"shift": norm["shift"], "scale": norm["scale"], "metadata": metadata},
            batch_format="pyarrow",
            batch_size=None,
        ).write_parquet(
            store.path(tmp),
            filesystem=fs,
            partition_cols=["split"],
            filename_provider=part_names(),
            mode=SaveMode.OVERWRITE,  # a fresh staging prefix: nothing to overwrite
        )
