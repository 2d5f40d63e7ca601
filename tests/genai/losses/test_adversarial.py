"""Adversarial halves: signs, optima, WGAN-GP's and R1's penalties; gradcheck in float64."""

from __future__ import annotations

import math

import pytest
import torch

from genai.losses import adversarial_halves, gradient_penalty, r1_penalty
from genai.losses.adversarial import (
    hinge_d_loss,
    hinge_g_loss,
    least_squares_d_loss,
    minimax_d_loss,
    minimax_g_loss,
    non_saturating_g_loss,
    wasserstein_d_loss,
    wasserstein_g_loss,
)

GAMES = ["minimax", "non_saturating", "hinge", "least_squares", "wasserstein"]


def test_minimax_at_d_one_half_is_two_log_two():
    zero_logits = torch.zeros(16)  # D = sigmoid(0) = 1/2 everywhere
    assert minimax_d_loss(zero_logits, zero_logits).item() == pytest.approx(2 * math.log(2))
    assert minimax_g_loss(zero_logits).item() == pytest.approx(-math.log(2))
    assert non_saturating_g_loss(zero_logits).item() == pytest.approx(math.log(2))


def test_minimax_d_optimum_is_the_density_ratio():
    # For p_data(x) = a, p_g(x) = b the optimal D is a / (a + b); the loss per point is
    # -a log D - b log(1 - D): check the optimum numerically.
    a, b = 0.7, 0.3
    d = torch.linspace(0.01, 0.99, 981)
    per_point = -a * torch.log(d) - b * torch.log(1 - d)
    assert d[per_point.argmin()].item() == pytest.approx(a / (a + b), abs=1e-3)


@pytest.mark.parametrize("game", GAMES)
def test_discriminator_prefers_telling_apart(game):
    d_loss, g_loss = adversarial_halves(game)
    good = d_loss(torch.full((8,), 3.0), torch.full((8,), -3.0))  # real high, fake low
    bad = d_loss(torch.full((8,), -3.0), torch.full((8,), 3.0))
    assert good < bad
    # the generator wants its samples scored as real
    assert g_loss(torch.full((8,), 3.0)) < g_loss(torch.full((8,), -3.0))


def test_hinge_least_squares_and_wasserstein_closed_forms():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert hinge_g_loss(fake).item() == pytest.approx(1.0)
    assert least_squares_d_loss(torch.ones(4), torch.zeros(4)).item() == 0.0  # its optimum
    assert wasserstein_d_loss(real, fake).item() == pytest.approx(-1.0 - 1.25)
    assert wasserstein_g_loss(fake).item() == pytest.approx(1.0)


def test_gradient_penalty_zero_for_unit_norm_critic():
    w = torch.tensor([0.6, 0.8])  # ||w|| = 1, so ||grad (w . x)|| = 1 everywhere
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = lambda x: x @ (3 * w)  # noqa: E731  gradient norm 3: penalty (3 - 1)^2 = 4
    assert gradient_penalty(steep, real, fake).item() == pytest.approx(4.0)


def test_r1_is_the_mean_squared_gradient_norm_on_real_rows():
    w = torch.tensor([0.6, 0.8])
    real = torch.randn(32, 2)
    assert r1_penalty(lambda x: x @ (3 * w), real).item() == pytest.approx(9.0)  # ||3w||^2
    # C(x) = ||x||^2 / 2 has gradient x: the penalty is the rows' mean squared norm, and a critic
    # flat at the data (its optimum once the generator matches it) pays nothing
    bowl = lambda x: 0.5 * (x**2).sum(-1)  # noqa: E731
    assert r1_penalty(bowl, real).item() == pytest.approx((real**2).sum(1).mean().item())
    assert r1_penalty(bowl, torch.zeros(4, 2)).item() == 0.0
    assert not real.requires_grad  # the rows are not marked for the caller


def test_r1_flows_into_the_critic_and_gradchecks():
    critic = torch.nn.Linear(3, 1)
    r1_penalty(lambda x: critic(x).squeeze(-1), torch.randn(8, 3)).backward()
    assert critic.weight.grad is not None
    assert torch.allclose(critic.weight.grad, 2 * critic.weight.detach())  # d||w||^2/dw = 2w
    torch.manual_seed(1)
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    real = torch.randn(4, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda w: r1_penalty(lambda x: torch.tanh(x @ w).sum(-1), real), (w,)
    )


def test_gradient_penalty_flows_into_the_critic():
    critic = torch.nn.Linear(3, 1)
    penalty = gradient_penalty(
        lambda x: critic(x).squeeze(-1), torch.randn(8, 3), torch.randn(8, 3)
    )
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("game", GAMES)
def test_gradcheck_float64(game):
    d_loss, g_loss = adversarial_halves(game)
    torch.manual_seed(0)
    real = torch.randn(6, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(6, dtype=torch.float64, requires_grad=True) + 0.1
    assert torch.autograd.gradcheck(d_loss, (real, fake))
    assert torch.autograd.gradcheck(g_loss, (fake,))


def test_gradient_penalty_gradcheck_float64():
    torch.manual_seed(1)
    w = torch.randn(3, 3, dtype=torch.float64)
    critic = lambda x: torch.tanh(x @ w).sum(-1)  # noqa: E731
    real = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(0)

    def penalty(r, f):
        gen.manual_seed(0)  # same interpolation points on every call
        return gradient_penalty(critic, r, f, generator=gen)

    assert torch.autograd.gradcheck(penalty, (real, fake))


def test_unknown_game_names_the_choices():
    with pytest.raises(ValueError, match="'minimax', 'non_saturating', 'hinge'"):
        adversarial_halves("minmax")
