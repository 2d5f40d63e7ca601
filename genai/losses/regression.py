"""Regression losses: per-sample sums over features, averaged over the batch."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from genai.losses.probabilistic import bce_with_logits, cross_entropy


def _per_sample(elementwise: Tensor) -> Tensor:
    return elementwise.flatten(1).sum(1).mean()  # (B, ...) -> scalar


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """MSE: mean over the batch of sum_i (pred_i - target_i)^2."""
    return _per_sample((pred - target) ** 2)


def mae_loss(pred: Tensor, target: Tensor) -> Tensor:
    """MAE: mean over the batch of sum_i |pred_i - target_i|."""
    return _per_sample((pred - target).abs())


def huber_loss(pred: Tensor, target: Tensor, *, delta: float = 1.0) -> Tensor:
    """Huber: 0.5 e^2 for |e| <= delta, delta (|e| - 0.5 delta) above; summed, batch-averaged."""
    e = (pred - target).abs()
    quadratic = torch.clamp(e, max=delta)
    return _per_sample(0.5 * quadratic**2 + delta * (e - quadratic))


def mean_of(loss_fn, pred: Tensor, target: Tensor, **kw) -> Tensor:
    """The same loss as an element mean (the reduction PyTorch's reference losses use)."""
    return loss_fn(pred, target, **kw) / pred[0].numel()


def pointwise_loss(spec) -> Callable[[Tensor, Tensor], Tensor]:
    """The ``(pred, target) -> loss`` function a reconstruction, noise or nll slot names."""
    match spec.name:
        case "mse":
            return mse_loss
        case "mae":
            return mae_loss
        case "huber":
            return partial(huber_loss, delta=spec.delta)
        case "bce":
            return bce_with_logits
        case "cross_entropy":
            return partial(cross_entropy, label_smoothing=spec.label_smoothing)
    raise ValueError(f"loss {spec.name!r} does not compare a prediction with a target")
