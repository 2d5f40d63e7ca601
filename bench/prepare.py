"""Preparation of a 1,000,000-row generated source: genai (Ray Data) against plain pyarrow.

Both sides do the same work from the same generated rows: a stratified split, per-feature
normalisation fitted on train, and one Parquet file set per split. Runs alternate, in one process;
Ray's start-up is timed separately and not counted in the per-run throughput.

    .venv/bin/python bench/prepare.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genai.cluster import ensure_ray
from genai.config import DataConfig
from genai.data.prepare import prepare
from genai.data.sources import load_builtin
from genai.data.split import SPLITS, split_codes
from genai.storage import ArtifactStore


def plain_pyarrow(cfg: DataConfig, root: str) -> int:
    """The same preparation, single process, numpy + pyarrow only."""
    src = load_builtin(cfg)
    codes = split_codes(src.labels, len(src.values), cfg.split, cfg.seed)
    flat = src.values.reshape(len(src.values), -1)  # (N, D)
    if not np.isfinite(flat).all():
        raise ValueError("NaN")
    train = flat[codes == 0].astype(np.float64)
    shift, scale = train.mean(0), train.std(0)
    normed = ((flat - shift) / scale).astype(np.float32)
    for i, split in enumerate(SPLITS):
        part = normed[codes == i]
        table = pa.table(
            {
                "row": np.flatnonzero(codes == i),
                "x": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), part.shape[1]),
                "label": src.labels[codes == i],
            }
        )
        os.makedirs(f"{root}/split={split}", exist_ok=True)
        pq.write_table(table, f"{root}/split={split}/part-0.parquet")
    return len(flat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = DataConfig(source="ring8", n=args.rows, seed=0)

    t0 = time.perf_counter()
    ensure_ray()
    ray_start = time.perf_counter() - t0

    genai_s, plain_s = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            prepared = prepare(cfg, ArtifactStore(f"file://{tmp}/store"))
            genai_s.append(time.perf_counter() - t)
            assert sum(prepared.rows.values()) == args.rows
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            assert plain_pyarrow(cfg, tmp) == args.rows
            plain_s.append(time.perf_counter() - t)

    g, p = statistics.median(genai_s), statistics.median(plain_s)
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "ray_start_s": round(ray_start, 2),
        "genai_ray_data_s": [round(s, 3) for s in genai_s],
        "plain_pyarrow_s": [round(s, 3) for s in plain_s],
        "genai_rows_per_s": round(args.rows / g),
        "plain_rows_per_s": round(args.rows / p),
        "genai_over_plain_throughput": round(p / g, 3),
    }
    print(f"rows {args.rows:,}; Ray start-up {ray_start:.2f}s (once per process, not counted)")
    print(f"{'':24}{'median s':>10}{'rows/s':>14}")
    print(f"{'genai (Ray Data)':24}{g:>10.3f}{args.rows / g:>14,.0f}")
    print(f"{'plain pyarrow':24}{p:>10.3f}{args.rows / p:>14,.0f}")
    print(f"throughput ratio genai / plain: {p / g:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
