"""The domain feature space on a human scale, and not blunted: for digits, the photo patches and
the generated shapes, the feature network's cost and accuracy, the FID and KID floors at the
evaluation's sample count, and real images with their pixels shuffled, side by side in one run.

    .venv/bin/python bench/feature_space.py [--shapes 6000]

Each dataset is prepared into a temporary store as `genai prepare` does (its feature network in
a Ray task). The floor is what `genai evaluate` reports beside a run's metrics: 2,500 real train
rows (or all of them, if fewer) against the test split (at most 2,500 rows). "Shuffled" is the
same train rows with the pixels of each image permuted at random (the colours of an image kept,
its structure gone), judged against the same test split. The issue's bar: every floor between
0.1 and 100, shuffled at least 10x the floor, the digits network at least 97% accurate.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from genai.cluster import ensure_ray
from genai.config import DataConfig, EvaluateConfig
from genai.data.dataset import read_split
from genai.data.features import load_feature_net
from genai.data.prepare import prepare
from genai.evaluate.judge import Judge
from genai.storage import ArtifactStore


def shuffled(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each image's pixel positions permuted (every channel alike): colours kept, structure not."""
    gen = torch.Generator().manual_seed(seed)
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    flat = x.reshape(b, -1, h * w)
    out = torch.stack([img[:, torch.randperm(h * w, generator=gen)] for img in flat])
    return out.reshape(x.shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", type=int, default=6000, help="images of the shapes source")
    args = ap.parse_args()
    ensure_ray(num_cpus=2)
    n = EvaluateConfig().n_samples
    store = ArtifactStore(f"file://{tempfile.mkdtemp(prefix='genai-features-')}/store")
    print(
        "| dataset | train rows | network (steps, s) | test accuracy | seams found |"
        " FID floor | KID floor | FID shuffled | shuffled / floor |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for data in (DataConfig(source="digits"), DataConfig(source="photos"),
                 DataConfig(source="shapes", n=args.shapes)):  # fmt: skip
        prepared = prepare(data, store)
        net = load_feature_net(store, prepared.key)
        judge = Judge(store, prepared.key)
        floors = judge.floors(n)
        train = torch.from_numpy(read_split(store, prepared.key, "train")[0][:n])
        mixed = judge.metrics(shuffled(train))
        acc = net.meta["test_accuracy"]
        print(f"| {data.source} | {prepared.rows['train']:,} |"
              f" {net.meta['spec']['steps']} steps, {net.meta['seconds']:.1f} s |"
              f" {'' if acc is None else f'{acc:.1%}'} | {net.meta['pretext_accuracy']:.1%} |"
              f" {floors['fid']:.3g} | {floors['kid']:.3g} | {mixed['fid']:.3g} |"
              f" {mixed['fid'] / floors['fid']:.1f}x |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
