"""Reading prepared datasets back: manifest, splits as arrays, and the map back to data units."""

from __future__ import annotations

from typing import Any

import numpy as np

from genai import layout
from genai.storage import ArtifactStore, StoreError


def read_manifest(store: ArtifactStore, key: str) -> dict[str, Any]:
    """The manifest of a committed dataset (its presence is what makes the dataset visible)."""
    if not store.exists(layout.manifest(key)):
        raise StoreError(f"no prepared dataset at {store.key_uri(key)} (manifest.json missing)")
    return store.read_json(layout.manifest(key))


def read_split(store: ArtifactStore, key: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One split as ``(values (N, *shape) float32, labels (N,) or None)``, in row order."""
    manifest = read_manifest(store, key)
    table = store.read_table(layout.split(key, split)).sort_by("row")
    col = table.column("x").combine_chunks()
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    values = values.reshape(len(col), *manifest["shape"])
    labels = table.column("label").to_numpy().copy() if "label" in table.column_names else None
    return values, labels


def denormalise(values: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Map normalised values (N, *shape) back to the data's own units."""
    norm = manifest["normalisation"]
    shape = values.shape
    flat = values.reshape(shape[0], -1) * np.asarray(norm["scale"]) + np.asarray(norm["shift"])
    return flat.reshape(shape).astype(np.float32)
