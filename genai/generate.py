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

from genai.config import GenerateConfig
from genai.data.dataset import denormalise
from genai.evaluate.evaluate import check_finite
from genai.plots import image_grid, loss_curves, scatter
from genai.runs import history_of, load_trained
from genai.storage import ArtifactStore


def generate(
    store: ArtifactStore, run_id: str, cfg: GenerateConfig | None = None
) -> dict[str, Any]:
    """Draw ``cfg.n`` samples (seed ``cfg.seed``, ``cfg.batch_size`` at a time) and store them."""
    cfg = cfg or GenerateConfig()
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
    }
    key = f"samples/{run_id}"
    files = {"samples": store.write_table(f"{key}/samples.parquet", table, metadata=meta)}
    title = f"{run_id} ({manifest['dataset']})"
    if manifest["kind"] == "image":
        files["grid"] = store.write_bytes(f"{key}/grid.png", image_grid(values, title=title))
    elif values.shape[-1] == 2 and values.ndim == 2:
        modes = np.asarray(manifest["modes"]) if manifest.get("modes") else None
        files["scatter"] = store.write_bytes(
            f"{key}/scatter.png", scatter(values, modes=modes, title=title)
        )
    metrics_key = f"runs/{run_id}/metrics.parquet"
    if store.exists(metrics_key):
        history = history_of(store.read_table(metrics_key))
        files["loss_curve"] = store.write_bytes(
            f"{key}/loss_curve.png", loss_curves(history, title=title)
        )
    return {"run_id": run_id, "uri": files["samples"], "n": cfg.n, "files": files}
