"""The loss catalogue: configs (the registry) and, beside them, the pure loss functions.

The configs import no torch, so reading and validating a config stays light (a command that finds
its result in the store answers in a second or two); the functions load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from genai.losses.registry import LossConfig, LossSpec

# name -> module that defines it (PEP 562: imported on first access)
_FUNCTIONS = {
    "adversarial_halves": "genai.losses.adversarial",
    "gradient_penalty": "genai.losses.adversarial",
    "LossTerms": "genai.losses.composite",
    "weighted_total": "genai.losses.composite",
    "perceptual_loss": "genai.losses.perceptual",
    "bce_with_logits": "genai.losses.probabilistic",
    "cross_entropy": "genai.losses.probabilistic",
    "kl_divergence_categorical": "genai.losses.probabilistic",
    "kl_divergence_normal": "genai.losses.probabilistic",
    "huber_loss": "genai.losses.regression",
    "mae_loss": "genai.losses.regression",
    "mse_loss": "genai.losses.regression",
    "pointwise_loss": "genai.losses.regression",
    "r1_penalty": "genai.losses.adversarial",
}

if TYPE_CHECKING:
    from genai.losses.adversarial import adversarial_halves, gradient_penalty, r1_penalty
    from genai.losses.composite import LossTerms, weighted_total
    from genai.losses.perceptual import perceptual_loss
    from genai.losses.probabilistic import (
        bce_with_logits,
        cross_entropy,
        kl_divergence_categorical,
        kl_divergence_normal,
    )
    from genai.losses.regression import huber_loss, mae_loss, mse_loss, pointwise_loss


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'genai.losses' has no attribute {name!r}")


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
    "r1_penalty",
    "weighted_total",
]
