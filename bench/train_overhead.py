"""Training overhead: genai on Ray Train against a plain PyTorch loop, in one run.

Same model (VAE, MLP 256x2), data (ring8, --rows rows), batch size and epochs on both sides.

* plain: :func:`genai.train.loop.fit` in this process (torch threads = 1, as a Ray worker),
  training and a validation loss per epoch, as genai does.
* genai: :func:`genai.train.launcher.train` on 1 and on 2 Ray workers. Each is run for E_short and
  E_long epochs; steady-state epoch time = (t_long - t_short) / (E_long - E_short), which counts
  everything per epoch (report, checkpoint, metrics write); start-up = t_short - E_short * epoch.
* data path: per epoch, getting the rows as shuffled torch batches: the Parquet split read once and
  sliced per epoch (what genai workers do) against a shuffled Ray Data stream (what
  ``get_dataset_shard`` hands a worker). Timed in the driver: inside a 2-worker trainer on 2 CPUs
  Ray Data's read tasks find no free CPU and the job stalls.

    .venv/bin/python bench/train_overhead.py [--rows 200000] [--short 1] [--long 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from genai.cluster import ensure_ray
from genai.config import RunConfig
from genai.configfile import load_config
from genai.data.dataset import read_manifest, read_split
from genai.data.prepare import prepare
from genai.models import DataSpec
from genai.storage import ArtifactStore
from genai.train.launcher import train
from genai.train.loop import epoch_rows, fit
from genai.train.runs import history_of
from genai.train.state import FitData


def config(rows: int, epochs: int, workers: int, run_id: str) -> RunConfig:
    return load_config(
        RunConfig,
        data={
            "data.source": "ring8",
            "data.n": rows,
            "model.arch.width": 256,
            "train.batch_size": 256,
            "train.epochs": epochs,
            "train.num_workers": workers,
            "train.run_id": run_id,
        },
    )


def plain_timing(store: ArtifactStore, rows: int, key: str, short: int, long: int) -> dict:
    """The plain loop doing what a genai epoch does (train + validation loss), timed like genai:
    per-epoch seconds from the difference of a short and a long run."""
    torch.set_num_threads(1)  # a Ray worker with 1 CPU runs with OMP_NUM_THREADS=1
    x = torch.from_numpy(read_split(store, key, "train")[0])
    val = torch.from_numpy(read_split(store, key, "val")[0])
    spec = DataSpec.from_manifest(read_manifest(store, key))
    walls, compute = {}, []
    for epochs in (short, long):
        cfg = config(rows, epochs, 1, "plain")
        t = time.perf_counter()
        history = fit(cfg, FitData(x, val, spec)).history
        walls[epochs] = time.perf_counter() - t
        compute += [h["samples_per_s"] for h in history]
    epoch = (walls[long] - walls[short]) / (long - short)
    return {
        "epoch_s": epoch,
        "compute_samples_per_s": sorted(compute)[len(compute) // 2],
        "walls": walls,
    }


def genai_timing(store: ArtifactStore, rows: int, workers: int, short: int, long: int) -> dict:
    walls = {}
    for epochs in (short, long):
        t = time.perf_counter()
        result = train(config(rows, epochs, workers, f"bench-w{workers}-e{epochs}"), store)
        walls[epochs] = time.perf_counter() - t
    epoch = (walls[long] - walls[short]) / (long - short)
    history = history_of(store.read_table(f"runs/{result.run_id}/metrics.parquet"))
    compute = sorted(h["samples_per_s"] for h in history)[len(history) // 2]
    return {
        "epoch_s": epoch,
        "startup_s": walls[short] - short * epoch,
        "compute_samples_per_s": compute,
        "walls": walls,
    }


def data_path(store: ArtifactStore, key: str, epochs: int) -> dict[str, float]:
    """Seconds per epoch to get one worker's rows as torch batches of 256, three ways, timed in
    this process: the split read from Parquet once and sliced per epoch (what genai workers do
    with a split that fits ``train.buffer_mb``), the split streamed by genai's reader with a
    buffer of a quarter of its size (what they do with a larger one: row groups read every epoch,
    shuffled within windows), and streaming the split through Ray Data (what
    ``get_dataset_shard`` hands a worker)."""
    import ray.data

    from genai.data.dataset import SplitReader

    times: dict[str, list[float]] = {"parquet": [], "streamed": [], "ray_data": []}
    t = time.perf_counter()
    x = torch.from_numpy(read_split(store, key, "train")[0])
    first = time.perf_counter() - t
    for e in range(epochs):
        t = time.perf_counter()
        n = sum(len(b) for b in torch.split(x[epoch_rows(len(x), seed=0, epoch=e)], 256))
        times["parquet"].append(time.perf_counter() - t + (first if e == 0 else 0))
    reader = SplitReader(store, key, "train", budget_bytes=x.numel() * 4 // 4)
    assert not reader.whole
    for e in range(epochs):
        t = time.perf_counter()
        s = sum(len(torch.from_numpy(b)) for b, _ in reader.epoch(seed=e, batch_size=256))
        times["streamed"].append(time.perf_counter() - t)
    fs, path = store.arrow_filesystem(f"{key}/split=train")
    ds = ray.data.read_parquet(path, filesystem=fs, columns=["x"]).random_shuffle(seed=0)
    for _ in range(epochs):
        t = time.perf_counter()
        m = sum(len(b["x"]) for b in ds.iter_torch_batches(batch_size=256))
        times["ray_data"].append(time.perf_counter() - t)
    assert n == m == len(x) and s == len(x) // 256 * 256
    return {k: sum(v) / len(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--short", type=int, default=1)
    ap.add_argument("--long", type=int, default=4)
    args = ap.parse_args()
    ensure_ray()
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(f"file://{tmp}/store")
        prepared = prepare(config(args.rows, 1, 1, "x").data, store)
        rows = prepared.rows["train"]
        base = plain_timing(store, args.rows, prepared.key, args.short, args.long)
        plain_s = base["epoch_s"]
        print(f"plain {base}", flush=True)
        one = genai_timing(store, args.rows, 1, args.short, args.long)
        print(f"1 worker {one}", flush=True)
        two = genai_timing(store, args.rows, 2, args.short, args.long)
        print(f"2 workers {two}", flush=True)
        data = data_path(store, prepared.key, 3)
    result = {
        "train_rows": rows,
        "cores": os.cpu_count(),
        "plain_samples_per_s": round(rows / plain_s),
        "genai_1w_samples_per_s": round(rows / one["epoch_s"]),
        "genai_1w_over_plain": round(plain_s / one["epoch_s"], 3),
        "plain_compute_samples_per_s": round(base["compute_samples_per_s"]),
        "genai_1w_compute_samples_per_s": round(one["compute_samples_per_s"]),
        "compute_ratio_1w_over_plain": round(
            one["compute_samples_per_s"] / base["compute_samples_per_s"], 3
        ),
        "genai_1w_startup_s": round(one["startup_s"], 2),
        "genai_2w_samples_per_s": round(rows / two["epoch_s"]),
        "genai_2w_over_1w": round(one["epoch_s"] / two["epoch_s"], 3),
        "genai_2w_startup_s": round(two["startup_s"], 2),
        "data_parquet_shard_epoch_s": round(data["parquet"], 4),
        "data_ray_data_shard_epoch_s": round(data["ray_data"], 4),
        "data_streamed_shard_epoch_s": round(data["streamed"], 4),
        "walls_s": {"plain": base["walls"], "1w": one["walls"], "2w": two["walls"]},
    }
    print(f"train rows {rows:,}, batch 256, VAE MLP 256x2")
    print(f"plain PyTorch loop      {rows / plain_s:>10,.0f} samples/s")
    ratio = plain_s / one["epoch_s"]
    print(
        f"genai, 1 Ray worker     {rows / one['epoch_s']:>10,.0f} samples/s  ratio {ratio:.3f}"
        f"  start-up {one['startup_s']:.1f}s"
    )
    print(
        f"genai, 2 Ray workers    {rows / two['epoch_s']:>10,.0f} samples/s  vs 1 worker "
        f"{one['epoch_s'] / two['epoch_s']:.2f}x  start-up {two['startup_s']:.1f}s"
    )
    print(
        f"data per epoch per worker: parquet shard {data['parquet']:.4f}s, "
        f"streamed shard {data['streamed']:.4f}s, Ray Data shard {data['ray_data']:.4f}s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
