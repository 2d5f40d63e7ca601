"""Sample generation: n seeded samples in data units -> Parquet, plus pictures.

``samples/{run_id}/samples.parquet``: run_id, index, seed, x (the values, flattened; the shape
is in the schema metadata), and ``grid.png`` (images: the samples beside as many real test rows,
drawn pixel for pixel over the data's range) or ``scatter.png`` (2-D data, true modes marked),
and ``loss_curve.png`` from the run's metrics. A diffusion model samples with DDIM
(``generate.sampler: fast``) unless told otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from genai import layout
from genai.config import GenerateConfig, same_settings
from genai.data.dataset import SplitReader, denormalise
from genai.evaluate.evaluate import draw
from genai.plots import image_grid, loss_curves, scatter
from genai.progress import heartbeat, say
from genai.storage import ArtifactStore
from genai.tracking import attach
from genai.train.runs import read_history
from genai.train.trained import load_trained

PICTURES = ("grid", "scatter", "loss_curve")


@dataclass(frozen=True)
class Samples:
    """What :func:`generate` left in the store: the samples' Parquet (``uri``) and every file
    (``files``: samples, grid or scatter, loss_curve)."""

    run_id: str
    uri: str
    n: int
    files: dict[str, str]
    reused: bool = False

    def record(self) -> dict[str, Any]:
        """What ``genai generate`` and ``api.generate`` return."""
        return asdict(self)


def value_range(manifest: dict[str, Any]) -> tuple[float, float]:
    """The data's low and high in its own units: a pixel format's range, else the train split's."""
    norm = manifest["normalisation"]
    if norm.get("method") == "pixel_range":
        return 0.0, float(norm["scale"][0])
    train = manifest["stats"]["train"]
    return float(min(train["min"])), float(max(train["max"]))


def stored_samples(store: ArtifactStore, run_id: str, cfg: GenerateConfig) -> Samples | None:
    """What :func:`generate` returned for ``run_id`` if its samples were made with ``cfg``."""
    key = layout.samples_table(run_id)
    if not store.exists(key):
        return None
    schema = store.read_schema(key)
    if not same_settings(store.table_metadata(schema).get("generate"), cfg, "generate"):
        return None
    files = {"samples": store.key_uri(key)}
    for name in PICTURES:
        if store.exists(layout.samples_picture(run_id, name)):
            files[name] = store.key_uri(layout.samples_picture(run_id, name))
    return Samples(run_id, files["samples"], cfg.n, files, reused=True)


def generate(
    store: ArtifactStore,
    run_id: str,
    cfg: GenerateConfig | None = None,
    *,
    ray_address: str | None = None,
) -> Samples:
    """Draw ``cfg.n`` samples (seed ``cfg.seed``, ``cfg.batch_size`` at a time) and store them
    (or return the stored ones made with the same settings)."""
    cfg = cfg or GenerateConfig()
    done = stored_samples(store, run_id, cfg)
    if done is not None:
        return done
    trained = load_trained(store, run_id, ray_address=ray_address)
    manifest, dkey = trained.manifest, trained.dataset_key
    with heartbeat("generate") as status:
        samples, sampler = draw(trained.model, run_id, cfg.n, cfg, status)
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
        "sampler": sampler,
        "generate": cfg.model_dump(mode="json"),
    }
    title = f"{run_id} ({manifest['dataset']})"
    files: dict[str, str] = {}
    if manifest["kind"] == "image":
        real = denormalise(SplitReader(store, dkey, "test", manifest=manifest).head(64)[0],
                           manifest)  # fmt: skip
        files["grid"] = image_grid(values, value_range=value_range(manifest), title=title,
                                   real=real)  # fmt: skip
    elif values.shape[-1] == 2 and values.ndim == 2:
        modes = np.asarray(manifest["modes"]) if manifest.get("modes") else None
        files["scatter"] = scatter(values, modes=modes, title=title)
    history = read_history(store, run_id)
    if history:
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
    return Samples(run_id, uris["samples"], cfg.n, uris)
