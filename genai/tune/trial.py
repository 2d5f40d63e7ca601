"""One sweep trial: the one training loop, judged every epoch by a loss-independent score.

Training losses of different kinds (a BCE reconstruction, a hinge game, a noise MSE) are not
comparable, so trials report ``score``, lower is better: FID in the domain feature network's
space for labelled images, MMD^2 (RBF, median bandwidth) against the validation split otherwise.
``repeats`` seeds of the same config train side by side and the trial reports their mean and
standard deviation, so ASHA and the final ranking act on the mean.

A trial with ``train.num_workers`` 1 trains in the trial's own process. With more, the trial is a
driver: a Ray Train ``TorchTrainer`` (DDP, the same shards and seeds as :mod:`genai.train.worker`)
runs :func:`trial_loop_per_worker` on that many workers, rank 0 scores, and Ray's
``TuneReportCallback`` hands rank 0's report to Tune (the Ray 2.60 Train-in-Tune pattern).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
from ray import tune

from genai.config import RunConfig
from genai.data.dataset import denormalise, read_manifest, read_split
from genai.evaluate.features import ensure_feature_net
from genai.evaluate.images import fid_kid
from genai.evaluate.points import median_bandwidth, mode_metrics, rbf_mmd2
from genai.models import DataSpec, build_model
from genai.runs import needs_features
from genai.storage import ArtifactStore
from genai.train.loop import batches, make_optimizers, train_epoch, unwrap
from genai.train.worker import epoch_seed, reduce_metrics, shard, start_worker
from genai.tune.space import trial_config

SCORE_SAMPLES = 500


class Scorer:
    """The loss-independent score of a model against the validation split."""

    def __init__(self, store: ArtifactStore, dataset_key: str, manifest: dict[str, Any], seed: int):
        self.manifest, self.seed = manifest, seed
        self.val = torch.from_numpy(read_split(store, dataset_key, "val")[0])
        self.features = (
            ensure_feature_net(store, dataset_key) if manifest["kind"] == "image" else None
        )
        if self.features is None:
            train = torch.from_numpy(read_split(store, dataset_key, "train")[0][:SCORE_SAMPLES])
            self.bandwidth = median_bandwidth(self.val, train)
        self.name = "fid" if self.features is not None else "mmd2"

    def __call__(self, model) -> dict[str, float]:
        model.eval()
        fake = model.sample_batched(
            SCORE_SAMPLES, generator=torch.Generator().manual_seed(self.seed)
        ).cpu()
        if not torch.isfinite(fake).all():
            raise FloatingPointError("the model generates NaN or inf")
        if self.features is not None:
            return {"score": fid_kid(self.features.net, self.val, fake)["fid"]}
        out = {"score": rbf_mmd2(self.val, fake, self.bandwidth)}
        if self.manifest.get("modes") is not None:
            pts = denormalise(fake.numpy(), self.manifest)
            out |= mode_metrics(pts, np.asarray(self.manifest["modes"]), self.manifest["mode_std"])
        return out


def _state(models, optimizers, epoch: int, steps: list[int], history: list) -> str:
    """A directory holding the trial's state after ``epoch`` (every repeat's model and
    optimisers, the step counters, so a GAN's critic schedule goes on where it stopped)."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="genai-trial-")
    state = {
        "models": [unwrap(m).state_dict() for m in models],
        "optimizers": [{k: o.state_dict() for k, o in opts.items()} for opts in optimizers],
        "epoch": epoch,
        "steps": steps,
        "history": history,
    }
    torch.save(state, f"{directory}/trial.pt")
    return directory


def _restore(checkpoint, models, optimizers, device=None) -> tuple[int, list, list[int]] | None:
    """Load a trial checkpoint into ``models``; returns (first epoch, history, steps)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        state = torch.load(f"{directory}/trial.pt", map_location=device, weights_only=False)
    for model, opts, ms, os_ in zip(
        models, optimizers, state["models"], state["optimizers"], strict=True
    ):
        unwrap(model).load_state_dict(ms)
        for name, opt in opts.items():
            opt.load_state_dict(os_[name])
    return state["epoch"] + 1, state["history"], state["steps"]


def _build(cfg: RunConfig, spec: DataSpec, features, seeds: list[int], wrap=None):
    """One model and its optimisers per seed (``wrap``: Ray Train's prepare_model for DDP)."""
    models, optimizers = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(cfg.model, cfg.loss, spec, features=features)
        if wrap is not None:
            model = wrap(model)
        models.append(model)
        optimizers.append(make_optimizers(model, cfg.train))
    return models, optimizers


def _report(epoch: int, seeds, scores, losses, extras, seconds: float) -> dict[str, Any]:
    report = {
        "score": statistics.mean(scores),
        "score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
        "loss": statistics.mean(losses),
        "epoch": epoch + 1,
        "seeds": ",".join(map(str, seeds)),
        "trial_s": seconds,
    }
    for key in extras[0]:
        report[key] = statistics.mean(e[key] for e in extras)
    return report


def _epoch_loss(metrics: dict[str, float]) -> float:
    return metrics.get("total", metrics.get("generator/total", math.nan))


def run_trial(params: dict[str, Any], *, ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``params`` are the sampled paths, ``ctx`` the fixed rest."""
    start = time.perf_counter()
    cfg: RunConfig = trial_config(RunConfig.model_validate(ctx["base"]), params)
    if cfg.train.num_workers > 1:
        run_distributed_trial(cfg, ctx)
        return
    torch.set_num_threads(1)
    store = ArtifactStore(ctx["store"], check=False)
    manifest = read_manifest(store, ctx["dataset_key"])
    x = torch.from_numpy(read_split(store, ctx["dataset_key"], "train")[0])
    features = (
        ensure_feature_net(store, ctx["dataset_key"]).net.layers if needs_features(cfg) else None
    )
    scorer = Scorer(store, ctx["dataset_key"], manifest, seed=cfg.train.seed)
    seeds = [cfg.train.seed + 1000 * r for r in range(ctx["repeats"])]
    models, optimizers = _build(cfg, DataSpec.from_manifest(manifest), features, seeds)
    first, history, steps = _restore(tune.get_checkpoint(), models, optimizers) or (
        0, [], [0] * len(seeds)
    )  # fmt: skip
    for epoch in range(first, cfg.train.epochs):
        scores, losses, extras = [], [], []
        for r, (model, opts) in enumerate(zip(models, optimizers, strict=True)):
            torch.manual_seed(epoch_seed(seeds[r], epoch))
            loader = batches(x, cfg.train.batch_size, seed=epoch_seed(seeds[r], epoch))
            metrics, steps[r] = train_epoch(
                model, opts, loader, step=steps[r], grad_clip=cfg.train.grad_clip
            )
            losses.append(_epoch_loss(metrics))
            judged = scorer(model)
            scores.append(judged.pop("score"))
            extras.append(judged)
        history.append(_report(epoch, seeds, scores, losses, extras, time.perf_counter() - start))
        directory = _state(models, optimizers, epoch, list(steps), history)
        tune.report(history[-1], checkpoint=tune.Checkpoint.from_directory(directory))


def run_distributed_trial(cfg: RunConfig, ctx: dict[str, Any]) -> None:
    """This trial on ``train.num_workers`` Ray Train workers; its checkpoints live in the
    store under ``sweeps/{sweep_id}/trials/{trial_id}`` (shared by every node), and a trial run
    again (a resumed sweep) goes on from the last of them."""
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from genai.train.launcher import resolve_use_gpu

    store = ArtifactStore(ctx["store"], check=False)
    fs, path = store.arrow_filesystem(f"{ctx['key']}/trials")
    use_gpu = resolve_use_gpu(cfg, ray.cluster_resources())
    trainer = TorchTrainer(
        trial_loop_per_worker,
        train_loop_config={"run": cfg.model_dump(mode="json"), **ctx, "start": time.time()},
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=use_gpu),
        run_config=ray.train.RunConfig(
            name=tune.get_context().get_trial_id(),
            storage_path=path,
            storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(max_failures=0),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[TuneReportCallback()],
        ),
    )
    try:
        trainer.fit()
    except Exception as err:  # the table records the workers' own error, not Train's wrapper
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise RuntimeError(f"{type(cause).__name__}: {cause}") from err


def trial_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker of a multi-worker trial: DDP on this rank's shard; rank 0 scores."""
    torch.set_num_threads(1)
    w = start_worker(config)
    cfg, rank, world, device, x = w.cfg, w.rank, w.world, w.device, w.train_x
    scorer = (
        Scorer(w.store, config["dataset_key"], w.manifest, seed=cfg.train.seed)
        if rank == 0
        else None
    )
    seeds = [cfg.train.seed + 1000 * r for r in range(config["repeats"])]

    def ddp(model):
        return ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": len(model.players) > 1}
        )

    spec = DataSpec.from_manifest(w.manifest)
    models, optimizers = _build(cfg, spec, w.features, seeds, wrap=ddp)
    first, history, steps = _restore(ray.train.get_checkpoint(), models, optimizers, device) or (
        0, [], [0] * len(seeds)
    )  # fmt: skip
    per_worker = max(1, cfg.train.batch_size // world)
    for epoch in range(first, cfg.train.epochs):
        scores, losses, extras = [], [], []
        for r, (model, opts) in enumerate(zip(models, optimizers, strict=True)):
            torch.manual_seed(epoch_seed(seeds[r], epoch, rank))
            data = shard(x, seed=seeds[r], epoch=epoch, rank=rank, world=world).to(device)
            loader = batches(data, per_worker, seed=0, shuffle=False)
            metrics, steps[r] = train_epoch(
                model, opts, loader, step=steps[r], grad_clip=cfg.train.grad_clip
            )
            losses.append(_epoch_loss(reduce_metrics(metrics, device)))
            if scorer is not None:
                judged = scorer(unwrap(model))
                scores.append(judged.pop("score"))
                extras.append(judged)
        if scorer is None:  # every rank reports (a barrier); Tune takes rank 0's
            ray.train.report({"epoch": epoch + 1})
            continue
        report = _report(epoch, seeds, scores, losses, extras, time.time() - config["start"])
        history.append({**report, "workers": world})
        directory = _state(models, optimizers, epoch, list(steps), history)
        ray.train.report(
            history[-1],
            checkpoint=ray.train.Checkpoint.from_directory(directory),
            checkpoint_dir_name=f"epoch-{epoch:05d}",
        )
