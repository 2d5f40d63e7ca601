"""The per-worker function Ray Train runs: the one loop, plus DDP, shards and checkpoints.

Determinism: every rank builds the model from ``train.seed``; epoch e reseeds with
(seed, e, rank) and draws its shard from one global permutation seeded by (seed, e), so a run
resumed from the checkpoint of epoch k replays exactly what an uninterrupted run would.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from genai.config import RunConfig
from genai.data.dataset import read_manifest, read_split
from genai.evaluate.features import ensure_feature_net
from genai.models import DataSpec, build_model
from genai.runs import needs_features, write_metrics
from genai.storage import ArtifactStore
from genai.train.loop import batches, make_optimizers, train_epoch, unwrap, validation_loss

STATE_FILE = "state.pt"


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch) * 1_009 + rank


def shard(x: torch.Tensor, *, seed: int, epoch: int, rank: int, world: int) -> torch.Tensor:
    """This rank's equal share of one global permutation (equal sizes keep DDP in lock-step)."""
    per = len(x) // world
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))
    return x[order[rank * per : (rank + 1) * per]]


def maybe_fail(fault: dict[str, Any] | None, epoch: int, rank: int) -> None:
    """Fault injection for recovery tests: die once at (epoch, rank), remembered by a marker."""
    if not fault or fault["epoch"] != epoch or fault["rank"] != rank:
        return
    marker = Path(fault["marker"])
    if marker.exists():
        return
    marker.write_text(f"rank {rank} died at epoch {epoch}\n")
    print(f"[fault injection] rank {rank} exits at epoch {epoch}", file=sys.stderr, flush=True)
    os._exit(1)


def reduce_metrics(metrics: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean of each metric over ranks; samples/s summed (it is the job's throughput)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    world = dist.get_world_size()
    return {
        k: float(v) if k == "samples_per_s" else float(v) / world
        for k, v in zip(keys, t.tolist(), strict=True)
    }


def param_divergence(model: torch.nn.Module, device: torch.device) -> float:
    """Largest difference between ranks of a digest of every parameter (0: DDP kept them equal)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in unwrap(model).parameters()])
    proj = torch.randn(len(flat), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    digest = torch.stack([flat.sum(), (flat**2).sum(), flat @ proj.to(flat.device)]).to(device)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 0.0
    gathered = [torch.zeros_like(digest) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest)
    stacked = torch.stack(gathered)
    return float((stacked - stacked[0]).abs().max())


def save_state(model, optimizers, epoch: int, step: int, history: list) -> ray.train.Checkpoint:
    directory = tempfile.mkdtemp(prefix="genai-ckpt-")
    torch.save(
        {
            "model": unwrap(model).state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "epoch": epoch,
            "step": step,
            "history": history,
        },
        os.path.join(directory, STATE_FILE),
    )
    return ray.train.Checkpoint.from_directory(directory)


def load_state(checkpoint: ray.train.Checkpoint, device: torch.device) -> dict[str, Any]:
    with checkpoint.as_directory() as directory:
        return torch.load(
            os.path.join(directory, STATE_FILE), map_location=device, weights_only=False
        )


def progress_line(epoch: int, epochs: int, entry: dict[str, float]) -> str:
    skip = {"epoch", "epoch_s", "samples_per_s", "param_divergence"}
    terms = "  ".join(f"{k} {v:.4g}" for k, v in entry.items() if k not in skip)
    return f"epoch {epoch + 1}/{epochs}  {terms}  {entry['samples_per_s']:,.0f} samples/s"


@dataclass(frozen=True)
class Worker:
    """What every Ray Train worker of a run or a trial starts from."""

    cfg: RunConfig
    store: ArtifactStore
    rank: int
    world: int
    device: torch.device
    manifest: dict[str, Any]
    train_x: torch.Tensor
    features: Any  # the frozen feature network's layers where a perceptual loss needs them


def start_worker(config: dict[str, Any]) -> Worker:
    cfg = RunConfig.model_validate(config["run"])  # re-validated across the process boundary
    store = ArtifactStore(config["store"], check=False)
    ctx = ray.train.get_context()
    device = ray.train.torch.get_device()
    features = None
    if needs_features(cfg):  # trained and stored by the driver before the workers start
        features = ensure_feature_net(store, config["dataset_key"]).net.to(device).layers
    return Worker(
        cfg=cfg,
        store=store,
        rank=ctx.get_world_rank(),
        world=ctx.get_world_size(),
        device=device,
        manifest=read_manifest(store, config["dataset_key"]),
        train_x=torch.from_numpy(read_split(store, config["dataset_key"], "train")[0]),
        features=features,
    )


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Entry point of every Ray Train worker."""
    w = start_worker(config)
    cfg, store, rank, world, device = w.cfg, w.store, w.rank, w.world, w.device
    manifest, train_x, features = w.manifest, w.train_x, w.features
    val_x = torch.from_numpy(read_split(store, config["dataset_key"], "val")[0])[rank::world]

    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    family = build_model(cfg.model, cfg.loss, DataSpec.from_manifest(manifest), features=features)
    multi_player = len(family.players) > 1
    model = ray.train.torch.prepare_model(
        family, parallel_strategy_kwargs={"find_unused_parameters": multi_player}
    )
    optimizers = make_optimizers(model, cfg.train)
    autocast = None
    if cfg.train.mixed_precision and device.type == "cuda":
        autocast = torch.autocast("cuda", dtype=torch.bfloat16)

    start, step, history = 0, 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        state = load_state(checkpoint, device)
        unwrap(model).load_state_dict(state["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        start, step, history = state["epoch"] + 1, state["step"], state["history"]
        if rank == 0:
            print(f"resuming {config['run_id']} after epoch {start}", file=sys.stderr, flush=True)

    per_worker = max(1, cfg.train.batch_size // world)
    seed = cfg.train.seed
    for epoch in range(start, cfg.train.epochs):
        maybe_fail(config.get("fault"), epoch, rank)
        torch.manual_seed(epoch_seed(seed, epoch, rank))
        data = shard(train_x, seed=seed, epoch=epoch, rank=rank, world=world).to(device)
        loader = batches(data, per_worker, seed=0, shuffle=False)
        metrics, step = train_epoch(
            model, optimizers, loader, step=step, grad_clip=cfg.train.grad_clip, autocast=autocast
        )
        metrics["val_loss"] = validation_loss(
            model, batches(val_x.to(device), 1024, seed=0, shuffle=False)
        )
        metrics = reduce_metrics(metrics, device)
        metrics["param_divergence"] = param_divergence(model, device)
        entry = {"epoch": epoch, **metrics}
        history.append(entry)
        ckpt = save_state(model, optimizers, epoch, step, history) if rank == 0 else None
        ray.train.report(entry, checkpoint=ckpt, checkpoint_dir_name=f"epoch-{epoch:05d}")
        if rank == 0:
            write_metrics(store, config["run_id"], history)
            print(progress_line(epoch, cfg.train.epochs, entry), file=sys.stderr, flush=True)
