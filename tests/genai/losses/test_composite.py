"""Perceptual loss and the weighted composite; every registered loss is reachable by name."""

from __future__ import annotations

import typing

import pytest
import torch

from genai.config import RunConfig
from genai.configfile import load_config
from genai.losses import LossConfig, perceptual_loss, pointwise_loss, weighted_total
from genai.losses.registry import KL, MSE, Huber
from genai.losses.slots import LossSlots, losses_of
from genai.strict import ConfigError


def registry_names() -> list[str]:
    union = typing.get_args(LossConfig)[0]
    return [typing.get_args(m.model_fields["name"].annotation)[0] for m in typing.get_args(union)]


def test_registry_lists_every_loss_of_the_seed_material():
    assert set(registry_names()) >= {
        "mse",
        "mae",
        "huber",
        "bce",
        "cross_entropy",
        "kl",
        "minimax",
        "non_saturating",
        "hinge",
        "least_squares",
        "wasserstein",
        "gradient_penalty",
        "perceptual",
    }


def test_misspelt_loss_lists_the_slots_names():
    with pytest.raises(ConfigError) as info:
        load_config(RunConfig, data={"loss.reconstruction.name": "hubber"})
    assert "'hubber' is not one of 'mse', 'mae', 'huber', 'bce'" in str(info.value)


def test_every_registered_loss_fills_some_slot():
    in_slots = {
        cls.model_fields["name"].default
        for slot in LossSlots.model_fields
        for cls in losses_of(slot)
    }
    assert set(registry_names()) == in_slots


def test_weighted_total_keeps_every_term():
    terms = {"reconstruction": torch.tensor(2.0), "kl": torch.tensor(3.0)}
    out = weighted_total(terms, {"reconstruction": MSE(weight=1.0), "kl": KL(weight=0.5)})
    assert out.total.item() == pytest.approx(2.0 + 1.5)
    assert out.logged("train/") == {
        "train/total": 3.5,
        "train/reconstruction": 2.0,
        "train/kl": 3.0,
    }
    with pytest.raises(ValueError):
        weighted_total({}, {})


def test_perceptual_loss_distance_in_feature_space():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    for p in net.parameters():
        p.requires_grad_(False)
    features = lambda x: [net[:2](x), net(x)]  # noqa: E731
    x = torch.randn(5, 4)
    assert perceptual_loss(features, x, x).item() == 0.0
    y = torch.randn(5, 4, requires_grad=True)
    loss = perceptual_loss(features, y, x, layer_weights=[1.0, 2.0])
    a, b = features(y), features(x)
    expected = ((a[0] - b[0]) ** 2).mean(1).mean() + 2 * ((a[1] - b[1]) ** 2).mean(1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="3 weights for 2 feature layers"):
        perceptual_loss(features, y, x, layer_weights=[1, 1, 1])


def test_pointwise_resolution_keeps_parameters():
    a, b = torch.zeros(2, 3), torch.full((2, 3), 3.0)
    assert pointwise_loss(Huber(delta=2.0))(a, b).item() == pytest.approx(3 * (2 * (3 - 1)))
