"""An autoregressive run's sampling temperature, chosen against the validation split.

Each trained run in ``--runs`` samples ``--n`` images at each of ``--temperatures`` (the same
sampling seed) and is judged against the validation split, so the choice does not peek at the
test split that bench/quality.py's tables use:

    .venv/bin/python bench/temperature.py --runs autoregressive-...,autoregressive-...
        --temperatures 0.5,0.7,1 --store file:///tmp/q26 [--n 1000] [--threads 1]

A recipe's ``model.autoregressive.temperature`` is a field of its config (and so of its run id);
this evaluates other temperatures of the same trained weights.
"""

from __future__ import annotations

import argparse
import time

import torch

from genai.evaluate.judge import Judge
from genai.storage import ArtifactStore
from genai.train.trained import load_trained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="comma-separated autoregressive run ids")
    ap.add_argument("--temperatures", default="0.5,0.7,1")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--store", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = ArtifactStore(args.store)
    temperatures = [float(t) for t in args.temperatures.split(",")]
    print("| run | temperature | FID (val) | FID / floor | precision | recall | sampling s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run_id in args.runs.split(","):
        trained = load_trained(store, run_id)
        if trained.config.model.family != "autoregressive":
            raise SystemExit(f"{run_id}: a {trained.config.model.family} run, not autoregressive")
        judge = Judge(store, trained.dataset_key, reference="val")
        floor = judge.floors(args.n)["fid"]
        for temperature in temperatures:
            t = time.perf_counter()
            fake = trained.model.sample_batched(
                args.n,
                batch_size=250,
                generator=torch.Generator().manual_seed(args.seed),
                temperature=temperature,
            )
            seconds = time.perf_counter() - t
            torch.manual_seed(args.seed)
            m = judge.metrics(fake)
            print(f"| {run_id} | {temperature:g} | {m['fid']:.2f} | {m['fid'] / floor:.1f} | "
                  f"{m['precision']:.2f} | {m['recall']:.2f} | {seconds:.0f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
