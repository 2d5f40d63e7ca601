"""The recipe levers: EMA of the weights, learning-rate warm-up and decay, Adam's betas, a GAN's
two learning rates (TTUR); each against its closed form, in-process (no Ray)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genai.config import RunConfig, TrainConfig
from genai.configfile import load_config
from genai.data.sources import load_builtin
from genai.models import DataSpec, build_model
from genai.strict import ConfigError
from genai.train import checkpoint
from genai.train.ema import EMA
from genai.train.hooks import Hook
from genai.train.loop import fit, lr_factor
from genai.train.session import Session
from genai.train.state import FitData


def test_ema_matches_its_closed_form():
    """shadow_n = prod_t d_t w_0 + sum_t (1 - d_t) prod_{s>t} d_s w_t, d_t = min(d, (1+t)/(10+t))
    for the weights w_t after step t (t counted from 0 at the first update)."""
    model = nn.Linear(3, 2)
    d = 0.9
    ema = EMA(model, d)
    weights = [model.weight.detach().clone()]
    for t in range(1, 8):
        with torch.no_grad():
            model.weight.copy_(torch.full((2, 3), float(t)))
        weights.append(model.weight.detach().clone())
        ema.update(model)
    n = len(weights) - 1
    rates = [min(d, (1 + t) / (10 + t)) for t in range(n)]  # rates[t-1]: the update after step t
    expected = math.prod(rates) * weights[0] + sum(
        (1 - rates[t - 1]) * math.prod(rates[t:]) * weights[t] for t in range(1, n + 1)
    )
    torch.testing.assert_close(ema.state_dict()["weight"], expected)
    with ema.applied(model):  # the averaged weights inside the block, the model's own after it
        torch.testing.assert_close(model.weight, expected)
    torch.testing.assert_close(model.weight, weights[-1])


def test_ema_warm_up_reaches_the_decay_and_survives_a_checkpoint():
    model = nn.Linear(3, 2)
    ema = EMA(model, 0.999)
    assert ema.rate() == pytest.approx(0.1)  # the first update: (1 + 0) / (10 + 0)
    ema.updates = 8990
    assert ema.rate() == pytest.approx(8991 / 9000)
    ema.updates = 8991
    assert ema.rate() == 0.999  # (1 + 8991) / (10 + 8991) > 0.999: the decay from here on
    restored = EMA(model, 0.999)
    restored.load_state_dict(ema.state_dict(), ema.updates)
    assert restored.updates == 8991
    assert set(restored.state_dict()) == set(model.state_dict())  # weights only: loads as a model
    restored.load_state_dict(ema.state_dict())  # a checkpoint from before the warm-up: warmed up
    assert restored.rate() == 0.999


def test_ema_follows_buffers_a_to_replaces_and_parameters_it_converts():
    """Parameters are cached once; buffers are read by name at every update, since ``.to()``
    replaces buffers with new objects (and swaps a parameter's ``.data`` in place)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(model, 0.5)
    ema.update(model)  # caches the parameters
    ema.updates = 100  # past the warm-up: every update uses d = 0.5
    model._apply(lambda t: t.clone())  # what .to(device) does: new buffers, parameters' new data
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[1].running_mean.fill_(4.0)
        model[1].num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    ema.update(model)
    shadow = ema.state_dict()
    torch.testing.assert_close(shadow["0.weight"], 0.5 * before["0.weight"] + 1.0)
    torch.testing.assert_close(shadow["1.running_mean"], 0.5 * before["1.running_mean"] + 2.0)
    assert int(shadow["1.num_batches_tracked"]) == 7


class Subnormals(Hook):
    """Whether a float32 subnormal survives arithmetic on this thread, inside the fit."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_epoch(self, ctx) -> dict:
        self.seen.append(subnormal_survives())
        return {}


def subnormal_survives() -> bool:
    return float(torch.tensor([1e-39], dtype=torch.float32).mul(1.0)) != 0.0


def test_a_fit_flushes_subnormals_and_leaves_them_alone_after(ring8):
    assert subnormal_survives()  # torch's default: IEEE subnormals
    hook = Subnormals()
    fit(gan(epochs=1), ring8, hooks=[hook])
    assert hook.seen == [False]  # flushed to zero inside the fit (FTZ/DAZ)
    assert subnormal_survives()  # and off again after it


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, 0.1),  # warm-up: (step + 1) / 10
        ("constant", 4, 0.5),
        ("constant", 9, 1.0),
        ("constant", 99, 1.0),
        ("cosine", 10, 1.0),  # decay starts after the warm-up
        ("cosine", 10 + 89 // 2, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 44 / 89))),
        ("cosine", 99, 0.1),  # the last of 100 steps: min_lr_ratio
        ("linear", 10 + 89 // 2, 0.1 + 0.9 * (1 - 44 / 89)),
        ("linear", 99, 0.1),
    ],
)
def test_learning_rate_schedules_hit_their_values(schedule, step, expected):
    cfg = TrainConfig(warmup_steps=10, schedule=schedule, min_lr_ratio=0.1)
    assert lr_factor(step, 100, cfg) == pytest.approx(expected)


@pytest.fixture(scope="module")
def ring8() -> FitData:
    src = load_builtin(load_config(RunConfig, data={"data.source": "ring8", "data.n": 1000}).data)
    x = torch.tensor((src.values - src.values.mean(0)) / src.values.std(0))
    return FitData(x[:800], x[800:], DataSpec((2,), "points", float(x.min()), float(x.max())))


def gan(**train) -> RunConfig:
    data = {
        "model.family": "gan",
        "model.arch.width": 16,
        "train.epochs": 2,
        "train.batch_size": 100,
    }
    return load_config(RunConfig, data={**data, **{f"train.{k}": v for k, v in train.items()}})


class Restored(Session):
    """This process, resuming from a saved state."""

    def __init__(self, saved):
        self.saved = saved

    def restored(self):
        return self.saved


def test_the_loop_sets_each_step_s_rate_and_keeps_the_ema(ring8):
    cfg = gan(lr=0.002, lr_discriminator=0.004, betas=[0.0, 0.9], warmup_steps=3,
              schedule="cosine", min_lr_ratio=0.25, ema_decay=0.99)  # fmt: skip
    state = fit(cfg, ring8)
    replica = state.replicas[0]
    assert replica.step == 16  # 2 epochs x 8 steps
    last = lr_factor(15, 16, cfg.train)
    assert last == pytest.approx(0.25)
    opts = replica.optimizers
    assert opts["generator"].param_groups[0]["lr"] == pytest.approx(0.002 * last)
    assert opts["discriminator"].param_groups[0]["lr"] == pytest.approx(0.004 * last)
    assert opts["generator"].param_groups[0]["betas"] == (0.0, 0.9)
    saved = checkpoint.to_dict(state)
    sampled = checkpoint.model_state(saved)  # sampling and evaluation use the EMA's weights
    name = "generator.0.weight"
    torch.testing.assert_close(sampled[name], replica.ema.state_dict()[name])
    assert not torch.equal(sampled[name], replica.family.state_dict()[name])
    fresh = build_model(cfg.model, dict(cfg.loss), ring8.spec)
    fresh.load_state_dict(sampled)  # strict: the sampling weights are exactly a model's
    assert saved["replicas"][0]["ema_updates"] == replica.ema.updates == 16
    longer = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 3})})
    resumed = fit(longer, ring8, Restored(saved))
    assert resumed.replicas[0].ema.updates == 24  # the warm-up's clock went on from 16


def test_default_betas_by_family(ring8):
    assert fit(gan(), ring8).replicas[0].optimizers["generator"].defaults["betas"] == (0.5, 0.9)
    vae = load_config(RunConfig, data={"train.epochs": 1, "model.arch.width": 16})
    assert fit(vae, ring8).replicas[0].optimizers["model"].defaults["betas"] == (0.9, 0.999)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"train.lr_discriminator": 0.01},
            "train.lr_discriminator: only a GAN has a discriminator",
        ),
        ({"train.betas": [0.5, 1.0]}, "train.betas: each must be in [0, 1), got [0.5, 1.0]"),
        ({"train.ema_decay": 1.0}, "train.ema_decay: Input should be less than 1"),
        (
            {"train.schedule": "step"},
            "train.schedule: 'step' is not one of 'constant', 'cosine', 'linear'",
        ),
    ],
)
def test_bad_levers_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(RunConfig, data=overrides)
    assert message in str(info.value)
