"""beta-VAE: reconstruction slot (mse | mae | huber | bce) + kl (weight = beta) [+ perceptual].

Kingma & Welling 2014 (arXiv:1312.6114); beta-VAE: Higgins et al. 2017.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from genai.losses import (
    LossSpec,
    LossTerms,
    kl_divergence_normal,
    perceptual_loss,
    pointwise_loss,
    weighted_total,
)
from genai.losses.perceptual import FeatureFn
from genai.model_config import VaeModel
from genai.models.base import DataSpec, GenerativeModel
from genai.models.blocks import mlp
from genai.models.image_nets import STACKS


class VAE(GenerativeModel):
    family = "vae"

    def __init__(
        self,
        cfg: VaeModel,
        losses: Mapping[str, LossSpec],
        data: DataSpec,
        *,
        features: FeatureFn | None = None,
    ):
        super().__init__(data)
        arch, self.latent = cfg.arch, cfg.arch.latent_dim
        self.losses = dict(losses)
        if self.losses["reconstruction"].name == "bce" and not data.unit_interval:
            raise ValueError(
                "loss.reconstruction.name: 'bce' needs data in [0, 1] (min-max normalised images);"
                f" this data spans [{data.low:.3g}, {data.high:.3g}]: use mse, mae or huber"
            )
        if "perceptual" in self.losses and features is None:
            raise ValueError(
                "loss.perceptual: needs a feature network (the dataset's domain feature network)"
            )
        self.features = features
        self.recon = pointwise_loss(self.losses["reconstruction"])
        self.is_conv = arch.body != "mlp"
        if self.is_conv:
            down, up = STACKS[arch.body]
            self.encoder = down(data.shape, 2 * self.latent, arch.width, arch.depth)
            self.decoder = up(self.latent, data.shape, arch.width, arch.depth)
        else:
            self.encoder = mlp(data.dim, 2 * self.latent, arch.width, arch.depth, arch.activation)
            self.decoder = mlp(self.latent, data.dim, arch.width, arch.depth, arch.activation)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x if self.is_conv else x.flatten(1))  # (B, 2L)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output (B, *shape): logits for bce, the mean otherwise."""
        return self.decoder(z).reshape(z.shape[0], *self.data.shape)

    def mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.losses["reconstruction"].name == "bce" else out

    def training_step(self, batch: Tensor, player: str = "model") -> LossTerms:
        mu, logvar = self.encode(batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation
        out = self.decode(z)
        terms = {"reconstruction": self.recon(out, batch), "kl": kl_divergence_normal(mu, logvar)}
        if "perceptual" in self.losses:
            spec = self.losses["perceptual"]
            terms["perceptual"] = perceptual_loss(
                self.features, self.mean(out), batch, layer_weights=spec.layer_weights
            )
        return weighted_total(terms, self.losses)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        z = self._noise(n, self.latent, generator=generator)
        return self.mean(self.decode(z))
