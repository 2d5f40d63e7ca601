"""CPU cost per training step of the two autoregressive bodies on the digits recipe, side by side
in one run: MADE (``configs/autoregressive.yaml`` as shipped) against the causal transformer (the
same recipe with ``model.autoregressive.body=transformer``: 2 layers, 4 heads, d_model 64).

    .venv/bin/python bench/ar_bodies.py [--epochs 4] [--repeats 3]

Each fit runs in this process on one torch thread at the recipe's global batch (64), as
bench/quality.py fits it, for ``--epochs`` epochs; the figure is CPU ms per step after the first
epoch (bench/step_cost.py's clock). The order of the two alternates from repeat to repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import step_cost  # noqa: E402  (its clock; the recipes as bench/quality.py fits them)
from step_cost import quality  # noqa: E402

from genai.models import DataSpec, build_model  # noqa: E402
from genai.storage import ArtifactStore  # noqa: E402

BODIES = {"made": (), "transformer": ("model.autoregressive.body=transformer",)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs: at least 2 (the first epoch is not timed)")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store_uri = f"file://{tmp}/store"
        quality.prepare_all(
            store_uri, [(store_uri, "digits", "autoregressive", "cross_entropy", 0, ())]
        )
        store = ArtifactStore(store_uri)
        times: dict[str, list[float]] = {body: [] for body in BODIES}
        for r in range(args.repeats):
            for body in list(BODIES)[:: 1 if r % 2 == 0 else -1]:
                ms = step_cost.ms_per_step(
                    store, "digits", "autoregressive", args.epochs, BODIES[body]
                )
                times[body].append(ms)
                print(f"repeat {r + 1} {body}: {ms:.2f} ms/step", flush=True)
    print("\n| body | parameters | CPU ms/step (median) | runs |")
    print("|---|---:|---:|---|")
    for body, sets in BODIES.items():
        cfg = quality.config("digits", "autoregressive", "cross_entropy", 0, None, sets)
        model = build_model(cfg.model, cfg.loss, DataSpec((8, 8), "image", 0.0, 1.0))
        params = sum(p.numel() for p in model.parameters())
        runs = ", ".join(f"{t:.2f}" for t in times[body])
        print(f"| {body} | {params:,} | {statistics.median(times[body]):.2f} | {runs} |")
    ratio = statistics.median(times["transformer"]) / statistics.median(times["made"])
    print(f"\ntransformer / MADE per step: {ratio:.2f}")


if __name__ == "__main__":
    main()
