"""The loss catalogue: configs (the registry) and, beside them, the pure loss functions."""

from genai.losses.registry import LossConfig, LossSpec

__all__ = ["LossConfig", "LossSpec"]
