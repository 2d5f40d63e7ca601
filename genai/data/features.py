"""The domain feature network of an image dataset: the feature space of FID, KID,
precision/recall and density/coverage, and the layers of the ``perceptual`` loss.

No pretrained network can be downloaded here, so each image dataset trains its own small conv
net at preparation, labelled or not:

- its objective is a spatial-context pretext task in the family of relative patch position
  (Doersch et al. 2015, arXiv:1505.05192) and jigsaw puzzles (Noroozi & Favaro 2016,
  arXiv:1603.09246): which of four half-image circular shifts (none, across, down, both) an
  image was given, plus the class when the data has labels. Finding the seams a shift leaves
  takes the image's local structure, not only its colours (rotation prediction, tried first,
  learned nothing on texture-like photo patches and symmetric shapes), so real images with
  their pixels shuffled land far from real ones;
- its budget is 20 epochs of the train split, at most 1,000 steps of 64 images (and as many
  shifted copies), whatever the dataset's size; larger images pass through stride-2 stems down
  to 16x16 first, so a step costs about the same at 32 and 64 pixels;
- its 64 features (the embedding before the heads) are standardised with the mean and standard
  deviation of up to 5,000 train images (32 MB of them at most), so a FID here is on the same
  scale for every dataset: the Frechet distance between two Gaussians in 64 dimensions of unit
  variance;
- a train split larger than 64 MB streams through the task in row groups.

Its store key holds :func:`net_version`, a hash of the architecture, budget and scaling, so a
changed network never mixes with results of the old one. :func:`train_feature_net` is the
training itself (a generator of progress); :mod:`genai.data.prepare` runs it as a Ray task.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genai import layout
from genai.data.dataset import SplitReader, read_manifest
from genai.data.feature_spec import (
    BATCH,
    FEATURE_DIM,
    features_key,
    net_version,
    scale_rows,
    spec_of,
)
from genai.models.blocks import image_dims
from genai.storage import ArtifactStore

PROGRESS_S = 8.0  # a progress report at most this far apart (the console: every 10 s)


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


class FeatureNet(nn.Module):
    """(B, *shape) image -> standardised features (B, 64); ``logits`` gives class scores."""

    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        self.arch = dict(arch)
        self.shape = tuple(arch["shape"])
        c, h, w = image_dims(self.shape)
        width, stem = arch["width"], arch["stem"]
        self.c = c
        stems: list[nn.Module] = []
        for i in range(stem):
            stems += conv_bn(c if i == 0 else width, width, stride=2)
        self.stem = nn.Sequential(*stems)
        c_in = width if stem else c
        self.block1 = nn.Sequential(*conv_bn(c_in, width), *conv_bn(width, width))
        self.block2 = nn.Sequential(
            nn.MaxPool2d(2), *conv_bn(width, 2 * width), *conv_bn(2 * width, 2 * width)
        )
        if arch.get("pool") == "mean":  # the mean over positions: 2W values
            self.embed = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, FEATURE_DIM)
            )
        else:  # every position: 8x8 digits, where the place of a stroke is the digit
            with torch.no_grad():
                flat = self.block2(self.block1(self.stem(torch.zeros(1, c, h, w)))).numel()
            self.embed = nn.Sequential(nn.Flatten(), nn.Linear(flat, FEATURE_DIM))
        n_classes = arch["n_classes"]
        self.head = (
            nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(FEATURE_DIM, n_classes))
            if n_classes
            else None
        )
        self.pretext = nn.Sequential(nn.ReLU(), nn.Linear(FEATURE_DIM, len(ROLLS)))
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))
        self.num_features = FEATURE_DIM  # torchmetrics (the tests' FID reference) reads this

    def layers(self, x: Tensor) -> list[Tensor]:
        """Activations of each block (the perceptual loss's layers), the embedding last."""
        x = self.stem(x.reshape(x.shape[0], self.c, *x.shape[-2:]))  # (B, W, <=16, <=16)
        h1 = self.block1(x)
        h2 = self.block2(h1)  # (B, 2W, H/2, W/2)
        return [h1, h2, self.embed(h2)]

    def raw(self, x: Tensor) -> Tensor:
        return self.layers(x)[-1]  # (B, 64)

    def forward(self, x: Tensor) -> Tensor:
        """Standardised features (B, 64): what FID and the other image metrics compare."""
        return (self.raw(x) - self.feature_mean) / self.feature_std

    def logits(self, x: Tensor) -> Tensor:
        if self.head is None:
            raise ValueError("this feature network has no class head (unlabelled data)")
        return self.head(self.raw(x))


ROLLS = ((0, 0), (0, 1), (1, 0), (1, 1))  # half-image shifts (rows, columns) of each class


def rolled(x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each image shifted circularly by half its height and/or width (one of :data:`ROLLS`,
    drawn at random), and which: the shift moves the borders into the middle, and telling
    where the seams are takes the image's local continuity, not its colours."""
    k = torch.randint(0, len(ROLLS), (len(x),), generator=gen)
    h, w = x.shape[-2:]
    out = x.clone()
    for r, (dy, dx) in enumerate(ROLLS):
        idx = k == r
        if r:
            out[idx] = torch.roll(x[idx], shifts=(dy * (h // 2), dx * (w // 2)), dims=(-2, -1))
    return out, k


def _batches(reader: SplitReader, seed: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Endless shuffled training batches of the train split (whole or streamed)."""
    gen = torch.Generator().manual_seed(seed)
    if reader.whole:
        values, labels = reader.read_all()
        x = torch.from_numpy(values)
        y = torch.from_numpy(labels) if labels is not None else None
        if not len(x):
            raise ValueError("the train split is empty: no feature network can be trained")
        size = min(BATCH, len(x))  # a split of fewer rows than a batch is one batch
        while True:
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x) - size + 1, size):
                idx = order[i : i + size]
                yield x[idx], (y[idx] if y is not None else None)
    for epoch in range(1_000_000):
        for values, labels in reader.epoch(seed=seed * 1009 + epoch, batch_size=BATCH):
            y = torch.from_numpy(labels) if labels is not None else None
            yield torch.from_numpy(values), y


@dataclass(frozen=True)
class TrainedFeatures:
    net: FeatureNet
    test_accuracy: float | None
    key: str
    meta: dict[str, Any]


def train_feature_net(store_uri: str, dataset_key: str) -> Iterator[dict[str, Any]]:
    """Train, scale, test and store the dataset's network; yields progress every few seconds,
    then the stored meta (``{"done": True, ...}``). Deterministic for a dataset."""
    store = ArtifactStore(store_uri, check=False)
    manifest = read_manifest(store, dataset_key)
    spec = spec_of(manifest)
    key = features_key(manifest)
    start = time.perf_counter()
    torch.manual_seed(spec["seed"])
    net = FeatureNet(spec["arch"])
    opt = torch.optim.AdamW(net.parameters(), lr=spec["lr"], weight_decay=1e-3)
    budget = spec["steps"]
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [int(budget * 0.6), int(budget * 0.85)], gamma=0.2
    )
    gen = torch.Generator().manual_seed(spec["seed"])
    held = spec["read_mb"] << 20  # a train split larger than this streams
    train = SplitReader(store, dataset_key, "train", manifest=manifest, budget_bytes=held)
    net.train()
    shown, loss_sum, hits, seen = time.monotonic(), 0.0, 0, 0
    batches = _batches(train, spec["seed"])
    for step, (x, y) in enumerate(batches):
        if step >= budget:
            break
        shifted, k = rolled(x, gen)
        raw = net.raw(torch.cat([shifted, x]) if y is not None else shifted)  # one pass, (2B, 64)
        pretext = net.pretext(raw[: len(x)])
        loss = nn.functional.cross_entropy(pretext, k)
        if y is not None and net.head is not None:
            logits = net.head(raw[len(x) :])
            loss = loss + nn.functional.cross_entropy(logits, y)
            hits += int((logits.argmax(-1) == y).sum())
        else:
            hits += int((pretext.argmax(-1) == k).sum())
        seen += len(x)
        loss_sum += float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if time.monotonic() - shown >= PROGRESS_S or step + 1 == budget:
            yield {"step": step + 1, "steps": budget, "loss": loss_sum / max(seen / BATCH, 1),
                   "accuracy": hits / max(seen, 1)}  # fmt: skip
            shown, loss_sum, hits, seen = time.monotonic(), 0.0, 0, 0
    batches.close()  # its rows (a streamed split's buffers) go now
    net.eval().requires_grad_(False)
    with torch.no_grad():
        raw = torch.cat([net.raw(torch.from_numpy(x)) for x, _ in first_rows(train, manifest)])
    net.feature_mean.copy_(raw.mean(0))
    net.feature_std.copy_(raw.std(0).clamp_min(1e-6))
    accuracy, pretext_accuracy = _tested(net, store, dataset_key, manifest)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    store.write_bytes(layout.features_model(key), buf.getvalue())
    meta = {"dataset": manifest["dataset"], "version": manifest["version"],
            "net_version": net_version(spec), "spec": spec, "test_accuracy": accuracy,
            "pretext_accuracy": pretext_accuracy, "train_rows": len(train),
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    store.write_json(layout.features_meta(key), meta)  # written last: the commit
    yield {"done": True, **meta}


def first_rows(reader: SplitReader, manifest: dict) -> Iterator[tuple[np.ndarray, Any]]:
    """The rows the features are scaled and tested on, 1,000 at a time, each slice a writable
    copy, one row group in memory at a time: every row when the split has at most
    :func:`scale_rows` (read in file order), else a seeded sample of that many spread over the
    split's row groups (:meth:`SplitReader.sample`; a file's own order, e.g. a class-sorted
    ``.npy``, never decides which rows)."""
    limit = scale_rows(manifest)
    if reader.rows > limit:
        parts: Iterator = reader.sample(limit, seed=0)
    else:
        parts = (reader.read_part(part)[:2] for part in reader.parts)
    for values, labels in parts:
        for i in range(0, len(values), 1000):
            take = slice(i, i + 1000)
            # a copy: a part's arrays are Arrow's read-only buffers, which torch warns about
            yield np.array(values[take]), (np.array(labels[take]) if labels is not None else None)


@torch.no_grad()
def _tested(net: FeatureNet, store, dataset_key: str, manifest: dict) -> tuple:
    """(class accuracy or None, pretext accuracy) on up to 5,000 test rows (32 MB of them)."""
    test = SplitReader(store, dataset_key, "test", manifest=manifest)
    gen = torch.Generator().manual_seed(1)
    rows = hits = found = 0
    for values, labels in first_rows(test, manifest):
        x = torch.from_numpy(values)
        shifted, k = rolled(x, gen)
        found += int((net.pretext(net.raw(shifted)).argmax(-1) == k).sum())
        if labels is not None and net.head is not None:
            hits += int((net.logits(x).argmax(-1) == torch.from_numpy(labels)).sum())
        rows += len(x)
    labelled = test.labelled and net.head is not None
    return (hits / rows if labelled else None), found / rows


def load_feature_net(store: ArtifactStore, dataset_key: str) -> TrainedFeatures | None:
    """The dataset's stored network (this genai's version of it), or None if not trained yet."""
    manifest = read_manifest(store, dataset_key)
    key = features_key(manifest)
    if not store.exists(layout.features_meta(key)):
        return None
    meta = store.read_json(layout.features_meta(key))
    net = FeatureNet(meta["spec"]["arch"])
    state = torch.load(
        io.BytesIO(store.read_bytes(layout.features_model(key))),
        map_location="cpu",
        weights_only=True,
    )
    net.load_state_dict(state)
    net.eval().requires_grad_(False)
    return TrainedFeatures(net, meta["test_accuracy"], key, meta)
