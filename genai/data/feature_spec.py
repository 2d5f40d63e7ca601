"""What a dataset's domain feature network is and where it lives, without torch: the answer-
from-store path asks whether it is trained (:func:`trained`) without loading it."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from genai import layout
from genai.storage import ArtifactStore

FEATURE_DIM = 64
FORMAT = 2  # of the network and its training; part of its version
STEPS = 1000  # the budget's cap: at most this many steps, whatever the data's size
EPOCHS = 20  # a smaller train split gets 20 passes over it instead
BATCH = 64
SCALE_ROWS = 5000  # train rows the features are standardised over (and test rows it is tested on)
READ_MB = 64  # rows the training task holds at once (a larger train split streams)


def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (1, shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[1], shape[2])


def architecture(manifest: dict[str, Any]) -> dict[str, Any]:
    """The network a dataset gets: images up to 16x16 (8x8 digits) the one genai always used
    (width 32, no stem, every position into the embedding); larger images stride-2 stems to at
    most 16x16, width 16 and the mean over positions (a step's cost stays flat)."""
    shape = tuple(manifest["shape"])
    _, h, w = _dims(shape)
    stem = 0
    while min(h, w) > 16:
        h, w, stem = math.ceil(h / 2), math.ceil(w / 2), stem + 1
    labels = manifest.get("labels") or {}
    _, h, w = _dims(shape)
    return {
        "shape": list(shape),
        "n_classes": len(labels.get("classes", [])),
        "width": 32 if stem == 0 else 16,
        "stem": stem,
        "pretext": "half-image rolls",
        "pool": "flatten" if stem == 0 else "mean",
    }


def spec_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """Everything that makes the network what it is: architecture, budget, scaling."""
    return {"format": FORMAT, "arch": architecture(manifest), "steps": steps(manifest),
            "batch": BATCH,
            "lr": 2e-3, "seed": 0, "read_mb": READ_MB,
            "scaling": scaling(manifest)}  # fmt: skip


def scaling(manifest: dict[str, Any]) -> str:
    """How the features are standardised: over every train row when there are at most
    :func:`scale_rows` (the text these versions always had), else over a seeded sample of
    that many spread over the split's row groups (:func:`genai.data.features.first_rows`)."""
    n = scale_rows(manifest)
    if manifest["rows"]["train"] <= n:
        return f"standard, first {n} train rows"
    return f"standard, {n} train rows sampled over row groups"


def steps(manifest: dict[str, Any]) -> int:
    """The training budget: 20 epochs of the train split, at most :data:`STEPS` steps."""
    return min(STEPS, EPOCHS * math.ceil(manifest["rows"]["train"] / BATCH))


def scale_rows(manifest: dict[str, Any]) -> int:
    """Rows the scaling and the test use: 5,000, or fewer where that is more than 32 MB."""
    return max(1, min(SCALE_ROWS, (32 << 20) // (4 * math.prod(manifest["shape"]))))


def net_version(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def has_feature_net(manifest: dict[str, Any]) -> bool:
    """Every image dataset gets a domain feature network; other data is judged in its own space."""
    return manifest["kind"] == "image"


def features_key(manifest: dict[str, Any]) -> str:
    return layout.features(manifest["dataset"], manifest["version"], net_version(spec_of(manifest)))


SUMMARY = ("net_version", "test_accuracy", "pretext_accuracy", "seconds")


def summary(store: ArtifactStore, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """What a command says of the stored network: its version, accuracies and training cost."""
    if not has_feature_net(manifest):
        return None
    key = layout.features_meta(features_key(manifest))
    if not store.exists(key):
        return None
    meta = store.read_json(key)
    return {k: meta[k] for k in SUMMARY}


def trained(store: ArtifactStore, manifest: dict[str, Any]) -> bool:
    """Whether data that needs a feature network (images) has this genai's one stored."""
    if not has_feature_net(manifest):
        return True
    return store.exists(layout.features_meta(features_key(manifest)))
