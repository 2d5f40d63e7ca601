"""Model families (plain PyTorch): vae, gan, diffusion, autoregressive."""

from __future__ import annotations

from collections.abc import Mapping

from genai.losses import LossSpec
from genai.losses.perceptual import FeatureFn
from genai.model_config import (
    AutoregressiveModel,
    DiffusionModel,
    GanModel,
    ModelConfig,
    VaeModel,
    image_body,
)
from genai.models.autoregressive import Autoregressive
from genai.models.base import DataSpec, GenerativeModel
from genai.models.diffusion import Diffusion
from genai.models.gan import GAN
from genai.models.vae import VAE
from genai.plugins import family_class


def build_model(
    model: ModelConfig,
    losses: Mapping[str, LossSpec],
    data: DataSpec,
    *,
    features: FeatureFn | None = None,
) -> GenerativeModel:
    """The family ``model.family`` (or your class at ``model.class_path``) built for ``data`` with
    its loss slots filled by ``losses``."""
    body = image_body(model)
    if body is not None and data.kind != "image":
        raise ValueError(
            f"{body[0]} needs image data; this data is {data.kind} of shape"
            f" {list(data.shape)}: use {body[1]}"
        )
    if model.class_path is not None:
        return family_class(model.class_path)(model, losses, data, features=features)
    match model:
        case VaeModel():
            return VAE(model, losses, data, features=features)
        case GanModel():
            return GAN(model, losses, data, features=features)
        case DiffusionModel():
            return Diffusion(model, losses, data)
        case AutoregressiveModel():
            return Autoregressive(model, losses, data)
    raise ValueError(f"model.family: {model.family!r} is not a known family")


__all__ = ["DataSpec", "GenerativeModel", "build_model"]
