"""Likelihoods where a family defines one, in bits per dimension.

* VAE with a Bernoulli decoder (``bce``): the negative ELBO and the importance-weighted bound
  (IWAE, Burda et al. 2016, arXiv:1509.00519) with k samples; both upper-bound -log p(x).
* autoregressive: the exact NLL of the quantised data (one token per dimension).
Diffusion and Gaussian-decoder VAEs have no likelihood here (they would need the full variational
bound or a decoder variance); GANs have none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genai.models.autoregressive import Autoregressive
from genai.models.base import GenerativeModel
from genai.models.vae import VAE

ROWS = 256  # rows per pass
DECODED = 1 << 21  # values the VAE bounds decode per pass: k samples x rows x dimensions


def vae_rows(x: Tensor, k: int = 64) -> int:
    """Rows per pass of :func:`vae_bounds`: 256 for 8x8 digits; 10 for a 32x32 colour image,
    whose 64 decodes a row would otherwise hold gigabytes of decoder activations at once."""
    return max(1, min(ROWS, DECODED // (k * x[0].numel())))


@torch.no_grad()
def vae_bounds(model: VAE, x: Tensor, k: int = 64) -> dict[str, float]:
    """negative ELBO and IWAE bound (k samples), in bits per dimension."""
    mu, logvar = model.encode(x)  # (B, L)
    std = (0.5 * logvar).exp()
    z = mu[None] + std[None] * torch.randn(k, *mu.shape)  # (k, B, L)
    logits = model.decode(z.reshape(-1, mu.shape[-1])).reshape(k, *x.shape)
    log_px_z = (
        -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        .flatten(2)
        .sum(-1)
    )  # (k, B)
    log_pz = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(-1)
    log_qz = (-0.5 * (((z - mu) / std) ** 2 + logvar + math.log(2 * math.pi))).sum(-1)
    weights = log_px_z + log_pz - log_qz  # (k, B)
    elbo = weights.mean(0)
    iwae = torch.logsumexp(weights, 0) - math.log(k)
    per_dim = math.log(2) * x[0].numel()
    return {
        "nelbo_bpd": float(-elbo.mean() / per_dim),
        "iwae_nll_bpd": float(-iwae.mean() / per_dim),
    }


@torch.no_grad()
def autoregressive_nll(model: Autoregressive, x: Tensor) -> dict[str, float]:
    tokens = model.quantise(x)
    logp = torch.log_softmax(model.logits(tokens), -1)  # (B, T, bins)
    nll = -logp.gather(-1, tokens[..., None]).squeeze(-1).mean()
    return {"nll_bpd": float(nll / math.log(2))}


def likelihood_metrics(model: GenerativeModel, x: Tensor) -> dict[str, float]:
    """Whatever likelihood bound the family defines on ``x`` (normalised units), batched."""
    if isinstance(model, VAE) and model.losses["reconstruction"].name == "bce":
        fn = vae_bounds
    elif isinstance(model, Autoregressive):
        fn = autoregressive_nll
    else:
        return {}
    rows = ROWS if fn is autoregressive_nll else vae_rows(x)
    parts = [(fn(model, x[i : i + rows]), len(x[i : i + rows])) for i in range(0, len(x), rows)]
    return {k: sum(p[k] * n for p, n in parts) / len(x) for k in parts[0][0]}
