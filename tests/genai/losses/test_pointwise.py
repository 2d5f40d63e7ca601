"""Regression and probabilistic losses: closed forms, PyTorch references, float64 gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genai.losses import (
    bce_with_logits,
    cross_entropy,
    huber_loss,
    kl_divergence_categorical,
    kl_divergence_normal,
    mae_loss,
    mse_loss,
)
from genai.losses.regression import mean_of

PRED = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
TARGET = torch.tensor([[0.0, 0.0], [0.0, 1.0]])


def test_regression_closed_forms():
    # errors: (1, 2), (0, -2)
    assert mse_loss(PRED, TARGET).item() == pytest.approx(((1 + 4) + (0 + 4)) / 2)
    assert mae_loss(PRED, TARGET).item() == pytest.approx(((1 + 2) + (0 + 2)) / 2)
    # delta 1: 0.5 for |e|=1; 1*(2-0.5)=1.5 for |e|=2; 0 for 0
    assert huber_loss(PRED, TARGET, delta=1.0).item() == pytest.approx(
        ((0.5 + 1.5) + (0 + 1.5)) / 2
    )


def test_regression_match_pytorch_references():
    torch.manual_seed(0)
    a, b = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    torch.testing.assert_close(mean_of(mse_loss, a, b), F.mse_loss(a, b))
    torch.testing.assert_close(mean_of(mae_loss, a, b), F.l1_loss(a, b))
    for delta in (0.3, 1.0, 2.5):
        torch.testing.assert_close(
            mean_of(huber_loss, a, b, delta=delta), F.huber_loss(a, b, delta=delta)
        )


def test_bce_closed_form_and_reference():
    logits = torch.tensor([[0.0, 0.0]])
    assert bce_with_logits(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        2 * math.log(2)
    )
    torch.manual_seed(1)
    lg, t = torch.randn(6, 5), torch.rand(6, 5)
    torch.testing.assert_close(
        bce_with_logits(lg, t) / 5, F.binary_cross_entropy_with_logits(lg, t)
    )


def test_cross_entropy_closed_form_and_reference():
    uniform = torch.zeros(4, 10)
    assert cross_entropy(uniform, torch.arange(4)).item() == pytest.approx(math.log(10))
    torch.manual_seed(2)
    lg, t = torch.randn(3, 7, 11), torch.randint(0, 11, (3, 7))
    for smoothing in (0.0, 0.1):
        ref = F.cross_entropy(lg.reshape(-1, 11), t.reshape(-1), label_smoothing=smoothing)
        torch.testing.assert_close(cross_entropy(lg, t, label_smoothing=smoothing), ref)


def test_kl_normal_closed_form():
    assert kl_divergence_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    # mu=1, var=e: 0.5 (1 + e - 1 - 1) per dim
    mu, logvar = torch.ones(2, 3), torch.ones(2, 3)
    assert kl_divergence_normal(mu, logvar).item() == pytest.approx(3 * 0.5 * (math.e - 1))
    torch.manual_seed(3)
    mu, logvar = torch.randn(8, 5), torch.randn(8, 5)
    p = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    q = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    ref = torch.distributions.kl_divergence(p, q).sum(-1).mean()
    torch.testing.assert_close(kl_divergence_normal(mu, logvar), ref)


def test_kl_categorical_closed_form_and_reference():
    p = torch.log(torch.tensor([[0.5, 0.5]]))
    q = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence_categorical(p, q).item() == pytest.approx(expected)
    torch.manual_seed(4)
    a, b = torch.randn(6, 9), torch.randn(6, 9)
    ref = F.kl_div(
        F.log_softmax(b, -1), F.log_softmax(a, -1), log_target=True, reduction="batchmean"
    )
    torch.testing.assert_close(kl_divergence_categorical(a, b), ref)
    assert kl_divergence_categorical(a, a).item() == pytest.approx(0.0, abs=1e-6)


GRADCHECKS = {
    "mse": lambda a, b: mse_loss(a, b),
    "mae": lambda a, b: mae_loss(a, b + 0.5),  # away from the kink at 0
    "huber": lambda a, b: huber_loss(a, b, delta=0.7),
    "bce": lambda a, b: bce_with_logits(a, torch.sigmoid(b)),
    "cross_entropy": lambda a, b: cross_entropy(a, b.argmax(-1).detach(), label_smoothing=0.1),
    "kl_normal": lambda a, b: kl_divergence_normal(a, b),
    "kl_categorical": lambda a, b: kl_divergence_categorical(a, b),
}


@pytest.mark.parametrize("name", list(GRADCHECKS))
def test_gradcheck_float64(name):
    torch.manual_seed(5)
    a = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=name not in ("cross_entropy",))
    assert torch.autograd.gradcheck(GRADCHECKS[name], (a, b))
