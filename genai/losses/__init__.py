"""The loss catalogue: configs (the registry) and, beside them, the pure loss functions."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor

from genai.losses.adversarial import adversarial_halves, gradient_penalty
from genai.losses.composite import LossTerms, weighted_total
from genai.losses.perceptual import perceptual_loss
from genai.losses.probabilistic import (
    bce_with_logits,
    cross_entropy,
    kl_divergence_categorical,
    kl_divergence_normal,
)
from genai.losses.registry import LossConfig, LossSpec
from genai.losses.regression import huber_loss, mae_loss, mse_loss


def pointwise_loss(spec: LossSpec) -> Callable[[Tensor, Tensor], Tensor]:
    """The ``(pred, target) -> loss`` function a reconstruction or noise slot names."""
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


__all__ = [
    "LossConfig",
    "LossSpec",
    "LossTerms",
    "adversarial_halves",
    "bce_with_logits",
    "cross_entropy",
    "gradient_penalty",
    "huber_loss",
    "kl_divergence_categorical",
    "kl_divergence_normal",
    "mae_loss",
    "mse_loss",
    "perceptual_loss",
    "pointwise_loss",
    "weighted_total",
]
