"""CPU cost of the training loop on each recipe bench/quality.py fits, side by side in one run:
the loop as it is against the loop before three changes to it:

* Adam's fused kernel (before: Adam's default, a loop of small kernels per tensor on CPU);
* the EMA as one fused lerp over cached tensors (before: a state dict and two kernels per tensor
  after every step);
* subnormal floats flushed to zero on the training thread (before: IEEE subnormals, on which
  every x86 operation is 10-50x slower; training produces them late, in Adam's squared
  gradients and in small activations).

    .venv/bin/python bench/step_cost.py [--epochs 5] [--only ring8 --only grid25 --only digits]

Each recipe is fitted in this process (one torch thread, the recipe's global batch, as the quality
benchmark fits it) for its first ``--epochs`` epochs on its real data, with the recipe's own
learning-rate schedule over all its epochs; the figure is the CPU time per training step over
those epochs after the first (which pays for warming up). The two loops run back to back on each
recipe, which one first alternating from recipe to recipe, so a slow spell of the machine and a
first run's warm-up hit both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (the recipes, configured as the quality benchmark fits them)

from genai.train import ema as ema_module  # noqa: E402
from genai.train import hooks, loop  # noqa: E402


@torch.no_grad()
def _legacy_ema_update(self, model) -> None:
    """The EMA update before: a state dict and two kernels per tensor, every step."""
    d = self.rate()
    for name, value in model.state_dict().items():
        shadow = self.shadow[name]
        if shadow.dtype.is_floating_point:
            shadow.mul_(d).add_(value.detach(), alpha=1 - d)
        else:
            shadow.copy_(value)
    self.updates += 1


@contextmanager
def legacy_loop():
    """The loop before: Adam's default kernels, the per-tensor EMA, subnormals kept."""
    fusable, update, flush = loop.fusable, ema_module.EMA.update, torch.set_flush_denormal
    loop.fusable = lambda params: False
    ema_module.EMA.update = _legacy_ema_update
    torch.set_flush_denormal = lambda mode: flush(False)
    try:
        yield
    finally:
        loop.fusable, ema_module.EMA.update, torch.set_flush_denormal = fusable, update, flush


class _Stop(Exception):
    pass


class Clock(hooks.Hook):
    """CPU seconds and steps at the end of each epoch; stops the fit after ``epochs``."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.marks = epochs, [(time.process_time(), 0)]

    def on_epoch(self, ctx: hooks.EpochContext) -> dict:
        self.marks.append((time.process_time(), int(ctx.entry["steps"])))
        if len(self.marks) > self.epochs:
            raise _Stop
        return {}

    def ms_per_step(self) -> float:
        (t0, s0), (t1, s1) = self.marks[1], self.marks[-1]  # after the first epoch
        return (t1 - t0) / (s1 - s0) * 1000


def ms_per_step(store, dataset: str, family: str, epochs: int, sets: tuple[str, ...] = ()) -> float:
    from genai.train.launcher import plan_run
    from genai.train.state import load_fit_data

    cfg = quality.config(dataset, family, quality.losses(dataset, family)[1][0], 0, None, sets)
    plan = plan_run(cfg, store)
    data = load_fit_data(store, plan.dataset.key)
    clock = Clock(min(epochs, cfg.train.epochs))
    with suppress(_Stop):
        loop.fit(cfg, data, hooks=[clock], features=plan.features)
    return clock.ms_per_step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--only", choices=["ring8", "grid25", "digits"], action="append")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs: at least 2 (the first epoch is not timed)")
    torch.set_num_threads(1)
    datasets = args.only or ["ring8", "grid25"]
    recipes = [(d, f) for d, f in quality.RECIPES if d in datasets]
    from genai.storage import ArtifactStore

    with tempfile.TemporaryDirectory() as tmp:
        store_uri = f"file://{tmp}/store"
        jobs = [(store_uri, d, f, quality.losses(d, f)[1][0], 0, ()) for d, f in recipes]
        quality.prepare_all(store_uri, jobs)
        store = ArtifactStore(store_uri)
        rows = []
        for i, (dataset, family) in enumerate(recipes):
            if i % 2:
                now = ms_per_step(store, dataset, family, args.epochs)
            with legacy_loop():
                before = ms_per_step(store, dataset, family, args.epochs)
            if not i % 2:
                now = ms_per_step(store, dataset, family, args.epochs)
            rows.append((f"{dataset} {family}", before, now))
            print(f"{dataset} {family}: {before:.2f} -> {now:.2f} ms/step", flush=True)
    print("\n| recipe | before ms/step | now ms/step | now / before |")
    print("|---|---:|---:|---:|")
    for name, before, now in rows:
        print(f"| {name} | {before:.2f} | {now:.2f} | {now / before:.2f} |")
    ratios = [now / before for _, before, now in rows]
    print(f"\nMedian now / before: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
