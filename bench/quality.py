"""Sample quality per loss and family: the table beside PacGAN's and VEEGAN's Table 1.

ring8 and grid25 (PacGAN / VEEGAN 2-D experiments): every GAN loss and the VAE, DDPM and
autoregressive families, each trained with a fixed budget for --seeds seeds with the one training
loop (in-process, :func:`genai.train.launcher.train_local`: the budget, not the cluster, is
what is compared), stored as a run and judged by
``genai.evaluate`` on 2,500 samples: modes captured, high-quality share, reverse KL, as mean and
standard deviation. digits: FID, KID, precision and recall per family beside the floor.

    .venv/bin/python bench/quality.py [--seeds 3] [--out docs/quality.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from genai.config import EvaluateConfig, RunConfig
from genai.configfile import load_config
from genai.data.dataset import read_split
from genai.data.prepare import prepare
from genai.evaluate.evaluate import evaluate_run
from genai.storage import ArtifactStore
from genai.train.launcher import train_local

PUBLISHED = {  # PacGAN (Lin et al. 2018) Table 1: modes / high-quality % / reverse KL
    "ring8": [
        ("GAN", 6.3, 98.2, 0.45),
        ("PacGAN2", 7.9, 95.6, 0.07),
        ("PacGAN3", 7.8, 97.7, 0.10),
        ("PacGAN4", 7.8, 95.9, 0.07),
    ],
    "grid25": [
        ("GAN", 17.3, 94.8, 0.70),
        ("PacGAN2", 23.8, 91.3, 0.13),
        ("PacGAN3", 24.6, 94.2, 0.06),
        ("PacGAN4", 24.8, 93.6, 0.04),
    ],
}

GAN = {"model.family": "gan", "model.arch.latent_dim": 4, "model.arch.width": 128}
VARIANTS = {
    "gan minimax": {**GAN, "loss.adversarial.name": "minimax", "train.epochs": 40},
    "gan non_saturating": {**GAN, "train.epochs": 40},
    "gan hinge": {**GAN, "loss.adversarial.name": "hinge", "train.epochs": 40},
    "gan least_squares": {**GAN, "loss.adversarial.name": "least_squares", "train.epochs": 40},
    "gan wasserstein+gp": {
        **GAN,
        "loss.adversarial.name": "wasserstein",
        "loss.gradient_penalty.weight": 0.1,
        "model.gan.n_critic": 5,
        "train.epochs": 60,
    },
    "vae": {"model.arch.latent_dim": 2, "loss.kl.weight": 0.02, "train.epochs": 80},
    "ddpm": {"model.family": "diffusion", "model.arch.depth": 3, "train.epochs": 120},
    "autoregressive": {"model.family": "autoregressive", "train.epochs": 15},
}
DIGITS = {
    "vae": {"model.arch.body": "conv", "model.arch.width": 16, "loss.reconstruction.name": "bce"},
    "gan": {"model.family": "gan", "model.arch.body": "conv", "model.arch.width": 16},
    "ddpm": {"model.family": "diffusion", "model.arch.body": "conv", "model.arch.width": 32},
    "autoregressive": {"model.family": "autoregressive", "model.autoregressive.bins": 17},
}
ROWS = 5000


def fit_and_evaluate(store, run_id, overrides, n_samples, split="test"):
    data = {"train.batch_size": 128, "train.lr": 1e-3, **overrides, "train.run_id": run_id}
    cfg = load_config(RunConfig, data=data)
    prepared = prepare(cfg.data, store)
    x = read_split(store, prepared.key, "train")[0]
    t = time.perf_counter()
    train_local(cfg, store)
    seconds = time.perf_counter() - t
    ev = evaluate_run(
        store, run_id, EvaluateConfig(n_samples=n_samples, split=split, seed=cfg.train.seed)
    )
    steps = cfg.train.epochs * (len(x) // cfg.train.batch_size)
    return ev, seconds, steps


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def mixtures(store, seeds: int) -> list[str]:
    lines = []
    for dataset in ("ring8", "grid25"):
        lines += [
            f"### {dataset}",
            "",
            "| model | modes | high-quality % | reverse KL | epochs x steps | train s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, modes, high_quality, reverse_kl in PUBLISHED[dataset]:
            lines.append(
                f"| {name} (PacGAN Table 1) | {modes} | {high_quality} | {reverse_kl} | | |"
            )
        for variant, overrides in VARIANTS.items():
            runs = []
            for seed in range(seeds):
                data = {
                    "data.source": dataset,
                    "data.n": ROWS,
                    "data.seed": seed,
                    "train.seed": seed,
                }
                run_id = f"{dataset}-{variant.replace(' ', '-').replace('+', '-')}-s{seed}"
                runs.append(fit_and_evaluate(store, run_id, {**data, **overrides}, 2500))
            m = [r[0].metrics for r in runs]
            epochs = overrides["train.epochs"]
            lines.append(
                f"| {variant} (ours) | {mean_sd([x['modes'] for x in m])}"
                f" | {mean_sd([100 * x['high_quality'] for x in m])}"
                f" | {mean_sd([x['reverse_kl'] for x in m])}"
                f" | {epochs} x {runs[0][2] // epochs}"
                f" | {statistics.mean(r[1] for r in runs):.1f} |"
            )
            print(lines[-1], flush=True)
        floor = runs[0][0].floors
        lines.append(
            f"| real test split (floor) | {floor['modes']:.0f} | {100 * floor['high_quality']:.1f}"
            f" | {floor['reverse_kl']:.3f} | | |"
        )
        lines.append("")
    return lines


def digits(store) -> list[str]:
    lines = [
        "### digits (domain feature network's space, 500 samples against the test split)",
        "",
        "| family | FID | KID | precision | recall | epochs | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    floor = None
    for family, overrides in DIGITS.items():
        ev, seconds, _ = fit_and_evaluate(
            store,
            f"digits-{family}",
            {"train.epochs": 15, "train.batch_size": 64, **overrides},
            500,
        )
        m, floor = ev.metrics, ev.floors
        lines.append(
            f"| {family} | {m['fid']:.3f} | {m['kid']:.4f} | {m['precision']:.3f}"
            f" | {m['recall']:.3f} | 15 | {seconds:.1f} |"
        )
        print(lines[-1], flush=True)
    lines.append(
        f"| train split vs test (floor) | {floor['fid']:.3f} | {floor['kid']:.4f}"
        f" | {floor['precision']:.3f} | {floor['recall']:.3f} | | |"
    )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(f"file://{tmp}/store")
        lines = mixtures(store, args.seeds) + digits(store)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
