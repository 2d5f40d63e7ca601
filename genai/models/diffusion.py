"""DDPM with epsilon prediction: noise slot (mse | mae | huber); DDPM and DDIM samplers.

The network predicts the noise; :mod:`genai.models.schedule` does the math; ``sample`` drives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from genai.losses import LossSpec, LossTerms, pointwise_loss, weighted_total
from genai.model_config import DiffusionModel
from genai.models.base import DataSpec, GenerativeModel
from genai.models.blocks import image_dims, mlp, sinusoidal_embedding
from genai.models.image_nets import UNet
from genai.models.schedule import make_schedule

TIME_DIM = 32


class MlpEps(nn.Module):
    """eps(x_t, t) for flat data: an MLP over [x_t, embed(t)]."""

    def __init__(self, dim: int, width: int, depth: int, act: str = "silu"):
        super().__init__()
        self.net = mlp(dim + TIME_DIM, dim, width, depth, act)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = torch.cat([x.flatten(1), sinusoidal_embedding(t, TIME_DIM)], dim=-1)
        return self.net(h).reshape(x.shape)


class ConvEps(nn.Module):
    """eps(x_t, t) for images: residual 3x3 conv blocks at full resolution, t added per channel."""

    def __init__(self, shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        self.c = image_dims(shape)[0]
        self.inp = nn.Conv2d(self.c, width, 3, padding=1)
        self.time = nn.ModuleList(nn.Linear(TIME_DIM, width) for _ in range(depth))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)) for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Conv2d(width, self.c, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.inp(x.reshape(x.shape[0], self.c, *x.shape[-2:]))  # (B, W, H, W)
        emb = sinusoidal_embedding(t, TIME_DIM)
        for block, proj in zip(self.blocks, self.time, strict=True):
            h = h + block(h + proj(emb)[:, :, None, None])
        return self.out(h).reshape(x.shape)


class Diffusion(GenerativeModel):
    family = "diffusion"

    def __init__(self, cfg: DiffusionModel, losses: Mapping[str, LossSpec], data: DataSpec):
        super().__init__(data)
        self.opts, self.losses = cfg.diffusion, dict(losses)
        self.noise_loss = pointwise_loss(self.losses["noise"])
        self.schedule = make_schedule(self.opts.schedule, self.opts.timesteps)
        arch = cfg.arch
        if arch.body == "unet":
            self.eps = UNet(data.shape, arch.width, arch.depth, self.opts.attention)
        elif arch.body == "conv":
            self.eps = ConvEps(data.shape, arch.width, arch.depth)
        else:
            self.eps = MlpEps(data.dim, arch.width, arch.depth, arch.activation)
        margin = 0.1 * (data.high - data.low)
        self.clip = (data.low - margin, data.high + margin)

    def training_step(self, batch: Tensor, player: str = "model") -> LossTerms:
        t = torch.randint(0, self.schedule.timesteps, (batch.shape[0],), device=batch.device)
        eps = torch.randn_like(batch)
        pred = self.eps(self.schedule.add_noise(batch, eps, t), t)
        return weighted_total({"noise": self.noise_loss(pred, eps)}, self.losses)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        sampler: Literal["ddpm", "ddim"] | None = None,
        steps: int | None = None,
        eta: float | None = None,
    ) -> Tensor:
        sampler = sampler or self.opts.sampler
        x = self._noise(n, *self.data.shape, generator=generator)  # x_T
        T = self.schedule.timesteps
        if sampler == "ddpm":
            for t in range(T - 1, -1, -1):
                x0, _ = self._x0_eps(x, t)
                x = self.schedule.ddpm_step(x, x0, t, self._noise(*x.shape, generator=generator))
            return x
        k = min(steps or self.opts.sample_steps, T)
        times = torch.linspace(T - 1, 0, k).round().long().tolist()
        eta = self.opts.eta if eta is None else eta
        for i, t in enumerate(times):
            x0, eps = self._x0_eps(x, t)
            t_prev = times[i + 1] if i + 1 < k else -1
            noise = self._noise(*x.shape, generator=generator) if eta and t_prev >= 0 else None
            x = self.schedule.ddim_step(x0, eps, t, t_prev, eta, noise)
        return x

    def sampler_options(
        self, kind: str, ddim_steps: int, eta: float | None = None
    ) -> tuple[dict[str, Any], str]:
        """fast: DDIM in ``ddim_steps`` at ``eta`` (None: the model's); model: the config's own
        sampler."""
        T = self.schedule.timesteps

        def ddim(steps: int, eta: float) -> str:
            return f"ddim {min(steps, T)} steps" + (f", eta {eta:g}" if eta else "")

        if kind == "fast":
            eta = self.opts.eta if eta is None else eta
            return {"sampler": "ddim", "steps": ddim_steps, "eta": eta}, ddim(ddim_steps, eta)
        if self.opts.sampler == "ddpm":
            return {}, f"ddpm {T} steps"
        return {}, ddim(self.opts.sample_steps, self.opts.eta)

    def _x0_eps(self, x: Tensor, t: int) -> tuple[Tensor, Tensor]:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = self.eps(x, tt)
        x0 = self.schedule.predict_x0(x, eps, tt).clamp(*self.clip)
        ab = self.schedule.alpha_bar[t]
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()  # consistent with the clipped x0
        return x0, eps
