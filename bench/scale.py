"""What preparation and training cost as the data grows: 1x, 10x (and, with --factors, 100x) rows
of a generated 32x32 colour image folder and of a 16-column Parquet file, side by side with a
plain PIL + pyarrow read-split-write of the same files, in one run.

    .venv/bin/python bench/scale.py [--images 6000] [--rows 1000000] [--factors 1,10]

Each genai command runs as a user types it (`genai prepare ...`, `genai train CONFIG`), in a fresh
process, with the shared Ray and Prefect server already up (a warm machine). Measured:

* wall seconds of `genai prepare` (for images the feature network too: a fixed budget) and of one
  training epoch (`genai train`, conv VAE on the images at batch 256, MLP VAE on the Parquet rows
  at batch 1024, 1 worker);
* peak RSS of the command's process, and of every Ray worker process while it runs (read every
  0.1 s with psutil): the largest of them, and the idle Ray worker's RSS for reference;
* the plain side: one process that reads every file (PIL for PNGs, pyarrow for Parquet), draws a
  seeded split, normalises (images / 255; Parquet columns standardised with their train mean and
  standard deviation), and writes one Parquet file per split; its wall time and peak RSS.

The marginal cost per row from 1x to 10x is (t_10x - t_1x) / (rows_10x - rows_1x) for each side;
their ratio is what docs/BENCHMARKS.md reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
GENAI = str(Path(sys.executable).parent / "genai")
MB = 1 << 20


class Peaks:
    """Peak RSS of one process and of every Ray worker process, polled while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.command, self.workers, self.worker_names = pid, 0, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(psutil.Error):
                self.command = max(self.command, psutil.Process(self.pid).memory_info().rss)
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = proc.info["cmdline"] or []
                if not cmd or not cmd[0].startswith("ray::") or proc.info["memory_info"] is None:
                    continue
                rss = proc.info["memory_info"].rss
                if rss > self.workers:
                    self.workers, self.worker_names = rss, cmd[0]

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def genai(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run a genai command; wall seconds and peak RSS of it and of the Ray workers."""
    t = time.perf_counter()
    proc = subprocess.Popen([GENAI, *args, "--json"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    with Peaks(proc.pid) as peaks:
        out, err = proc.communicate()
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"genai {' '.join(args)} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"s": seconds, "command_mb": peaks.command / MB, "worker_mb": peaks.workers / MB,
            "worker": peaks.worker_names, "result": result}  # fmt: skip


def idle_worker_mb() -> float:
    sizes = [p.info["memory_info"].rss for p in psutil.process_iter(["cmdline", "memory_info"])
             if (p.info["cmdline"] or [""])[0].startswith("ray::IDLE")]  # fmt: skip
    return max(sizes, default=0) / MB


PLAIN = r"""
import resource, sys, time, json
from pathlib import Path
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
kind, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t = time.perf_counter()
rng = np.random.default_rng(0)
def write(x, y, codes):
    for i, s in enumerate(("train", "val", "test")):
        m = codes == i
        flat = x[m].reshape(int(m.sum()), -1).astype(np.float32)
        cols = {"x": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1]),
                "label": pa.array(y[m])}
        pq.write_table(pa.table(cols), out / f"{s}.parquet")
if kind == "images":
    from PIL import Image
    files = sorted(src.rglob("*.png"))
    names = sorted({f.parent.name for f in files})
    x = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) for f in files]) / 255
    y = np.array([names.index(f.parent.name) for f in files])
else:
    table = pq.read_table(src)
    y = table.column("label").to_numpy()
    x = np.stack([table.column(c).to_numpy() for c in table.column_names if c != "label"], 1)
codes = rng.choice(3, size=len(x), p=[0.8, 0.1, 0.1])
if kind != "images":
    train = x[codes == 0]
    x = (x - train.mean(0)) / train.std(0)
write(x, y, codes)
print(json.dumps({"s": time.perf_counter() - t,
                  "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def plain(kind: str, src: Path, work: Path) -> dict:
    out = work / f"plain-{kind}-{src.name}"
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", PLAIN, kind, str(src), str(out)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """16 float64 columns and a label, in row groups of 100,000 rows (written chunk by chunk)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([(f"c{i}", pa.float64()) for i in range(16)] + [("label", pa.int64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            label = rng.integers(0, 4, n)
            x = rng.normal(size=(n, 16)) + label[:, None]
            cols = [pa.array(x[:, i]) for i in range(16)] + [pa.array(label)]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6000, help="images at 1x")
    ap.add_argument("--rows", type=int, default=1_000_000, help="Parquet rows at 1x")
    ap.add_argument("--factors", default="1,10")
    ap.add_argument("--kinds", default="images,parquet")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    factors = [int(f) for f in args.factors.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="genai-scale-"))
    env = {**os.environ, "GENAI_STATE_DIR": str(work / "state"), "GENAI_TRACKING": "off",
           "GENAI_STORE": f"file://{work}/store"}  # fmt: skip
    genai(["prepare", "--source", "ring8", "--n", "1000"], env, ROOT)  # the services, warm
    rows = []
    try:
        for kind in args.kinds.split(","):
            for f in factors:
                rows.append(one(kind, f, args, work, env))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        subprocess.run([GENAI, "down"], env=env, capture_output=True)
    report(rows, factors)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


def one(kind: str, f: int, args, work: Path, env: dict) -> dict:
    from genai.data import shapes

    if kind == "images":
        n = args.images * f
        src = work / f"shapes-{n}"
        if not src.exists():
            shapes.save_folder(src, n, seed=1)
        prep = ["prepare", "--source", "images", "--uri", str(src), "--name", f"scale-img-{f}"]
        model = {"family": "vae", "arch": {"body": "conv", "width": 32, "latent_dim": 16}}
        data = {"source": "images", "uri": str(src), "name": f"scale-img-{f}"}
    else:
        n = args.rows * f
        src = work / f"rows-{n}.parquet"
        if not src.exists():
            write_parquet(src, n)
        prep = ["prepare", "--source", "parquet", "--uri", str(src), "--label-column", "label",
                "--name", f"scale-pq-{f}"]  # fmt: skip
        model = {"family": "vae", "arch": {"body": "mlp", "width": 128, "latent_dim": 4}}
        data = {"source": "parquet", "uri": str(src), "label_column": "label",
                "name": f"scale-pq-{f}"}  # fmt: skip
    import yaml

    config = work / f"train-{kind}-{f}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": data,
                "model": model,
                "train": {
                    "epochs": 1,
                    "batch_size": 256,
                    "num_workers": 1,
                    "run_id": f"scale-{kind}-{f}",
                },
            }
        )
    )
    plain_side = plain(kind, src, work)
    idle = idle_worker_mb()
    prepared = genai(prep, env, ROOT)
    trained = genai(["train", str(config)], env, ROOT)
    return {"kind": kind, "factor": f, "rows": n, "plain_s": plain_side["s"],
            "plain_mb": plain_side["mb"], "prepare_s": prepared["s"],
            "prepare_command_mb": prepared["command_mb"],
            "prepare_worker_mb": prepared["worker_mb"],
            "prepare_worker": prepared["worker"], "train_s": trained["s"],
            "train_epoch_s": trained["result"]["metrics"].get("epoch_s"),
            "train_command_mb": trained["command_mb"], "train_worker_mb": trained["worker_mb"],
            "train_worker": trained["worker"], "idle_worker_mb": idle,
            "features_s": (prepared["result"].get("feature_net") or {}).get("seconds")}  # fmt: skip


def report(rows: list[dict], factors: list[int]) -> None:
    print(
        "\n| data | rows | plain s (MB) | genai prepare s | command MB | worker MB |"
        " train epoch s (whole command s) | train command MB | train worker MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['rows']:,} | {r['plain_s']:.1f} ({r['plain_mb']:.0f}) |"
              f" {r['prepare_s']:.1f} | {r['prepare_command_mb']:.0f} |"
              f" {r['prepare_worker_mb']:.0f} | {r['train_epoch_s']:.1f} ({r['train_s']:.1f}) |"
              f" {r['train_command_mb']:.0f} | {r['train_worker_mb']:.0f} |")  # fmt: skip
    if len(factors) < 2:
        return
    lo, hi = factors[0], factors[1]
    print(f"\nFrom {lo}x to {hi}x:")
    for kind in sorted({r["kind"] for r in rows}):
        a = next(r for r in rows if r["kind"] == kind and r["factor"] == lo)
        b = next(r for r in rows if r["kind"] == kind and r["factor"] == hi)
        extra = b["rows"] - a["rows"]
        genai_us = (b["prepare_s"] - a["prepare_s"]) / extra * 1e6
        plain_us = (b["plain_s"] - a["plain_s"]) / extra * 1e6
        print(f"- {kind}: marginal prepare cost {genai_us:.1f} us/row, plain {plain_us:.1f}"
              f" us/row, ratio {genai_us / plain_us:.2f}; peak RSS command"
              f" +{b['prepare_command_mb'] - a['prepare_command_mb']:.0f} MB (prepare),"
              f" +{b['train_command_mb'] - a['train_command_mb']:.0f} MB (train); workers"
              f" +{b['prepare_worker_mb'] - a['prepare_worker_mb']:.0f} MB (prepare),"
              f" +{b['train_worker_mb'] - a['train_worker_mb']:.0f} MB (train)")  # fmt: skip


if __name__ == "__main__":
    main()
