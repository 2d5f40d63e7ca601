"""Loss configs: a small class per loss; their union, discriminated on ``name``, is the registry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from genai.strict import StrictModel


class LossSpec(StrictModel):
    """A loss in a model's slot, with the weight it gets in the composite total."""

    weight: float = Field(1.0, ge=0, description="multiplier of this term in the total loss")


class MSE(LossSpec):
    name: Literal["mse"] = "mse"


class MAE(LossSpec):
    name: Literal["mae"] = "mae"


class Huber(LossSpec):
    name: Literal["huber"] = "huber"
    delta: float = Field(1.0, gt=0, description="quadratic below |error| < delta, linear above")


class BCE(LossSpec):
    name: Literal["bce"] = "bce"


class CrossEntropy(LossSpec):
    name: Literal["cross_entropy"] = "cross_entropy"
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class KL(LossSpec):
    name: Literal["kl"] = "kl"


class Minimax(LossSpec):
    name: Literal["minimax"] = "minimax"


class NonSaturating(LossSpec):
    name: Literal["non_saturating"] = "non_saturating"


class Hinge(LossSpec):
    name: Literal["hinge"] = "hinge"


class LeastSquares(LossSpec):
    name: Literal["least_squares"] = "least_squares"


class Wasserstein(LossSpec):
    name: Literal["wasserstein"] = "wasserstein"


class GradientPenalty(LossSpec):
    name: Literal["gradient_penalty"] = "gradient_penalty"
    weight: float = Field(10.0, ge=0, description="lambda of WGAN-GP")


class R1(LossSpec):
    name: Literal["r1"] = "r1"
    weight: float = Field(1.0, ge=0, description="gamma / 2 of the R1 penalty")


class Perceptual(LossSpec):
    name: Literal["perceptual"] = "perceptual"
    layer_weights: tuple[float, ...] | None = Field(
        None, description="weight per feature layer; None weighs every layer 1"
    )


class FeatureMatching(LossSpec):
    name: Literal["feature_matching"] = "feature_matching"


LossConfig = Annotated[
    MSE
    | MAE
    | Huber
    | BCE
    | CrossEntropy
    | KL
    | Minimax
    | NonSaturating
    | Hinge
    | LeastSquares
    | Wasserstein
    | GradientPenalty
    | R1
    | Perceptual
    | FeatureMatching,
    Field(discriminator="name"),
]
