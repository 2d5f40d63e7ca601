"""Sample generation: n seeded samples in data units -> Parquet, plus pictures.

``samples/{run_id}/samples.parquet``: run_id, index, seed, x (the values, flattened; the shape
is in the schema metadata), and ``grid.png`` (images) or ``scatter.png`` (2-D data, true modes
marked), and ``loss_curve.png`` from the run's metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from genai import layout
from genai.config import GenerateConfig
from genai.data.dataset import denormalise
from genai.evaluate.evaluate import check_finite
from genai.plots import image_grid, loss_curves, scatter
from genai.progress import say
from genai.runs import history_of, load_trained
from genai.storage import ArtifactStore
from genai.tracking import attach

PICTURES = ("grid", "scatter", "loss_curve")


def stored_samples(store: ArtifactStore, run_id: str, cfg: GenerateConfig) -> dict[str, Any] | None:
    """What :func:`generate` returned for ``run_id`` if its samples were made with ``cfg``."""
    key = layout.samples_table(run_id)
    if not store.exists(key):
        return None
    schema = store.read_schema(key)
    if store.table_metadata(schema).get("generate") != cfg.model_dump(mode="json"):
        return None
    files = {"samples": store.key_uri(key)}
    for name in PICTURES:
        if store.exists(layout.samples_picture(run_id, name)):
            files[name] = store.key_uri(layout.samples_picture(run_id, name))
    return {"run_id": run_id, "uri": files["samples"], "n": cfg.n, "files": files, "reused": True}


def generate(
    store: ArtifactStore, run_id: str, cfg: GenerateConfig | None = None
) -> dict[str, Any]:
    """Draw ``cfg.n`` samples (seed ``cfg.seed``, ``cfg.batch_size`` at a time) and store them
    (or return the stored ones made with the same settings)."""
    cfg = cfg or GenerateConfig()
    done = stored_samples(store, run_id, cfg)
    if done is not None:
        return done
    model, _run, manifest, _ = load_trained(store, run_id)
    samples = model.sample_batched(
        cfg.n, batch_size=cfg.batch_size, generator=torch.Generator().manual_seed(cfg.seed)
    )
    check_finite(samples, run_id)
    values = denormalise(samples.numpy(), manifest)  # (n, *shape) in data units
    flat = values.reshape(len(values), -1)
    table = pa.table(
        {
            "run_id": [run_id] * len(flat),
            "index": np.arange(len(flat), dtype=np.int64),
            "seed": np.full(len(flat), cfg.seed, dtype=np.int64),
            "x": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1]),
        }
    )
    meta = {
        "run_id": run_id,
        "shape": list(manifest["shape"]),
        "dtype": "float32",
        "units": "data",
        "dataset": manifest["dataset"],
        "version": manifest["version"],
        "seed": cfg.seed,
        "generate": cfg.model_dump(mode="json"),
    }
    title = f"{run_id} ({manifest['dataset']})"
    files: dict[str, str] = {}
    if manifest["kind"] == "image":
        files["grid"] = image_grid(values, title=title)
    elif values.shape[-1] == 2 and values.ndim == 2:
        modes = np.asarray(manifest["modes"]) if manifest.get("modes") else None
        files["scatter"] = scatter(values, modes=modes, title=title)
    if store.exists(layout.run_metrics(run_id)):
        history = history_of(store.read_table(layout.run_metrics(run_id)))
        files["loss_curve"] = loss_curves(history, title=title)
    uris = {
        name: store.write_bytes(layout.samples_picture(run_id, name), png)
        for name, png in files.items()
    }
    # the samples last: their metadata is what marks the stage done for these settings
    key = layout.samples_table(run_id)
    uris = {"samples": store.write_table(key, table, metadata=meta), **uris}
    pictures = {f"{name}.png": png for name, png in files.items()}
    attach(store, layout.run(run_id), files=pictures, folder="samples")
    say("generate", f"{run_id}: {cfg.n} samples, {', '.join(files) or 'no picture'}")
    return {"run_id": run_id, "uri": uris["samples"], "n": cfg.n, "files": uris, "reused": False}
