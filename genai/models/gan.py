"""GAN: adversarial slot (minimax | non_saturating | hinge | least_squares | wasserstein)
[+ gradient_penalty: WGAN-GP's, or r1 on real rows]
[+ feature_matching or perceptual on the generator].

Two players: the discriminator (critic) takes a step every training step, the generator every
``n_critic``-th (WGAN-GP uses 5).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from genai.losses import (
    LossSpec,
    LossTerms,
    adversarial_halves,
    gradient_penalty,
    perceptual_loss,
    r1_penalty,
    weighted_total,
)
from genai.losses.perceptual import FeatureFn
from genai.model_config import GanModel
from genai.models.base import DataSpec, GenerativeModel
from genai.models.blocks import mlp
from genai.models.image_nets import STACKS


class Discriminator(nn.Module):
    """x (B, *shape) -> score (B,), with its penultimate features for feature matching."""

    def __init__(self, data: DataSpec, width: int, depth: int, body: str):
        super().__init__()
        if body in STACKS:
            self.body = STACKS[body][0](data.shape, width, width, depth)
        else:
            self.body = nn.Sequential(*list(mlp(data.dim, width, width, depth, nn.LeakyReLU))[:-1])
        self.conv = body != "mlp"
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x if self.conv else x.flatten(1))  # (B, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(-1)  # (B,)


class GAN(GenerativeModel):
    family = "gan"
    players = ("discriminator", "generator")

    def __init__(
        self,
        cfg: GanModel,
        losses: Mapping[str, LossSpec],
        data: DataSpec,
        *,
        features: FeatureFn | None = None,
    ):
        super().__init__(data)
        arch, self.latent = cfg.arch, cfg.arch.latent_dim
        self.losses = dict(losses)
        self.n_critic = cfg.gan.n_critic
        self.d_loss, self.g_loss = adversarial_halves(self.losses["adversarial"].name)
        matching = self.losses.get("feature_matching")
        if matching is not None and matching.name == "perceptual" and features is None:
            raise ValueError("loss.feature_matching: 'perceptual' needs a feature network")
        self.features = features
        if arch.body in STACKS:
            self.generator = STACKS[arch.body][1](self.latent, data.shape, arch.width, arch.depth)
        else:
            self.generator = mlp(self.latent, data.dim, arch.width, arch.depth, arch.activation)
        self.discriminator = Discriminator(data, arch.width, arch.depth, arch.body)

    def player_parameters(self, player: str) -> list[nn.Parameter]:
        return list(getattr(self, player).parameters())

    def players_at(self, step: int) -> tuple[str, ...]:
        last_critic_step = step % self.n_critic == self.n_critic - 1
        return ("discriminator", "generator") if last_critic_step else ("discriminator",)

    def generate(self, z: Tensor) -> Tensor:
        x = self.generator(z).reshape(z.shape[0], *self.data.shape)  # (B, *shape)
        return torch.sigmoid(x) if self.data.unit_interval else x

    def training_step(self, batch: Tensor, player: str = "discriminator") -> LossTerms:
        z = torch.randn(batch.shape[0], self.latent, device=batch.device)
        if player == "discriminator":
            fake = self.generate(z).detach()
            terms = {
                "adversarial": self.d_loss(self.discriminator(batch), self.discriminator(fake))
            }
            penalty = self.losses.get("gradient_penalty")
            if penalty is not None and penalty.name == "r1":
                terms["gradient_penalty"] = r1_penalty(self.discriminator, batch)
            elif penalty is not None:
                terms["gradient_penalty"] = gradient_penalty(self.discriminator, batch, fake)
            return weighted_total(terms, self.losses)
        if player != "generator":
            raise ValueError(f"player {player!r} is not one of 'discriminator', 'generator'")
        fake = self.generate(z)
        terms = {"adversarial": self.g_loss(self.discriminator(fake))}
        matching = self.losses.get("feature_matching")
        if matching is not None and matching.name == "feature_matching":
            real_f = self.discriminator.features(batch).mean(0).detach()
            terms["feature_matching"] = (
                (self.discriminator.features(fake).mean(0) - real_f) ** 2
            ).sum()
        elif matching is not None:
            terms["feature_matching"] = perceptual_loss(
                self.features, fake, batch, layer_weights=matching.layer_weights
            )
        return weighted_total(terms, self.losses)

    @torch.no_grad()
    def validation_loss(self, batch: Tensor) -> LossTerms:
        """The discriminator's adversarial loss on held-out data (no penalty: it needs grads)."""
        z = torch.randn(batch.shape[0], self.latent, device=batch.device)
        real, fake = self.discriminator(batch), self.discriminator(self.generate(z))
        return weighted_total({"adversarial": self.d_loss(real, fake)}, self.losses)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return self.generate(self._noise(n, self.latent, generator=generator))
