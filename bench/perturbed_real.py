"""What a FID / floor ratio asks for: real train rows, slightly altered, judged as a model is.

A model's FID is divided by its floor (as many real train rows against the test split). On data
whose floor is tiny, a ratio bar can ask for more than any model can give; this measures where
real images land in the same domain feature space after alterations a person would barely see:
a 3x3 median filter (the pixel noise gone, the edges kept), Gaussian blurs of 0.5, 1 and 2 pixels,
and extra pixel noise. Each row is ``--n`` train rows (the same ones), judged by the dataset's
Judge against the test split exactly as ``genai evaluate`` judges ``--n`` samples.

    .venv/bin/python bench/perturbed_real.py --dataset shapes --seed 0 [--n 1000]
        [--store file:///tmp/q26]

The dataset is the built-in source of ``bench/quality.py``'s recipes for that seed (the same
split, so the rows sit beside that benchmark's tables); ``--store`` reuses a prepared one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (bench/quality.py: the recipes' data configs)

from genai.data.dataset import SplitReader  # noqa: E402
from genai.data.prepare import prepare  # noqa: E402
from genai.evaluate.judge import Judge  # noqa: E402
from genai.storage import ArtifactStore  # noqa: E402


def median3(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 median per channel (edges replicated): pixel noise removed, edges kept."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    windows = padded.unfold(2, 3, 1).unfold(3, 3, 1)  # (n, c, h, w, 3, 3)
    return windows.reshape(*windows.shape[:4], 9).median(-1).values


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of ``sigma`` pixels per channel (edges replicated)."""
    r = int(3 * sigma) + 1
    k = torch.exp(-(torch.arange(-r, r + 1.0) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    h = F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                 groups=c)  # fmt: skip
    return F.conv2d(h, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=quality.IMAGES_32, default="shapes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=quality.IMAGE_SAMPLES)
    ap.add_argument("--store", help="a store holding (or to hold) the prepared dataset")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(args.store or f"file://{tmp}/store")
        family = "vae"  # any family: the data section is the dataset's, whatever the family
        data = quality.config(args.dataset, family, quality.recipe_loss(args.dataset, family),
                              args.seed).data  # fmt: skip
        key = prepare(data, store).key
        rows = torch.from_numpy(SplitReader(store, key, "train").read_all()[0])
        judge = Judge(store, key)
        gen = torch.Generator().manual_seed(args.seed)
        real = rows[torch.randperm(len(rows), generator=gen)[: args.n]]
        real = real.reshape(len(real), *judge.manifest["shape"]).float()
        low, high = float(rows.min()), float(rows.max())
        noise = torch.randn(real.shape, generator=gen) * (6 / 255) * (high - low)
        variants = {
            "real train rows, unaltered": real,
            "3x3 median filter (pixel noise removed, edges kept)": median3(real),
            "extra pixel noise, sd 6/255": (real + noise).clamp(low, high),
            "Gaussian blur, 0.5 px": blur(real, 0.5),
            "Gaussian blur, 1 px": blur(real, 1.0),
            "Gaussian blur, 2 px": blur(real, 2.0),
        }
        floor = judge.floors(args.n)
        print(f"{args.dataset}, seed {args.seed}: {args.n} rows; floor FID {floor['fid']:.3f}")
        print("| rows | FID | FID / floor | precision | recall |")
        print("|---|---:|---:|---:|---:|")
        for name, fake in variants.items():
            torch.manual_seed(args.seed)
            m = judge.metrics(fake)
            print(f"| {name} | {m['fid']:.2f} | {m['fid'] / floor['fid']:.1f} | "
                  f"{m['precision']:.2f} | {m['recall']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
