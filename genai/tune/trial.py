"""One sweep trial: the one training core plus a hook that judges every epoch (or every
``sweep.judge_every`` epochs and the last: sampling a long diffusion chain costs more than an
epoch).

Training losses of different kinds (a BCE reconstruction, a hinge game, a noise MSE) are not
comparable, so a trial reports ``score``: a metric of :class:`genai.evaluate.judge.Judge` against
the validation split (``sweep.metric``; by default FID in the domain feature network's space for
images, MMD^2 otherwise), beside the Judge's other metrics under the names ``evaluate``
uses, from samples drawn as ``evaluate`` draws them by default (a DDPM with DDIM in 50 steps).
``repeats`` seeds of the same config train side by side as replicas of one
fit and the trial reports the mean score and its standard deviation, so ASHA and the final
ranking act on the mean.

A trial with ``train.num_workers`` 1 runs the loop in the trial's own process
(:class:`TuneSession`). With more, the trial drives a Ray Train ``TorchTrainer`` built by
:func:`genai.train.trainer.build_trainer` over the one worker function; rank 0 judges (with
process-local metrics: no collective on one rank) and Ray's ``TuneReportCallback`` hands rank 0's
report to Tune.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ray
import torch
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from genai import layout
from genai.config import EvaluateConfig, RunConfig
from genai.evaluate.judge import Judge
from genai.storage import ArtifactStore
from genai.train import checkpoint
from genai.train.hooks import REPORTED, EpochContext, Hook
from genai.train.loop import fit
from genai.train.session import Session
from genai.train.state import FitData, FitState, load_fit_data
from genai.train.trained import feature_layers
from genai.train.trainer import build_trainer, resolve_use_gpu
from genai.tune.space import trial_config

T = TypeVar("T")
_KEPT: dict[tuple[str, ...], Any] = {}


def kept(kind: str, store_uri: str, dataset_key: str, extra: str, make: Callable[[], T]) -> T:
    """What a reused actor keeps between its trials (Tune reuses one-worker trials' actors):
    values made from a dataset by its content key (its splits, its Judge), so they cannot go
    stale; only one dataset's are kept. A trial reads them and never writes them."""
    key = (kind, store_uri, dataset_key, extra)
    if key not in _KEPT:
        if any(k[1:3] != key[1:3] for k in _KEPT):
            _KEPT.clear()
        _KEPT[key] = make()
    return _KEPT[key]


FAST = EvaluateConfig()  # trials sample as `genai evaluate` does by default (DDIM for DDPM)

SCORE_SAMPLES = 500


class TrialJudge(Hook):
    """Every ``every`` epochs and at the last, rank 0 samples each replica and judges it
    against the validation split (``sweep.judge_every``)."""

    def __init__(
        self,
        store_uri: str,
        dataset_key: str,
        metric: str,
        n_samples: int = SCORE_SAMPLES,
        every: int = 1,
    ):
        self.store_uri, self.dataset_key, self.metric = store_uri, dataset_key, metric
        self.n_samples, self.every = n_samples, every
        self.judge: Judge | None = None

    def setup(self, cfg: RunConfig, session: Session, data: FitData) -> None:
        if session.rank == 0:
            store = ArtifactStore(self.store_uri, check=False)
            self.judge = kept(
                "judge",
                self.store_uri,
                self.dataset_key,
                "val",
                lambda: Judge(store, self.dataset_key, reference="val"),
            )

    def on_epoch(self, ctx: EpochContext) -> dict[str, Any]:
        replicas = ctx.state.replicas
        out: dict[str, Any] = {
            "epochs": ctx.epoch + 1,  # ASHA's time attribute: epochs done
            "seeds": ",".join(str(r.seed) for r in replicas),
            "workers": ctx.session.world,
        }
        # judged every `every` epochs and at the last; the epochs between are not reported to
        # Tune (every rank decides alike: each report is a barrier in a wide trial)
        last = ctx.epoch == ctx.cfg.train.epochs - 1
        out[REPORTED] = last or (ctx.epoch + 1) % self.every == 0
        if self.judge is None or not out[REPORTED]:  # ranks > 0: Tune takes rank 0's report
            return out
        judged = []
        for r in replicas:
            gen = torch.Generator().manual_seed(ctx.cfg.train.seed)
            with r.sampling() as family:  # with evaluate's default sampler: its score
                options, _ = family.sampler_options(FAST.sampler, FAST.ddim_steps, FAST.eta)
                fake = family.sample_batched(self.n_samples, generator=gen, **options).cpu()
            if not torch.isfinite(fake).all():
                raise FloatingPointError("the model generates NaN or inf")
            judged.append(self.judge.metrics(fake))
        scores = [m[self.metric] for m in judged]
        out["score"] = statistics.mean(scores)
        out["score_std"] = statistics.stdev(scores) if len(scores) > 1 else 0.0
        for name in judged[0]:
            out[name] = statistics.mean(m[name] for m in judged)
        return out


CHECKPOINT_EVERY_S = 20.0


class TuneSession(Session):
    """An in-process Tune trial: every epoch is reported to Tune; a checkpoint goes with the
    report at most every ``CHECKPOINT_EVERY_S`` seconds and with the last epoch (each checkpoint
    makes Tune snapshot the whole experiment; a resumed trial replays the epochs since, exactly).
    """

    def __init__(self, epochs: int) -> None:
        self.epochs, self.saved_at = epochs, time.monotonic()

    def restored(self) -> dict[str, Any] | None:
        saved = tune.get_checkpoint()
        if saved is None:
            return None
        with saved.as_directory() as directory:
            return checkpoint.load(directory)

    def report(self, entry: dict[str, Any], state: FitState) -> None:
        last = state.epoch == self.epochs - 1
        if not last and time.monotonic() - self.saved_at < CHECKPOINT_EVERY_S:
            tune.report(entry)
            return
        with tempfile.TemporaryDirectory(prefix="genai-trial-") as directory:
            checkpoint.save(state, directory)
            tune.report(entry, checkpoint=tune.Checkpoint.from_directory(directory))
        self.saved_at = time.monotonic()


def trial_seeds(cfg: RunConfig, repeats: int) -> list[int]:
    return [cfg.train.seed + 1000 * r for r in range(repeats)]


def run_trial(params: dict[str, Any], *, ctx: dict[str, Any]) -> None:
    """Ray Tune function trainable: ``params`` are the sampled paths, ``ctx`` the fixed rest."""
    cfg: RunConfig = trial_config(RunConfig.model_validate(ctx["base"]), params)
    store = ArtifactStore(ctx["store"], check=False)
    seeds = trial_seeds(cfg, ctx["repeats"])
    hooks = [TrialJudge(store.uri, ctx["dataset_key"], ctx["metric"], every=ctx["judge_every"])]
    if cfg.train.num_workers > 1:
        run_wide_trial(cfg, store, ctx, seeds, hooks)
        return
    torch.set_num_threads(1)  # one CPU per in-process trial
    key, mb = ctx["dataset_key"], cfg.train.buffer_mb
    data = kept("data", store.uri, key, str(mb), lambda: load_fit_data(store, key, buffer_mb=mb))
    features = feature_layers(store, cfg, ctx["dataset_key"])
    fit(cfg, data, TuneSession(cfg.train.epochs), seeds=seeds, hooks=hooks, features=features)


def run_wide_trial(cfg: RunConfig, store: ArtifactStore, ctx: dict[str, Any], seeds, hooks) -> None:
    """This trial on ``train.num_workers`` Ray Train workers; its checkpoints live in the store
    under ``sweeps/{sweep_id}/trials/{trial_id}`` (shared by every node), and a trial run again
    (a resumed sweep) goes on from the last of them."""
    trainer = build_trainer(
        cfg,
        store,
        ctx["dataset_key"],
        storage_key=layout.sweep_trial_runs(ctx["sweep_id"]),
        name=tune.get_context().get_trial_id(),
        hooks=hooks,
        seeds=seeds,
        use_gpu=resolve_use_gpu(cfg, ray.cluster_resources()),
        max_failures=0,
        keep=2,
        callbacks=[TuneReportCallback()],
        replay=True,  # a resumed sweep's Tune may not have seen every epoch the checkpoint holds
    )
    try:
        trainer.fit()
    except Exception as err:  # the table records the workers' own error, not Train's wrapper
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise RuntimeError(f"{type(cause).__name__}: {cause}") from err
