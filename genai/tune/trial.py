"""One sweep trial: the one training loop, judged every epoch by a loss-independent score.

Training losses of different kinds (a BCE reconstruction, a hinge game, a noise MSE) are not
comparable, so trials report ``score``, lower is better: FID in the domain feature network's
space for labelled images, MMD^2 (RBF, median bandwidth) against the validation split otherwise.
``repeats`` seeds of the same config train side by side and the trial reports their mean and
standard deviation, so ASHA and the final ranking act on the mean.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
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
from genai.train.loop import batches, make_optimizers, train_epoch
from genai.train.worker import epoch_seed
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
        )
        if not torch.isfinite(fake).all():
            raise FloatingPointError("the model generates NaN or inf")
        if self.features is not None:
            return {"score": fid_kid(self.features.net, self.val, fake)["fid"]}
        out = {"score": rbf_mmd2(self.val, fake, self.bandwidth)}
        if self.manifest.get("modes") is not None:
            pts = denormalise(fake.numpy(), self.manifest)
            out |= mode_metrics(pts, np.asarray(self.manifest["modes"]), self.manifest["mode_std"])
        return out


def _save(models, optimizers, epoch: int, steps: list[int], history: list) -> tune.Checkpoint:
    import tempfile

    directory = tempfile.mkdtemp(prefix="genai-trial-")
    state = {
        "models": [m.state_dict() for m in models],
        "optimizers": [{k: o.state_dict() for k, o in opts.items()} for opts in optimizers],
        "epoch": epoch,
        "steps": steps,  # a GAN's critic/generator schedule goes on where it stopped
        "history": history,
    }
    torch.save(state, f"{directory}/trial.pt")
    return tune.Checkpoint.from_directory(directory)


def run_trial(params: dict[str, Any], *, ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``params`` are the sampled paths, ``ctx`` the fixed rest."""
    start = time.perf_counter()
    cfg: RunConfig = trial_config(RunConfig.model_validate(ctx["base"]), params)
    torch.set_num_threads(1)
    store = ArtifactStore(ctx["store"], check=False)
    manifest = read_manifest(store, ctx["dataset_key"])
    spec = DataSpec.from_manifest(manifest)
    x = torch.from_numpy(read_split(store, ctx["dataset_key"], "train")[0])
    features = (
        ensure_feature_net(store, ctx["dataset_key"]).net.layers if needs_features(cfg) else None
    )
    scorer = Scorer(store, ctx["dataset_key"], manifest, seed=cfg.train.seed)
    seeds = [cfg.train.seed + 1000 * r for r in range(ctx["repeats"])]
    models, optimizers = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build_model(cfg.model, cfg.loss, spec, features=features))
        optimizers.append(make_optimizers(models[-1], cfg.train))
    first, history, steps = 0, [], [0] * len(seeds)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = torch.load(f"{directory}/trial.pt", weights_only=False)
        for model, opts, ms, os_ in zip(
            models, optimizers, state["models"], state["optimizers"], strict=True
        ):
            model.load_state_dict(ms)
            for name, opt in opts.items():
                opt.load_state_dict(os_[name])
        first, history, steps = state["epoch"] + 1, state["history"], state["steps"]
    for epoch in range(first, cfg.train.epochs):
        scores, losses, extras = [], [], []
        for r, (model, opts) in enumerate(zip(models, optimizers, strict=True)):
            torch.manual_seed(epoch_seed(seeds[r], epoch))
            loader = batches(x, cfg.train.batch_size, seed=epoch_seed(seeds[r], epoch))
            metrics, steps[r] = train_epoch(
                model, opts, loader, step=steps[r], grad_clip=cfg.train.grad_clip
            )
            losses.append(metrics.get("total", metrics.get("generator/total", math.nan)))
            judged = scorer(model)
            scores.append(judged.pop("score"))
            extras.append(judged)
        report = {
            "score": statistics.mean(scores),
            "score_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "loss": statistics.mean(losses),
            "epoch": epoch + 1,
            "seeds": ",".join(map(str, seeds)),
            "trial_s": time.perf_counter() - start,
        }
        for key in extras[0]:
            report[key] = statistics.mean(e[key] for e in extras)
        history.append(report)
        tune.report(report, checkpoint=_save(models, optimizers, epoch, list(steps), history))
