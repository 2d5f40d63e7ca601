"""Preparation on Ray Data: validate, normalise, split, write Parquet per split, manifest last.

Layout: ``datasets/{name}/{version}/split={train|val|test}/part-*.parquet`` + ``manifest.json``.
``version`` is a content hash of the source rows and the preparation parameters, so preparing
the same thing twice finds the manifest and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

import genai
from genai import layout
from genai.config import DataConfig, SplitConfig
from genai.data.sources import DataError, SourceData, load_source
from genai.progress import say
from genai.storage import METADATA_KEY, ArtifactStore

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
ROWS_PER_BLOCK = 250_000


@dataclass(frozen=True)
class PreparedDataset:
    """Where a prepared dataset lives and what it holds."""

    dataset: str
    version: str
    key: str
    uri: str
    rows: dict[str, int]
    manifest: dict[str, Any]
    created: bool

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "uri": self.uri,
            "rows": self.rows,
        }


def split_codes(labels: np.ndarray | None, n: int, split: SplitConfig, seed: int) -> np.ndarray:
    """Deterministic split per row (0 train, 1 val, 2 test), stratified by label.

    Every class with at least three rows gets at least one row in every split.
    """
    rng = np.random.default_rng(seed)
    codes = np.zeros(n, dtype=np.int8)
    if labels is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for idx in groups:
        idx = rng.permutation(idx)
        k = len(idx)
        n_val, n_test = round(k * split.val), round(k * split.test)
        if k >= 3:
            n_val, n_test = max(n_val, 1), max(n_test, 1)
        codes[idx[:n_test]] = 2
        codes[idx[n_test : n_test + n_val]] = 1
    return codes


def content_hash(source: SourceData, prep: dict[str, Any]) -> str:
    """sha256 of the rows, the labels and the preparation parameters."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(source.values).tobytes())
    h.update(str(source.values.shape).encode())
    if source.labels is not None:
        h.update(np.ascontiguousarray(source.labels).tobytes())
    h.update(json.dumps(prep, sort_keys=True).encode())
    return h.hexdigest()


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


def combine_stats(parts: list[dict[str, Any]], width: int) -> dict[str, dict[str, np.ndarray]]:
    """Merge per-block statistics into per-split mean, std, min, max."""
    acc: dict[str, dict[str, Any]] = {}
    for p in parts:
        a = acc.setdefault(
            p["split"],
            {
                "n": 0,
                "sum": np.zeros(width),
                "sumsq": np.zeros(width),
                "min": np.full(width, np.inf),
                "max": np.full(width, -np.inf),
                "bad_rows": [],
                "bad": 0,
            },
        )
        a["n"] += p["n"]
        a["sum"] += np.asarray(p["sum"])
        a["sumsq"] += np.asarray(p["sumsq"])
        a["min"] = np.minimum(a["min"], p["min"])
        a["max"] = np.maximum(a["max"], p["max"])
        a["bad"] += -p["bad"][-1]
        a["bad_rows"] += p["bad"][:-1]
    for a in acc.values():
        n = max(a["n"] - a["bad"], 1)
        a["mean"] = a["sum"] / n
        a["std"] = np.sqrt(np.maximum(a["sumsq"] / n - a["mean"] ** 2, 0.0))
    return acc


def normalisation(method: str, kind: str, train: dict[str, Any]) -> dict[str, Any]:
    """The affine map ``x_norm = (x - shift) / scale``, fitted on the train split."""
    if method == "auto":
        method = "minmax" if kind == "image" else "standard"
    width = len(train["mean"])
    if method == "standard":
        shift, scale = train["mean"], np.where(train["std"] > 1e-12, train["std"], 1.0)
    elif method == "minmax":  # one range for all features, so images keep their contrast
        lo, hi = float(train["min"].min()), float(train["max"].max())
        shift, scale = np.full(width, lo), np.full(width, (hi - lo) if hi > lo else 1.0)
    else:
        shift, scale = np.zeros(width), np.ones(width)
    return {"method": method, "shift": shift.tolist(), "scale": scale.tolist()}


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
    from ray.data.datasource import FilenameProvider

    class PartNames(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"part-{task_index:05d}.parquet"

    return PartNames()


def _check_finite(stats: dict[str, dict[str, Any]], source: SourceData, cfg: DataConfig) -> None:
    bad = sum(s["bad"] for s in stats.values())
    if bad:
        rows = sorted(r for s in stats.values() for r in s["bad_rows"])[:5]
        where = f" in {cfg.uri}" if cfg.uri else ""
        raise DataError(
            f"data: {bad} rows{where} hold NaN or inf values (first rows: {rows});"
            " clean or drop them before preparing"
        )


@dataclass(frozen=True)
class Located:
    """What a data config resolves to before anything is written: its rows and its name."""

    source: SourceData
    prep: dict[str, Any]
    digest: str
    name: str

    @property
    def version(self) -> str:
        return self.digest[:16]

    @property
    def key(self) -> str:
        return layout.dataset(self.name, self.version)


def locate(cfg: DataConfig) -> Located:
    """Load the source rows and name the dataset (its version is their content hash); no Ray."""
    source = load_source(cfg)
    if len(source.values) == 0:
        raise DataError(f"data: source {cfg.source!r} produced no rows")
    prep = {"normalise": cfg.normalise, "split": cfg.split.model_dump(), "seed": cfg.seed}
    digest = content_hash(source, {**source.params, **prep})
    return Located(source, prep, digest, cfg.dataset_name)


def find_prepared(
    cfg: DataConfig, store: ArtifactStore, located: Located | None = None
) -> PreparedDataset | None:
    """The dataset ``cfg`` names if the store holds it (its manifest), else None."""
    located = located or locate(cfg)
    key = located.key
    if not store.exists(layout.manifest(key)):
        return None
    manifest = store.read_json(layout.manifest(key))
    uri, rows = store.key_uri(key), manifest["rows"]
    return PreparedDataset(located.name, located.version, key, uri, rows, manifest, False)


def prepare(
    cfg: DataConfig, store: ArtifactStore, *, ray_address: str | None = None
) -> PreparedDataset:
    """Prepare ``cfg`` into ``store`` (or find it there already) and return where it is."""
    from genai.lease import hold

    t0 = time.perf_counter()
    located = locate(cfg)
    found = find_prepared(cfg, store, located)
    if found is not None:
        log.info("dataset %s/%s is in the store at %s", found.dataset, found.version, found.uri)
        return found
    # two commands preparing the same version write the same rows, but the second's commit
    # would replace the first's files under a reader's feet: one writes, the other waits
    with hold(store, layout.lease(located.key), f"dataset {located.name}/{located.version}"):
        found = find_prepared(cfg, store, located)
        if found is not None:
            return found
        return _write(cfg, store, located, ray_address, t0)


def _write(
    cfg: DataConfig,
    store: ArtifactStore,
    located: Located,
    ray_address: str | None,
    t0: float,
) -> PreparedDataset:
    import ray.data
    from ray.data import SaveMode

    from genai.cluster import ensure_ray

    source, prep, digest, name = located.source, located.prep, located.digest, located.name
    version, key = located.version, located.key
    n = len(source.values)
    codes = split_codes(source.labels, n, cfg.split, cfg.seed)
    table = _to_table(source.values, source.labels, codes)
    width = table.column("x").type.list_size
    n_blocks = max(1, math.ceil(n / ROWS_PER_BLOCK))
    step = math.ceil(n / n_blocks)
    blocks = [table.slice(i, step) for i in range(0, n, step)]

    ensure_ray(ray_address)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # same input, same files
    ctx.enable_progress_bars = False  # the one line below says what was done
    ds = ray.data.from_arrow(blocks)
    parts = ds.map_batches(partial_stats, batch_format="pyarrow", batch_size=None).take_all()
    stats = combine_stats(parts, width)
    _check_finite(stats, source, cfg)
    missing = [s for s in SPLITS if s not in stats]
    if missing:
        raise DataError(f"data: {n} rows are too few to fill the {', '.join(missing)} split(s)")

    norm = normalisation(cfg.normalise, source.kind, stats["train"])
    metadata = {
        "dataset": name,
        "version": version,
        "shape": list(source.shape),
        "dtype": "float32",
        "kind": source.kind,
        "normalisation": norm,
        "label": source.labels is not None,
    }
    fs, _ = store.arrow_filesystem()
    with store.staging(key) as tmp:
        ds.map_batches(
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
    rows = {s: int(stats[s]["n"]) for s in SPLITS}
    manifest = {
        "dataset": name,
        "version": version,
        "uri": store.key_uri(key),
        "content_hash": digest,
        "source": source.params,
        "preparation": prep,
        "rows": rows,
        **{k: metadata[k] for k in ("shape", "dtype", "kind", "normalisation")},
        "labels": _label_counts(source.labels, codes, source.params.get("label_names")),
        "stats": {
            s: {k: np.round(stats[s][k], 6).tolist() for k in ("mean", "std", "min", "max")}
            for s in SPLITS
        },
        "modes": source.modes.tolist() if source.modes is not None else None,
        "mode_std": source.mode_std,
        "files": [k.removeprefix(key + "/") for k in store.list(key)],
        "genai_version": genai.__version__,
    }
    store.write_json(layout.manifest(key), manifest)  # the commit: now the dataset is visible
    seconds = time.perf_counter() - t0
    say("prepare", f"{name}/{version}: {_rows(rows)} prepared on Ray Data in {seconds:.1f}s")
    return PreparedDataset(name, version, key, store.key_uri(key), rows, manifest, True)


def _rows(rows: dict[str, int]) -> str:
    return f"{sum(rows.values())} rows (" + ", ".join(f"{k} {v}" for k, v in rows.items()) + ")"


def _label_counts(
    labels: np.ndarray | None, codes: np.ndarray, names: list | None = None
) -> dict[str, Any] | None:
    """Rows per class and split; ``names`` (the user's label values, when they were mapped to
    0..K-1) maps a class back: class ``c`` is ``names[c]``."""
    if labels is None:
        return None
    classes = np.unique(labels)
    counts = {
        s: {str(c): int(np.sum((labels == c) & (codes == i))) for c in classes}
        for i, s in enumerate(SPLITS)
    }
    return {"classes": classes.tolist(), "counts": counts} | ({"names": names} if names else {})
