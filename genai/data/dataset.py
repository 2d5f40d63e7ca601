"""Reading prepared datasets back: the manifest, a split's row groups, and the map back to data
units, with memory bounded by a budget rather than by the split's size.

A split is a list of Parquet row groups (the manifest's ``parts``, else the files' footers).
:class:`SplitReader` reads it two ways:

- a split that fits ``budget_bytes`` is read whole, in row order (:meth:`SplitReader.read_all`);
  a training worker then slices one global permutation per epoch, as genai always has;
- a larger one is streamed: each epoch orders the row groups by a seed, gives rank ``r`` of
  ``world`` an equal, contiguous share of that order, and shuffles within windows of at most
  ``budget_bytes / 2`` of rows (a window and its shuffled copy fit the budget), so a worker
  holds about ``budget_bytes`` of rows whatever the split's size (:meth:`SplitReader.epoch`).

Every order is a pure function of (seed, epoch, rank): a resumed run replays what an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genai import layout
from genai.storage import ArtifactStore, StoreError

BUDGET_MB = 128  # train.buffer_mb's default: rows a worker holds at once
MAX_SAMPLED_GROUPS = 32  # row groups a bounded sample of a large split is spread over


def read_manifest(store: ArtifactStore, key: str) -> dict[str, Any]:
    """The manifest of a committed dataset (its presence is what makes the dataset visible)."""
    if not store.exists(layout.manifest(key)):
        raise StoreError(f"no prepared dataset at {store.key_uri(key)} (manifest.json missing)")
    return store.read_json(layout.manifest(key))


@dataclass(frozen=True)
class Part:
    """One row group of one Parquet file of a split."""

    key: str
    group: int
    rows: int


def split_parts(store: ArtifactStore, key: str, split: str, manifest: dict) -> list[Part]:
    """The split's row groups: from the manifest (streamed preparation) or the footers."""
    folder = layout.split(key, split)
    listed = (manifest.get("parts") or {}).get(split)
    if listed is not None:
        return [
            Part(f"{folder}/{name}", g, rows)
            for name, groups in listed
            for g, rows in enumerate(groups)
        ]
    parts = []
    for file in (k for k in store.list(folder) if k.endswith(".parquet")):
        with _opened(store, file) as source:
            meta = pq.ParquetFile(source).metadata
        parts += [Part(file, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return parts


class SplitReader:
    """One split of a prepared dataset, read whole or streamed within ``budget_bytes``."""

    def __init__(
        self,
        store: ArtifactStore,
        key: str,
        split: str,
        *,
        budget_bytes: int = BUDGET_MB << 20,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.store, self.key, self.split = store, key, split
        self.manifest = manifest or read_manifest(store, key)
        self.shape = tuple(self.manifest["shape"])
        self.width = math.prod(self.shape)
        self.parts = split_parts(store, key, split, self.manifest)
        self.rows = sum(p.rows for p in self.parts)
        self.budget_bytes = budget_bytes
        self.whole = self.rows * 4 * self.width <= budget_bytes

    def __len__(self) -> int:
        return self.rows

    @property
    def labelled(self) -> bool:
        return bool(self.manifest.get("labels"))

    def _table(self, part: Part, columns: list[str]) -> pa.Table:
        with _opened(self.store, part.key) as source:  # only the group's pages are read
            # one thread, no read-ahead: a worker's memory is one row group, not several
            parquet = pq.ParquetFile(source, pre_buffer=False)
            return parquet.read_row_group(part.group, columns=columns, use_threads=False)

    def read_part(self, part: Part) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(values (B, *shape) float32, labels or None, row ids) of one row group."""
        columns = ["row", "x"] + (["label"] if self.labelled else [])
        table = self._table(part, columns)
        values = _values(table).reshape(len(table), *self.shape)
        labels = table.column("label").to_numpy() if self.labelled else None
        return values, labels, table.column("row").to_numpy()

    def read_all(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every row in row order: ``(values (N, *shape) float32, labels (N,) or None)``,
        placed into one array part by part (the split's size in memory, plus one part)."""
        ids = [self._table(p, ["row"]).column("row").to_numpy() for p in self.parts]
        rows = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        place = np.empty(len(rows), dtype=np.int64)
        place[np.argsort(rows, kind="stable")] = np.arange(len(rows))
        values = np.empty((len(rows), *self.shape), dtype=np.float32)
        labels = np.empty(len(rows), dtype=np.int64) if self.labelled else None
        start = 0
        for part in self.parts:
            x, y, _ = self.read_part(part)
            at = place[start : start + len(x)]
            values[at] = x
            if labels is not None:
                labels[at] = y
            start += len(x)
        return values, labels

    def head(self, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """At most ``n`` rows (fewer only when the split has fewer): the first ``n`` in row
        order when the split fits the budget, else :meth:`sample` (one group in memory at a
        time, so a large split's reference set stays bounded)."""
        if self.whole:  # copies: the rest of the split is not kept alive by a view
            values, labels = self.read_all()
            return values[:n].copy(), (labels[:n].copy() if labels is not None else None)
        kept = list(self.sample(n, seed=seed))
        if not kept:
            return np.zeros((0, *self.shape), np.float32), (
                np.zeros(0, np.int64) if self.labelled else None
            )
        # shuffled, so that the first rows of the sample (a floor of fewer samples) come from
        # every group it read, not from its first few
        order = np.random.default_rng(seed + 1).permutation(sum(len(x) for x, _ in kept))
        values = np.concatenate([x for x, _ in kept])[order]
        labels = np.concatenate([y for _, y in kept])[order] if self.labelled else None
        return values, labels

    def sample(self, n: int, *, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """A seeded sample of ``min(n, rows)`` rows, part by part (``(values, labels or None)``
        copies): row groups in a seeded order, from each a random ``n / 32`` of its rows (spread
        over :data:`MAX_SAMPLED_GROUPS` groups when they are large enough; more groups are read
        while rows are short). One group is in memory at a time; no rows in source order."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.parts))
        per = math.ceil(n / max(1, min(len(order), MAX_SAMPLED_GROUPS)))
        left = n
        for i in order:
            if left <= 0:
                return
            values, labels, _ = self.read_part(self.parts[i])
            take = rng.permutation(len(values))[:per][:left]
            left -= len(take)
            yield values[take], (labels[take] if labels is not None else None)

    def epoch(
        self, *, seed: int, rank: int = 0, world: int = 1, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Rank ``rank``'s batches ``(values, labels or None)`` of one streamed epoch (``seed``
        is the epoch's): every rank gets ``rows // world`` rows in whole batches of
        ``batch_size`` (a last short one dropped), shuffled within windows of the budget.

        The window and its shuffled copy are two buffers allocated once (half the budget each)
        and refilled from one row group at a time: a worker holds the budget, one row group and
        a batch, however large the split."""
        rng = np.random.default_rng(seed)
        order = [self.parts[i] for i in rng.permutation(len(self.parts))]
        per = self.rows // world
        lo, hi = rank * per, (rank + 1) * per
        window = max(batch_size, self.budget_bytes // (2 * 4 * self.width))
        cap = window + batch_size  # a window and the rows a last batch left over
        buf = np.empty((cap, *self.shape), np.float32)
        out = np.empty_like(buf)
        lab, out_lab = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
        shuffle = np.random.default_rng([seed, rank])
        held, start = 0, 0

        def flush(last: bool) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
            nonlocal held
            where = shuffle.permutation(held)
            np.take(buf[:held], where, axis=0, out=out[:held])
            np.take(lab[:held], where, out=out_lab[:held])
            whole = held - held % batch_size
            for i in range(0, whole, batch_size):  # copies: the buffers are refilled next
                y = out_lab[i : i + batch_size].copy() if self.labelled else None
                yield out[i : i + batch_size].copy(), y
            rest = held - whole
            buf[:rest], lab[:rest] = out[whole:held], out_lab[whole:held]
            held = 0 if last else rest

        for part in order:
            stop = start + part.rows
            if stop > lo and start < hi:
                values, labels, _ = self.read_part(part)
                a, b = max(lo - start, 0), min(hi, stop) - start
                while a < b:
                    n = min(b - a, cap - held)
                    buf[held : held + n] = values[a : a + n]
                    if labels is not None:
                        lab[held : held + n] = labels[a : a + n]
                    held, a = held + n, a + n
                    if held >= window:
                        yield from flush(last=False)
                del values, labels
            start = stop
            if start >= hi:
                break
        if held:
            yield from flush(last=True)


@contextlib.contextmanager
def _opened(store: ArtifactStore, key: str) -> Iterator[Any]:
    """A Parquet file of the store, for reading parts of it: memory-mapped on disk, ranged GETs
    on S3 (a dataset's files never change once committed)."""
    if store.protocol == "file":
        yield pa.memory_map(store.path(key))
        return
    with store.fs.open(store.path(key), "rb") as fh:
        yield fh


def _values(table: pa.Table) -> np.ndarray:
    col = table.column("x").combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)


def read_split(store: ArtifactStore, key: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One whole split as ``(values (N, *shape) float32, labels (N,) or None)``, in row order
    (the split's size in memory: tests and small data; training streams large splits)."""
    return SplitReader(store, key, split, budget_bytes=1 << 62).read_all()


def denormalise(values: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Map normalised values (N, *shape) back to the data's own units."""
    norm = manifest["normalisation"]
    shape = values.shape
    flat = values.reshape(shape[0], -1) * np.asarray(norm["scale"]) + np.asarray(norm["shift"])
    return flat.reshape(shape).astype(np.float32)
