"""THE training core: one epoch loop for ``genai train``, every sweep trial and the benchmarks.

A fit trains replicas (one per seed: one for a run, ``repeats`` for a sweep trial), each a model
with one optimiser per player and a step counter, epoch by epoch over one data schedule. Where it
runs is a :class:`Session`: this process (a local fit, an in-process trial) or one rank of a Ray
Train worker group (:mod:`genai.train.worker`); a distributed fit differs only by the DDP-wrapped
module and the rank's slice of the data. :class:`Hook` objects add to each epoch: a trial's hook
scores the replicas, a run's writes its metrics; the session reports and checkpoints.

Seeds: a replica's model is built right after ``torch.manual_seed(seed)``; epoch ``e`` draws one
global permutation seeded by ``epoch_seed(seed, e)`` of which rank ``r`` trains on an equal slice,
and the noise of its training steps comes from ``torch.manual_seed(epoch_seed(seed, e, r))``. So a
config gives the same batches in-process and on one Ray worker, and a run resumed after epoch k
replays exactly what an uninterrupted run would.

Subnormal floats: while it runs, a fit flushes them to zero on its thread and the threads started
from it (x86 FTZ/DAZ, what TensorFlow does by default on CPU; torch's intra-op pool, if an earlier
parallel op already started it, keeps its own setting: one-thread Ray workers and trials have
none). Late in training Adam's squared gradients and small activations fall below 1.2e-38, where
every CPU operation on them is 10-50x slower: measured on this loop, the ring8 VAE's epochs took
4.2-5.0 s without the flush and 2.4-2.5 s with it (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from genai.config import RunConfig, TrainConfig
from genai.models import DataSpec, GenerativeModel, build_model
from genai.train import checkpoint
from genai.train.ema import EMA
from genai.train.hooks import REPORTED, EpochContext, Hook
from genai.train.session import Session
from genai.train.state import FitData, FitState, Replica, unwrap


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch) * 1_009 + rank


def epoch_rows(n: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1) -> Tensor:
    """Row indices rank ``rank`` trains on in ``epoch``: an equal slice of one global permutation
    (equal sizes keep DDP ranks in lock-step)."""
    per = n // world
    order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    return order[rank * per : (rank + 1) * per]


def minibatches(data: Tensor, batch_size: int, *, drop_last: bool = True) -> Iterator[Tensor]:
    """Consecutive batches of ``data`` (N, ...); training drops a last short batch (when there is
    a full one) so every step sees ``batch_size`` rows."""
    n = len(data)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield data[i : i + batch_size]


def rank_batches(
    train: Any, *, seed: int, epoch: int, rank: int, world: int, batch_size: int, device
) -> Iterator[Tensor]:
    """This rank's training batches of one epoch: slices of one global permutation of a split
    held whole, or a streamed reader's windows (:meth:`genai.data.dataset.SplitReader.epoch`)."""
    if isinstance(train, Tensor):
        rows = epoch_rows(len(train), seed=seed, epoch=epoch, rank=rank, world=world)
        yield from minibatches(train[rows].to(device), batch_size)
        return
    for x, _ in train.epoch(seed=epoch_seed(seed, epoch), rank=rank, world=world,
                            batch_size=batch_size):  # fmt: skip
        yield torch.from_numpy(x).to(device)


def default_betas(family: GenerativeModel) -> tuple[float, float]:
    """Adam's betas unless the config sets them: (0.5, 0.9) for a two-player game (DCGAN,
    WGAN-GP), Adam's own (0.9, 0.999) otherwise."""
    return (0.5, 0.9) if len(family.players) > 1 else (0.9, 0.999)


def fusable(params: Sequence[Tensor]) -> bool:
    """Adam's fused kernel (one per step for all tensors; on CPU 2-3x faster than the default
    per-tensor loop for these models' sizes, bench/step_cost.py) where every tensor allows it."""
    return bool(params) and all(
        p.dtype.is_floating_point and p.device.type in ("cpu", "cuda") for p in params
    )


def make_optimizers(model: nn.Module, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """One Adam per player; a GAN's discriminator may have its own rate (TTUR)."""
    family = unwrap(model)
    betas = cfg.betas or default_betas(family)
    out = {}
    for player in family.players:
        lr = cfg.lr_discriminator if player == "discriminator" and cfg.lr_discriminator else cfg.lr
        params = list(family.player_parameters(player))
        out[player] = torch.optim.Adam(
            params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, fused=fusable(params)
        )
        for group in out[player].param_groups:
            group["base_lr"] = lr  # what lr_factor scales, saved with the optimiser's state
    return out


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """The learning rate at ``step`` (of ``total``) as a share of the base rate: a linear
    warm-up from 0 over ``warmup_steps``, then constant, or a cosine (Loshchilov & Hutter 2017,
    arXiv:1608.03983) or linear decay to ``min_lr_ratio`` at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(total - 1 - cfg.warmup_steps, 1)
    progress = min(max((step - cfg.warmup_steps) / span, 0.0), 1.0)
    floor = cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return floor + (1 - floor) * (1 - progress)


def train_epoch(
    replica: Replica,
    loader: Iterable[Tensor],
    cfg: TrainConfig,
    *,
    total_steps: int,
    autocast: torch.autocast | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; the mean of every logged term. Advances ``replica.step``."""
    model, family = replica.model, replica.family
    multi = len(family.players) > 1
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    rows, start = 0, time.perf_counter()
    model.train()
    for batch in loader:
        step = replica.step
        factor = lr_factor(step, total_steps, cfg)
        for player in family.players_at(step):
            opt = replica.optimizers[player]
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor
            opt.zero_grad(set_to_none=True)
            if autocast is not None:
                with autocast:
                    terms = model(batch, player)
            else:
                terms = model(batch, player)
            if not torch.isfinite(terms.total):
                raise FloatingPointError(f"{player} loss is {float(terms.total)} at step {step}")
            terms.total.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(family.player_parameters(player), cfg.grad_clip)
            opt.step()
            for key, value in terms.logged(f"{player}/" if multi else "").items():
                sums[key] += value
                counts[key] += 1
        if replica.ema is not None:
            replica.ema.update(family)
        rows += len(batch)
        replica.step = step + 1
    seconds = time.perf_counter() - start
    metrics = {k: sums[k] / counts[k] for k in sums}
    metrics["samples_per_s"] = rows / seconds if seconds > 0 else math.nan
    metrics["epoch_s"] = seconds
    return metrics


@torch.no_grad()
def validation_loss(model: nn.Module, loader: Iterable[Tensor]) -> float:
    """Row-weighted mean of the family's validation objective over ``loader``."""
    family = unwrap(model)
    family.eval()
    total, rows = 0.0, 0
    for batch in loader:
        total += float(family.validation_loss(batch).total) * len(batch)
        rows += len(batch)
    return total / rows if rows else math.nan


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reduce_metrics(metrics: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean of each metric over ranks; samples/s summed (it is the job's throughput).

    A collective: every rank calls it with the same keys."""
    if not distributed():
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    world = dist.get_world_size()
    return {
        k: float(v) if k == "samples_per_s" else float(v) / world
        for k, v in zip(keys, t.tolist(), strict=True)
    }


def param_divergence(model: nn.Module, device: torch.device) -> float:
    """Largest difference between ranks of a digest of every parameter (0: DDP kept them equal).

    A collective: every rank calls it."""
    if not distributed():
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).double() for p in unwrap(model).parameters()])
    proj = torch.randn(len(flat), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    digest = torch.stack([flat.sum(), (flat**2).sum(), flat @ proj.to(flat.device)]).to(device)
    gathered = [torch.zeros_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest)
    stacked = torch.stack(gathered)
    return float((stacked - stacked[0]).abs().max())


def merge_replicas(per_replica: Sequence[dict[str, float]]) -> dict[str, float]:
    """One entry for the epoch: the mean of each term over replicas, their total time."""
    if len(per_replica) == 1:
        return dict(per_replica[0])
    out = {k: statistics.mean(m[k] for m in per_replica) for k in per_replica[0]}
    out["epoch_s"] = sum(m["epoch_s"] for m in per_replica)
    return out


def build_replicas(
    cfg: RunConfig,
    spec: DataSpec,
    session: Session,
    seeds: Sequence[int],
    features: Any = None,
) -> list[Replica]:
    replicas = []
    for seed in seeds:
        torch.manual_seed(seed)  # the same initial weights on every rank
        model = session.wrap(build_model(cfg.model, cfg.loss, spec, features=features))
        ema = EMA(unwrap(model), cfg.train.ema_decay) if cfg.train.ema_decay else None
        replicas.append(Replica(seed, model, make_optimizers(model, cfg.train), ema=ema))
    return replicas


def steps_per_epoch(rows: int, cfg: TrainConfig, world: int) -> int:
    """Training steps an epoch takes on every rank (a last short batch is dropped)."""
    per_rank, shard = max(1, cfg.batch_size // world), rows // world
    return max(shard // per_rank, 1) if shard >= per_rank else 1


def run_epoch(cfg: RunConfig, state: FitState, epoch: int, data: FitData, session: Session):
    """Train every replica for one epoch on this rank's rows; the merged, rank-reduced entry."""
    device, rank, world = session.device, session.rank, session.world
    per_rank = max(1, cfg.train.batch_size // world)
    autocast = None
    if cfg.train.mixed_precision and device.type == "cuda":
        autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    val = data.val.to(device)
    total = cfg.train.epochs * steps_per_epoch(len(data.train), cfg.train, world)
    results = []
    for r in state.replicas:
        torch.manual_seed(epoch_seed(r.seed, epoch, rank))
        metrics = train_epoch(
            r,
            rank_batches(data.train, seed=r.seed, epoch=epoch, rank=rank, world=world,
                         batch_size=per_rank, device=device),
            cfg.train,
            total_steps=total,
            autocast=autocast,
        )  # fmt: skip
        metrics["val_loss"] = validation_loss(r.model, minibatches(val, 1024, drop_last=False))
        results.append(metrics)
    entry = reduce_metrics(merge_replicas(results), device)
    entry["param_divergence"] = max(param_divergence(r.model, device) for r in state.replicas)
    entry["steps"] = state.replicas[0].step  # training steps so far (the budget's unit)
    return {"epoch": epoch, **entry}


@contextlib.contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Subnormal floats flushed to zero on this thread inside the block (see the module's
    docstring), off again after it: torch's default, which nothing here changes otherwise."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@subnormals_flushed()  # a context manager as a decorator: fresh for every call
def fit(
    cfg: RunConfig,
    data: FitData,
    session: Session | None = None,
    *,
    seeds: Sequence[int] | None = None,
    hooks: Sequence[Hook] = (),
    features: Any = None,
) -> FitState:
    """Train ``cfg`` for ``cfg.train.epochs`` (resuming from the session's checkpoint)."""
    session = session or Session()
    seeds = list(seeds) if seeds is not None else [cfg.train.seed]
    state = FitState(build_replicas(cfg, data.spec, session, seeds, features))
    saved = session.restored()
    if saved is not None:
        checkpoint.restore(state, saved)
        session.resumed(state)
    for hook in hooks:
        hook.setup(cfg, session, data)
    for epoch in range(state.epoch + 1, cfg.train.epochs):
        entry = run_epoch(cfg, state, epoch, data, session)
        ctx = EpochContext(cfg, session, state, epoch, entry)
        for hook in hooks:
            entry.update(hook.on_epoch(ctx))
        state.epoch = epoch
        state.history.append(entry)
        if entry.get(REPORTED) is not False:
            session.report(entry, state)
        for hook in hooks:
            hook.on_report(ctx)
    return state
