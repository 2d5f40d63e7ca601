"""A user's files (and the generated ``shapes``) as a streamed source: what is there, its version,
and the read units the preparation hands to Ray tasks.

Nothing here reads a row. :func:`list_source` lists the files (path, size, modification time on
disk or ETag on S3); the dataset's version hashes that listing with the preparation parameters,
so a prepared dataset is found again without Ray and without reading the data. :func:`plan`
then reads what one header or footer says (an image's size and mode, a Parquet schema, a CSV
header, a .npy header) and cuts the source into units of about ``UNIT_BYTES`` of rows:
a chunk of image files, a Parquet row group, a CSV file, a range of .npy rows, a chunk of shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from fsspec.implementations.local import LocalFileSystem

from genai.config import DataConfig
from genai.data.shapes import SIZE
from genai.data.sources import DataError
from genai.data.split import SPLITS
from genai.storage import StoreError, s3_filesystem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
UNIT_BYTES = 16 << 20  # rows per read unit (and per written row group): about 16 MB as float32
STREAM_FORMAT = 1  # bump when the streamed split or layout changes: every version changes
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
PIXEL_RANGE = {"1": 255.0, "L": 255.0, "LA": 255.0, "La": 255.0, "P": 255.0, "PA": 255.0,
               "RGB": 255.0, "RGBA": 255.0, "RGBa": 255.0, "RGBX": 255.0, "CMYK": 255.0,
               "YCbCr": 255.0, "LAB": 255.0, "HSV": 255.0, "I;16": 65535.0, "I;16L": 65535.0,
               "I;16B": 65535.0, "I;16N": 65535.0}  # fmt: skip


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def open_fs(uri: str, field: str = "data.uri"):
    """(fsspec filesystem, path) of a local or s3:// location that exists."""
    if is_s3(uri):
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


@dataclass(frozen=True)
class Listing:
    """The files of a source, sorted: (path relative to ``root``, size, stamp), and the
    parameters that describe the source; ``digest`` hashes both."""

    uri: str
    root: str
    files: tuple[tuple[str, int, str], ...]
    params: dict[str, Any]

    def digest(self, prep: dict[str, Any]) -> str:
        h = hashlib.sha256(json.dumps([STREAM_FORMAT, self.params, prep], sort_keys=True).encode())
        for rel, size, stamp in self.files:
            h.update(f"{rel}\0{size}\0{stamp}\n".encode())
        return h.hexdigest()

    def path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root


def _stamp(info: dict[str, Any]) -> str:
    etag = info.get("ETag") or info.get("etag")
    return str(etag).strip('"') if etag else str(info.get("mtime") or info.get("LastModified"))


def _find(uri: str, suffixes: tuple[str, ...]) -> tuple[str, tuple[tuple[str, int, str], ...]]:
    fs, root = open_fs(uri)
    if fs.isfile(root):
        info = fs.info(root)
        return root, (("", int(info["size"]), _stamp(info)),)
    found = fs.find(root, detail=True)
    files = []
    for path, info in sorted(found.items()):
        rel = path.removeprefix("file://")[len(root.rstrip("/")) + 1 :]
        if rel.lower().endswith(suffixes) and not any(p.startswith(".") for p in rel.split("/")):
            files.append((rel, int(info["size"]), _stamp(info)))
    return root, tuple(files)


def list_source(cfg: DataConfig) -> Listing:
    """List a streamed source's files (no row is read); a clear error when there are none."""
    params: dict[str, Any] = {"source": cfg.source}
    if cfg.source == "shapes":
        return Listing("", "", (), {**params, "n": cfg.n or SHAPES_N, "size": SIZE})
    uri = cfg.uri or ""
    params["uri"] = uri
    if cfg.source == "images":
        root, files = _find(uri, IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"data.uri: {uri} holds no {'/'.join(IMAGE_SUFFIXES)} images")
        if cfg.image_labels:
            loose = [rel for rel, _, _ in files if "/" not in rel]
            if loose:
                raise DataError(
                    f"data.image_labels: {len(loose)} images sit directly in {uri} (e.g."
                    f" {loose[0]!r}); put each class in a subfolder named after it, or set"
                    " data.image_labels false"
                )
        params["labels"] = cfg.image_labels
    else:
        suffix = {"parquet": (".parquet", ".pq"), "csv": (".csv",), "npy": (".npy",)}
        root, files = _find(uri, suffix[cfg.source])
        if not files:
            raise DataError(f"data.uri: {uri} holds no {'/'.join(suffix[cfg.source])} files")
        params |= {"columns": list(cfg.columns) if cfg.columns else None,
                   "label_column": cfg.label_column, "label_uri": cfg.label_uri,
                   "shape": list(cfg.shape) if cfg.shape else None}  # fmt: skip
        if cfg.label_uri:
            _, labels = _find(cfg.label_uri, (".npy",))
            params["label_file"] = list(labels[0]) if labels else None
    return Listing(uri, root, files, params)


SHAPES_N = 6000


# ---------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """What every read task needs to know: how to read a unit and what to write.

    ``names``: the label values classes 0..K-1 stand for (None: unlabelled, or labels already
    0..K-1 when ``labelled``); ``sizes``: rows per class overall (class 0 holds every row of
    unlabelled data)."""

    source: str
    uri: str
    root: str
    kind: str
    shape: tuple[int, ...]
    labelled: bool
    columns: tuple[str, ...] = ()
    label_column: str | None = None
    label_uri: str | None = None
    image_mode: str = ""  # "grey" or "colour": what every image of the folder must be
    first_file: str = ""  # the file the folder's size and mode were read from
    first_mode: str = ""  # its PIL mode: every image's pixel depth must match it
    names: tuple | None = None
    sizes: dict[int, int] = field(default_factory=dict)
    total: int = 0  # rows overall: row ids are a seeded permutation of 0..total-1
    split: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    shift: tuple[float, ...] | None = None  # normalisation; None: statistics only, no writes
    scale: tuple[float, ...] | None = None
    store: str = ""
    staging: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(np.prod(self.shape))

    @property
    def rows_per_group(self) -> int:
        return max(1, UNIT_BYTES // (4 * self.width))

    def writing(self, **changes: Any) -> Plan:
        return replace(self, **changes)


@dataclass(frozen=True)
class Unit:
    """One task's rows: ``files`` (images: paths; parquet: one file and ``group``; csv, npy: one
    file), or ``start``/``stop`` (npy rows, shapes chunk); ``rows``: the global row ids of its
    rows when known in advance (images), else ``offset``, the id of its first row."""

    index: int
    files: tuple[str, ...] = ()
    group: int = -1
    start: int = 0
    stop: int = 0
    offset: int = 0
    rows: tuple[int, ...] = ()
    labels: tuple[int, ...] = ()  # images: each file's class (from its subfolder)
    within: tuple[int, ...] = ()  # images: each file's index among its class's files
    first: dict[int, int] = field(default_factory=dict)  # per class: index of its first row here
    count: int = 0  # rows, when known before reading

    def describe(self, plan: Plan) -> str:
        if plan.source == "images":
            return f"{len(self.files)} images from {self.files[0]!r}"
        if plan.source == "shapes":
            return f"shapes {self.start}..{self.stop - 1}"
        where = (self.files[0] if self.files else "") or plan.uri
        if self.group >= 0:
            return f"{where} row group {self.group}"
        return f"{where} rows {self.start}..{self.stop - 1}" if plan.source == "npy" else where


def unit_rows(plan: Plan) -> int:
    return max(1, UNIT_BYTES // (4 * plan.width))


def split_shares(cfg: DataConfig) -> dict[str, float]:
    return {s: float(getattr(cfg.split, s)) for s in SPLITS}
