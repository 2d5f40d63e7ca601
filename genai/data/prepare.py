"""Preparation: validate, normalise, split, write Parquet per split, manifest last; then, for
image data, the domain feature network.

Layout: ``datasets/{name}/{version}/split={train|val|test}/part-*.parquet`` + ``manifest.json``.
``version`` hashes what the data is and how it is prepared, so preparing the same thing twice
finds the manifest and writes nothing:

- the built-in sources held in memory (digits, photos, ring8, grid25, moons, swissroll): a hash
  of their rows; Ray Data computes the statistics and writes the splits
  (:mod:`genai.data.in_memory`);
- a user's files and the generated shapes: a hash of the file listing (paths, sizes,
  modification times or ETags) or of the generator's parameters; parallel Ray tasks read,
  split and write them (:mod:`genai.data.streamed`), so neither the command's memory nor a
  task's grows with the data. Either way a prepared dataset is found without Ray.

The feature network (:mod:`genai.data.features`) trains in a Ray task with a fixed budget and
says how it goes at least every 10 s.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import genai
from genai import layout
from genai.config import DataConfig, SplitConfig
from genai.data.dataset import read_manifest
from genai.data.feature_spec import features_key, has_feature_net, trained
from genai.data.feature_spec import summary as feature_net_summary
from genai.data.files import Listing, list_source
from genai.data.sources import DataError, SourceData, load_source
from genai.data.split import SPLITS, class_counts
from genai.lease import hold
from genai.progress import heartbeat, say
from genai.storage import ArtifactStore

log = logging.getLogger(__name__)

STREAMED = ("images", "parquet", "csv", "npy", "shapes")


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

    def record(self, store: ArtifactStore) -> dict[str, Any]:
        """What ``genai prepare`` and ``api.prepare`` return: the feature network's too."""
        return self.summary() | {
            "created": self.created,
            "feature_net": feature_net_summary(store, self.manifest),
        }


def content_hash(source: SourceData, prep: dict[str, Any]) -> str:
    """sha256 of the rows, the labels and the preparation parameters."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(source.values).tobytes())
    h.update(str(source.values.shape).encode())
    if source.labels is not None:
        h.update(np.ascontiguousarray(source.labels).tobytes())
    h.update(json.dumps(prep, sort_keys=True).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Located:
    """What a data config resolves to before anything is written: its rows (in memory) or its
    file listing (streamed), and its name and version."""

    source: SourceData | None
    listing: Listing | None
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
    """Name the dataset and its version; no Ray, and no row of a user's files read."""
    prep = {"normalise": cfg.normalise, "split": cfg.split.model_dump(), "seed": cfg.seed}
    if cfg.source in STREAMED:
        listing = list_source(cfg)
        return Located(None, listing, prep, listing.digest(prep), cfg.dataset_name)
    source = load_source(cfg)
    if len(source.values) == 0:
        raise DataError(f"data: source {cfg.source!r} produced no rows")
    digest = content_hash(source, {**source.params, **prep})
    return Located(source, None, prep, digest, cfg.dataset_name)


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
    cfg: DataConfig,
    store: ArtifactStore,
    *,
    ray_address: str | None = None,
    features: bool = True,
    wait: bool = True,
) -> PreparedDataset:
    """Prepare ``cfg`` into ``store`` (or find it there already) and return where it is; image
    data also gets its feature network (``features``). Another command preparing it is waited
    for, or with ``wait=False`` named in a :class:`genai.lease.LeaseHeld` error."""
    t0 = time.perf_counter()
    located = locate(cfg)
    found = find_prepared(cfg, store, located)
    if found is None:
        # two commands preparing the same version write the same rows, but the second's commit
        # would replace the first's files under a reader's feet: one writes, the other waits
        what = f"dataset {located.name}/{located.version}"
        with hold(store, layout.lease(located.key), what, wait=wait):
            found = find_prepared(cfg, store, located) or _write(
                cfg, store, located, ray_address, t0
            )
    else:
        log.info("dataset %s/%s is in the store at %s", found.dataset, found.version, found.uri)
    if features and has_feature_net(found.manifest):
        ensure_feature_net(store, found.key, ray_address=ray_address, load=False, wait=wait)
    return found


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
    return {"method": method, "shift": np.asarray(shift).tolist(), "scale": scale.tolist()}


def _check(stats: dict[str, dict[str, Any]], where: str) -> None:
    bad = sum(s["bad"] for s in stats.values())
    if bad:
        rows = [r for s in SPLITS if s in stats for r in stats[s]["bad_rows"]][:5]
        raise DataError(
            f"data: {bad} rows{where} hold NaN or inf values (first rows: {rows});"
            " clean or drop them before preparing"
        )
    missing = [s for s in SPLITS if stats.get(s, {}).get("n", 0) == 0]
    if missing:
        n = sum(s["n"] for s in stats.values())
        raise DataError(f"data: {n} rows are too few to fill the {', '.join(missing)} split(s)")


def _write(
    cfg: DataConfig, store: ArtifactStore, located: Located, ray_address: str | None, t0: float
) -> PreparedDataset:
    from genai.cluster import ensure_ray  # imports Ray: only when there is work

    name, version, key = located.name, located.version, located.key
    where = f" in {cfg.uri}" if cfg.uri else ""
    ensure_ray(ray_address)
    metadata = {"dataset": name, "version": version, "dtype": "float32"}
    manifest: dict[str, Any] = {}
    with store.staging(key) as tmp:
        if located.source is not None:
            from genai.data.in_memory import InMemory  # Ray Data: when writing

            source = located.source
            data = InMemory(source, cfg)
            stats = data.stats()
            _check(stats, where)
            norm = normalisation(cfg.normalise, source.kind, stats["train"])
            meta = {**metadata, "shape": list(source.shape), "kind": source.kind,
                    "normalisation": norm, "label": source.labels is not None}  # fmt: skip
            data.write(store, tmp, norm, meta)
            labels = _label_counts(source.labels, data.codes, source.params.get("label_names"))
            manifest |= {"source": source.params, "labels": labels,
                         "modes": source.modes.tolist() if source.modes is not None else None,
                         "mode_std": source.mode_std}  # fmt: skip
        else:
            from genai.data.streamed import write_streamed  # Ray: when writing

            def fitted(train: dict[str, Any]) -> dict[str, Any]:
                return normalisation(cfg.normalise, "image" if cfg.image else "", train)

            plan, result, norm = write_streamed(
                cfg, store, located.listing, tmp, metadata, fitted, lambda s: _check(s, where)
            )
            stats = result["stats"]
            meta = {"shape": list(plan.shape), "kind": plan.kind}
            labels = _streamed_labels(plan, stats) if plan.labelled else None
            manifest |= {"source": located.listing.params, "labels": labels, "modes": None,
                         "mode_std": None, "parts": result["parts"],
                         "files_listed": len(located.listing.files)}  # fmt: skip
        rows = {s: int(stats[s]["n"]) for s in SPLITS}
        files = [k.removeprefix(tmp + "/") for k in store.list(tmp)]
    manifest = {
        "dataset": name,
        "version": version,
        "uri": store.key_uri(key),
        "content_hash": located.digest,
        "preparation": located.prep,
        "rows": rows,
        "shape": meta["shape"],
        "dtype": "float32",
        "kind": meta["kind"],
        "normalisation": norm,
        **manifest,
        "stats": {
            s: {k: np.round(stats[s][k], 6).tolist() for k in ("mean", "std", "min", "max")}
            for s in SPLITS
        },
        "files": files,
        "genai_version": genai.__version__,
    }
    store.write_json(layout.manifest(key), manifest)  # the commit: now the dataset is visible
    seconds = time.perf_counter() - t0
    how = "Ray Data" if located.source is not None else "Ray tasks"
    say("prepare", f"{name}/{version}: {_rows(rows)} prepared on {how} in {seconds:.1f}s")
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


def _streamed_labels(plan: Any, stats: dict[str, Any]) -> dict[str, Any]:
    """Classes and, per class, its rows overall (a streamed split's per-class counts follow
    from :func:`genai.data.split.class_counts` and are not counted again)."""

    split = SplitConfig(**plan.split)
    classes = sorted(plan.sizes)
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for c in classes:
        n_val, n_test = class_counts(plan.sizes[c], split)
        counts["train"][str(c)] = plan.sizes[c] - n_val - n_test
        counts["val"][str(c)], counts["test"][str(c)] = n_val, n_test
    names = list(plan.names) if plan.names is not None else None
    return {"classes": classes, "counts": counts} | ({"names": names} if names else {})


def _train_features(store_uri: str, dataset_key: str, threads: int) -> Iterator[dict[str, Any]]:
    """The Ray task: torch is imported there, never in the command's process."""
    import torch  # in the task's worker only: the command answers from the store without torch

    from genai.data.features import train_feature_net

    torch.set_num_threads(threads)
    yield from train_feature_net(store_uri, dataset_key)


def ensure_feature_net(
    store: ArtifactStore,
    dataset_key: str,
    *,
    ray_address: str | None = None,
    load: bool = True,
    wait: bool = True,
):
    """The dataset's feature network (:class:`genai.data.features.TrainedFeatures`, or None
    unless ``load``), trained first in a Ray task if the store lacks it; None for data that is
    not images."""
    manifest = read_manifest(store, dataset_key)
    if not has_feature_net(manifest):
        return None
    if not trained(store, manifest):
        # one command trains it; another waits for it (the same bytes, but two writers could
        # leave model.pt of one beside meta.json of the other)
        key = features_key(manifest)
        with hold(store, layout.lease(key), f"feature network {key}", wait=wait):
            if not trained(store, manifest):
                _train_in_a_task(store, dataset_key, manifest, ray_address)
    if not load:
        return None
    from genai.data.features import load_feature_net  # torch: only when it is loaded

    return load_feature_net(store, dataset_key)


def _train_in_a_task(
    store: ArtifactStore, dataset_key: str, manifest: dict[str, Any], ray_address: str | None
) -> None:
    import ray  # Ray only when there is work: locate and find_prepared answer without it

    from genai.cluster import ensure_ray

    ensure_ray(ray_address)
    cpus = max(1, min(2, int(ray.cluster_resources().get("CPU", 1))))
    task = ray.remote(num_cpus=cpus, max_retries=1)(_train_features)
    name = f"{manifest['dataset']}/{manifest['version']}"
    # the task's first report comes after its worker starts and 8 s of steps: a heartbeat says
    # the last state again meanwhile, so the console is never silent for more than 10 s
    with heartbeat("features") as status:
        status(f"{name}: training the domain feature network in a Ray task")
        for ref in task.remote(store.uri, dataset_key, cpus):
            report = ray.get(ref)
            if report.get("done"):
                acc = report["test_accuracy"]
                what = f"{acc:.1%} test accuracy, " if acc is not None else ""
                seams = report["pretext_accuracy"]
                status(f"{name}: {what}{seams:.1%} of half-image shifts found,"
                       f" {report['seconds']:.1f}s")  # fmt: skip
            else:
                step, loss, acc = report["step"], report["loss"], report["accuracy"]
                status(f"{name}: step {step}/{report['steps']}, loss {loss:.3f},"
                       f" batch accuracy {acc:.1%}")  # fmt: skip
