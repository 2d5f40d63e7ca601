"""The one training loop: used as is for a local fit, inside Ray Train workers and Tune trials.

Plain PyTorch. A distributed run differs only by the DDP-wrapped module and the data shard it is
handed; every player of a family (one for most, discriminator and generator for a GAN) gets its
own optimiser.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from genai.config import TrainConfig
from genai.models.base import GenerativeModel


def unwrap(model: nn.Module) -> GenerativeModel:
    """The family behind a DDP wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model  # type: ignore[return-value]


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """One Adam per player; GANs use the betas (0.5, 0.9) of DCGAN / WGAN-GP."""
    family = unwrap(model)
    betas = (0.5, 0.9) if len(family.players) > 1 else (0.9, 0.999)
    return {
        player: torch.optim.Adam(
            family.player_parameters(player), lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay
        )
        for player in family.players
    }


def batches(data: Tensor, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[Tensor]:
    """Minibatches of ``data`` (N, ...), reshuffled by ``seed``; the last short batch is dropped
    when training so every step sees ``batch_size`` rows."""
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else None
    stop = n - n % batch_size if shuffle and n >= batch_size else n
    for i in range(0, stop, batch_size):
        idx = order[i : i + batch_size] if order is not None else slice(i, i + batch_size)
        yield data[idx]


def train_epoch(
    model: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    loader: Iterable[Tensor],
    *,
    step: int = 0,
    grad_clip: float | None = None,
    autocast: torch.autocast | None = None,
) -> tuple[dict[str, float], int]:
    """One pass over ``loader``; returns the mean of every logged term and the next step."""
    family = unwrap(model)
    multi = len(family.players) > 1
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    rows, start = 0, time.perf_counter()
    model.train()
    for batch in loader:
        for player in family.players_at(step):
            opt = optimizers[player]
            opt.zero_grad(set_to_none=True)
            if autocast is not None:
                with autocast:
                    terms = model(batch, player)
            else:
                terms = model(batch, player)
            if not torch.isfinite(terms.total):
                raise FloatingPointError(f"{player} loss is {float(terms.total)} at step {step}")
            terms.total.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(family.player_parameters(player), grad_clip)
            opt.step()
            for key, value in terms.logged(f"{player}/" if multi else "").items():
                sums[key] += value
                counts[key] += 1
        rows += len(batch)
        step += 1
    seconds = time.perf_counter() - start
    metrics = {k: sums[k] / counts[k] for k in sums}
    metrics["samples_per_s"] = rows / seconds if seconds > 0 else math.nan
    metrics["epoch_s"] = seconds
    return metrics, step


@torch.no_grad()
def validation_loss(model: nn.Module, loader: Iterable[Tensor]) -> float:
    """Row-weighted mean of the family's validation objective over ``loader``."""
    family = unwrap(model)
    family.eval()
    total, rows = 0.0, 0
    for batch in loader:
        total += float(family.validation_loss(batch).total) * len(batch)
        rows += len(batch)
    return total / max(rows, 1)


def fit_local(
    model: GenerativeModel,
    train: Tensor,
    val: Tensor | None,
    cfg: TrainConfig,
) -> list[dict[str, float]]:
    """Single-process training for ``cfg.epochs``: one metrics dict per epoch."""
    torch.manual_seed(cfg.seed)
    optimizers = make_optimizers(model, cfg)
    history, step = [], 0
    for epoch in range(cfg.epochs):
        loader = batches(train, cfg.batch_size, seed=cfg.seed * 100_003 + epoch)
        metrics, step = train_epoch(model, optimizers, loader, step=step, grad_clip=cfg.grad_clip)
        if val is not None:
            metrics["val_loss"] = validation_loss(model, batches(val, 1024, seed=0, shuffle=False))
        history.append({"epoch": epoch, **metrics})
    return history
