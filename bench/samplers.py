"""DDIM against full DDPM sampling on a trained diffusion recipe: the FID each sampler reaches and
the seconds it takes, side by side in one run, as `genai evaluate` measures them.

    .venv/bin/python bench/samplers.py [--recipe configs/recipes/shapes-diffusion.yaml]
        [--steps 20,50,100] [--etas 0,1] [--n 1000] [--store file:///tmp/samplers] [--run RUN_ID]

The recipe is trained once (`genai train`'s core in this process; found in ``--store`` when it is
there already), or ``--run`` names a trained run in ``--store``; then it is evaluated with
evaluate's fast sampler (DDIM) at each of ``--steps`` and each of ``--etas`` (its noise: 0
deterministic, 1 the DDPM posterior's over the skipped steps) and with the model's whole
ancestral chain (DDPM, every timestep): the same ``--n`` samples' seed, the same test split
and floor. The issue's bar (26): DDIM at the recipe's stated steps within 15% of DDPM's FID.
"""

from __future__ import annotations

import argparse
import time

import torch

from genai.config import EvaluateConfig, RunConfig
from genai.configfile import load_config
from genai.evaluate.evaluate import evaluate_run
from genai.storage import ArtifactStore
from genai.train.launcher import train_local


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="configs/recipes/shapes-diffusion.yaml")
    ap.add_argument("--steps", default="20,50,100", help="DDIM step counts")
    ap.add_argument("--etas", default="0,1", help="DDIM noise levels (evaluate --eta)")
    ap.add_argument("--n", type=int, default=1000, help="samples per evaluation")
    ap.add_argument("--store", default="file:///tmp/bench-samplers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run", default=None, help="a trained run in --store (instead of training)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = ArtifactStore(args.store)
    if args.run is None:
        cfg = load_config(RunConfig, args.recipe, data={"train.num_workers": 1})
        run_id = train_local(cfg, store).run_id
    else:
        run_id = args.run
    rows = []
    steps = [int(k) for k in args.steps.split(",")]
    kinds = [("fast", k, float(e)) for e in args.etas.split(",") for k in steps]
    for kind, k, eta in [*kinds, ("model", 1, None)]:
        judged = EvaluateConfig(n_samples=args.n, sampler=kind, ddim_steps=k, eta=eta)
        begun = time.monotonic()
        ev = evaluate_run(store, run_id, judged)
        rows.append((ev.sampler, ev.metrics["fid"], ev.floors["fid"], ev.metrics["recall"],
                     time.monotonic() - begun))  # fmt: skip
        print(rows[-1], flush=True)
    full = rows[-1][1]
    print(f"\nrun {run_id}, {args.n} samples against the test split\n")
    print("| sampler | FID | FID / floor | FID / DDPM's | recall | evaluate s |")
    print("|---|---:|---:|---:|---:|---:|")
    for sampler, fid, floor, recall, secs in rows:
        print(f"| {sampler} | {fid:.2f} | {fid / floor:.2f} | {fid / full:.3f} | {recall:.3f}"
              f" | {secs:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
