"""Adversarial losses: each game's discriminator (critic) half and generator half.

Inputs are the discriminator's raw outputs (logits, or critic scores for Wasserstein), shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def minimax_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014); 2 log 2 at D = 1/2."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g_loss(fake: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))]: the original, saturating generator objective (minimised)."""
    return -F.softplus(fake).mean()


def non_saturating_g_loss(fake: Tensor) -> Tensor:
    """-E[log D(G(z))]: the generator objective Goodfellow et al. use in practice."""
    return F.softplus(-fake).mean()


def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017, arXiv:1705.02894)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    """-E[D(G(z))]."""
    return -fake.mean()


def least_squares_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] (LSGAN, Mao et al. 2017, arXiv:1611.04076)."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def least_squares_g_loss(fake: Tensor) -> Tensor:
    """0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def wasserstein_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E[C(G(z))] - E[C(x)] (WGAN, Arjovsky et al. 2017, arXiv:1701.07875)."""
    return fake.mean() - real.mean()


def wasserstein_g_loss(fake: Tensor) -> Tensor:
    """-E[C(G(z))]."""
    return -fake.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E[(||grad C(x_hat)||_2 - 1)^2], x_hat on lines between real and fake (WGAN-GP,
    Gulrajani et al. 2017, arXiv:1704.00028). Weight lambda is the slot's weight."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # (B,)
    return ((norm - 1.0) ** 2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """E[||grad C(x)||_2^2] on real rows: the zero-centred R1 penalty (Mescheder et al. 2018,
    arXiv:1801.04406), under which the game converges to the data. The slot's weight is gamma/2."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def adversarial_halves(name: str) -> tuple[Callable, Callable]:
    """(discriminator loss, generator loss) of the named game."""
    match name:
        case "minimax":
            return minimax_d_loss, minimax_g_loss
        case "non_saturating":
            return minimax_d_loss, non_saturating_g_loss
        case "hinge":
            return hinge_d_loss, hinge_g_loss
        case "least_squares":
            return least_squares_d_loss, least_squares_g_loss
        case "wasserstein":
            return wasserstein_d_loss, wasserstein_g_loss
    raise ValueError(
        f"loss.adversarial.name: {name!r} is not one of 'minimax', 'non_saturating', 'hinge',"
        " 'least_squares', 'wasserstein'"
    )
