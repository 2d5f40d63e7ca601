"""Noise schedules and the DDPM / DDIM update rules: the math, apart from any network."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def linear_beta_schedule(timesteps: int) -> Tensor:
    """Ho et al. 2020 (arXiv:2006.11239): betas linear from 1e-4 to 0.02 at T = 1000,
    scaled by 1000 / T for other T (Nichol & Dhariwal 2021)."""
    scale = 1000.0 / timesteps
    return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)


def cosine_beta_schedule(timesteps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal 2021 (arXiv:2102.09672): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2)."""
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


class NoiseSchedule(nn.Module):
    """q(x_t | x_0) and the reverse steps, for epsilon prediction."""

    def __init__(self, betas: Tensor):
        super().__init__()
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        prev = torch.cat([torch.ones(1, dtype=betas.dtype), alpha_bar[:-1]])
        for name, value in {
            "betas": betas,
            "alphas": alphas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": prev,
        }.items():
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    @staticmethod
    def _at(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
        return values[t].reshape(-1, *([1] * (like.dim() - 1)))  # (B, 1, ...)

    def add_noise(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        ab = self._at(self.alpha_bar, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def predict_x0(self, x_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        ab = self._at(self.alpha_bar, t, x_t)
        return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()

    def ddpm_step(self, x_t: Tensor, x0: Tensor, t: int, noise: Tensor) -> Tensor:
        """Sample q(x_{t-1} | x_t, x_0) with x_0 predicted: the posterior of Ho et al. eq. 7."""
        ab, ab_prev = self.alpha_bar[t], self.alpha_bar_prev[t]
        beta, alpha = self.betas[t], self.alphas[t]
        mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (
            alpha.sqrt() * (1 - ab_prev) / (1 - ab)
        ) * x_t
        if t == 0:
            return mean
        var = beta * (1 - ab_prev) / (1 - ab)
        return mean + var.sqrt() * noise

    def ddim_step(
        self,
        x0: Tensor,
        eps: Tensor,
        t: int,
        t_prev: int,
        eta: float = 0.0,
        noise: Tensor | None = None,
    ) -> Tensor:
        """DDIM (Song et al. 2021, arXiv:2010.02502, eq. 12) from step t to step t_prev.

        eta = 0 is the deterministic sampler; eta = 1 adds the noise of the DDPM posterior for the
        skipped steps, so with every timestep it is DDPM's ancestral chain."""
        ab_prev = self.alpha_bar[t_prev] if t_prev >= 0 else torch.ones((), device=x0.device)
        if eta == 0 or t_prev < 0:
            return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        ab = self.alpha_bar[t]
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        if noise is None:
            raise ValueError("ddim_step: eta > 0 needs noise")
        direction = (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
        return ab_prev.sqrt() * x0 + direction + sigma * noise


def make_schedule(kind: str, timesteps: int) -> NoiseSchedule:
    match kind:
        case "linear":
            return NoiseSchedule(linear_beta_schedule(timesteps))
        case "cosine":
            return NoiseSchedule(cosine_beta_schedule(timesteps))
    raise ValueError(f"model.diffusion.schedule: {kind!r} is not one of 'linear', 'cosine'")
