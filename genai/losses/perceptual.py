"""Perceptual loss: distance between a frozen feature network's activations of two inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

FeatureFn = Callable[[Tensor], Sequence[Tensor]]


def perceptual_loss(
    features: FeatureFn,
    pred: Tensor,
    target: Tensor,
    *,
    layer_weights: Sequence[float] | None = None,
) -> Tensor:
    """sum_l w_l mean_b ||phi_l(pred) - phi_l(target)||^2 / size_l (Johnson et al. 2016).

    ``features`` returns the activations of each chosen layer; the target side is not
    differentiated, the prediction side is (the network's own weights should be frozen).
    """
    with torch.no_grad():
        target_feats = list(features(target))
    pred_feats = list(features(pred))
    weights = list(layer_weights) if layer_weights is not None else [1.0] * len(pred_feats)
    if len(weights) != len(pred_feats):
        raise ValueError(
            f"loss.perceptual.layer_weights: {len(weights)} weights for"
            f" {len(pred_feats)} feature layers"
        )
    total = pred.new_zeros(())
    for w, a, b in zip(weights, pred_feats, target_feats, strict=True):
        total = total + w * ((a - b) ** 2).flatten(1).mean(1).mean()
    return total
