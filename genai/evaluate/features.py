"""The domain feature network: a small conv classifier trained on a labelled image dataset.

No pretrained network can be downloaded here, so its penultimate layer is the feature space of
FID, KID, precision/recall and density/coverage, its class probabilities give the inception
score, and its layers feed the ``perceptual`` loss. Stored under ``features/{dataset}/{version}/``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from genai import layout
from genai.data.dataset import read_manifest, read_split
from genai.models.blocks import image_dims
from genai.progress import say
from genai.storage import ArtifactStore

FEATURE_DIM = 64


def conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


class FeatureNet(nn.Module):
    """(B, *shape) image -> features (B, 64); ``logits`` gives class scores."""

    def __init__(self, shape: tuple[int, ...], n_classes: int, width: int = 32):
        super().__init__()
        self.shape, self.n_classes, self.width = tuple(shape), n_classes, width
        self.c = image_dims(self.shape)[0]
        h, w = self.shape[-2] // 2, self.shape[-1] // 2
        self.block1 = nn.Sequential(*conv_bn(self.c, width), *conv_bn(width, width))
        self.block2 = nn.Sequential(
            nn.MaxPool2d(2), *conv_bn(width, 2 * width), *conv_bn(2 * width, 2 * width)
        )
        self.block3 = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * h * w, FEATURE_DIM), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, n_classes))
        self.num_features = FEATURE_DIM  # torchmetrics reads this instead of probing

    def layers(self, x: Tensor) -> list[Tensor]:
        """Activations of each block: the perceptual loss's feature layers."""
        h1 = self.block1(x.reshape(x.shape[0], self.c, *x.shape[-2:]))  # (B, W, H, W)
        h2 = self.block2(h1)  # (B, 2W, H/2, W/2)
        return [h1, h2, self.block3(h2)]

    def forward(self, x: Tensor) -> Tensor:
        """Features (B, 64): what torchmetrics' ``feature=`` module must return."""
        return self.layers(x)[-1]

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.forward(x))


@dataclass(frozen=True)
class TrainedFeatures:
    net: FeatureNet
    test_accuracy: float
    key: str


def features_key(manifest: dict) -> str:
    return layout.features(manifest["dataset"], manifest["version"])


def fit_feature_net(
    train_x: Tensor,
    train_y: Tensor,
    shape: tuple[int, ...],
    n_classes: int,
    *,
    epochs: int = 50,
    seed: int = 0,
    shift: bool = False,
) -> FeatureNet:
    """AdamW, learning rate stepped down at 60% and 85% of the epochs; deterministic for a seed.

    ``shift`` adds random one-pixel rolls (hurts on 8x8 digits, where a roll wraps the border)."""
    torch.manual_seed(seed)
    net = FeatureNet(shape, n_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, [int(epochs * 0.6), int(epochs * 0.85)], gamma=0.2
    )
    gen = torch.Generator().manual_seed(seed)
    x = train_x.reshape(len(train_x), image_dims(shape)[0], *shape[-2:])
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            dx, dy = torch.randint(-1, 2, (2,), generator=gen).tolist() if shift else (0, 0)
            batch = torch.roll(x[idx], shifts=(dx, dy), dims=(-2, -1))
            loss = nn.functional.cross_entropy(net.logits(batch), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@torch.no_grad()
def accuracy(net: FeatureNet, x: Tensor, y: Tensor) -> float:
    return float((net.logits(x).argmax(-1) == y).float().mean())


def has_feature_net(manifest: dict) -> bool:
    """Labelled images get a domain feature network; other data is judged in its own space."""
    return manifest["kind"] == "image" and bool(manifest.get("labels"))


def ensure_feature_net(store: ArtifactStore, dataset_key: str) -> TrainedFeatures | None:
    """Load the dataset's feature network, training and storing it first if needed.

    None when the data has no labels or is not images.
    """
    manifest = read_manifest(store, dataset_key)
    if not has_feature_net(manifest):
        return None
    key = features_key(manifest)
    if store.exists(layout.features_meta(key)):
        meta = store.read_json(layout.features_meta(key))
        net = FeatureNet(tuple(meta["shape"]), meta["n_classes"], meta["width"])
        net.load_state_dict(
            torch.load(
                io.BytesIO(store.read_bytes(layout.features_model(key))),
                map_location="cpu",
                weights_only=True,
            )
        )
        net.eval().requires_grad_(False)
        return TrainedFeatures(net, meta["test_accuracy"], key)
    start = time.perf_counter()
    tx, ty = read_split(store, dataset_key, "train")
    sx, sy = read_split(store, dataset_key, "test")
    classes = manifest["labels"]["classes"]
    shape = tuple(manifest["shape"])
    net = fit_feature_net(torch.from_numpy(tx), torch.from_numpy(ty), shape, len(classes))
    acc = accuracy(net, torch.from_numpy(sx), torch.from_numpy(sy))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    store.write_bytes(layout.features_model(key), buf.getvalue())
    meta = {
        "dataset": manifest["dataset"],
        "version": manifest["version"],
        "shape": list(shape),
        "n_classes": len(classes),
        "width": net.width,
        "feature_dim": FEATURE_DIM,
        "test_accuracy": acc,
        "test_rows": int(len(sy)),
        "class_counts": np.bincount(ty, minlength=len(classes)).tolist(),
    }
    store.write_json(layout.features_meta(key), meta)  # written last: the commit
    seconds = time.perf_counter() - start
    say(
        "features",
        f"{manifest['dataset']}: domain classifier, {acc:.1%} test accuracy ({seconds:.1f}s)",
    )
    return TrainedFeatures(net, acc, key)
