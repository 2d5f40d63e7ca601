"""Probabilistic losses: binary and categorical cross-entropy, KL divergences."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """BCE: -sum_i [t_i log s(l_i) + (1 - t_i) log(1 - s(l_i))], s the sigmoid; batch mean."""
    per_element = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return per_element.flatten(1).sum(1).mean()


def cross_entropy(logits: Tensor, target: Tensor, *, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy -sum_k q_k log softmax(l)_k, q the (smoothed) one-hot target; token mean.

    logits (N, K) or (B, T, K); target (N,) or (B, T) integer classes.
    """
    k = logits.shape[-1]
    logp = F.log_softmax(logits, dim=-1).reshape(-1, k)  # (N, K)
    q = F.one_hot(target.reshape(-1), k).to(logp.dtype)
    q = q * (1 - label_smoothing) + label_smoothing / k
    return -(q * logp).sum(-1).mean()


def kl_divergence_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) = 0.5 sum(mu^2 + exp(logvar) - 1 - logvar).

    Summed over latent dimensions, averaged over the batch (Kingma & Welling 2014, App. B).
    """
    return (0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)).sum(-1).mean()


def kl_divergence_categorical(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(p || q) = sum_k p_k (log p_k - log q_k) between categoricals given by logits; mean."""
    logp = F.log_softmax(p_logits, dim=-1)
    logq = F.log_softmax(q_logits, dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1).mean()
