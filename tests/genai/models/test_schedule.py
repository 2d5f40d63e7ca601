"""Noise schedules and sampler steps against their closed forms."""

from __future__ import annotations

import pytest
import torch

from genai.models.schedule import NoiseSchedule, cosine_beta_schedule, linear_beta_schedule


def test_linear_schedule_matches_ho_et_al_at_1000_steps():
    betas = linear_beta_schedule(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_cosine_schedule_alpha_bar_falls_from_one_to_near_zero():
    s = NoiseSchedule(cosine_beta_schedule(100))
    ab = s.alpha_bar
    assert ab[0] > 0.99 and ab[-1] < 1e-3 and torch.all(ab[1:] < ab[:-1])


@pytest.mark.parametrize("make", [linear_beta_schedule, cosine_beta_schedule])
def test_add_noise_and_predict_x0_are_inverse(make):
    s = NoiseSchedule(make(50))
    x0, eps = torch.randn(6, 3), torch.randn(6, 3)
    t = torch.tensor([0, 5, 10, 20, 40, 49])
    torch.testing.assert_close(
        s.predict_x0(s.add_noise(x0, eps, t), eps, t), x0, atol=1e-3, rtol=1e-3
    )


def test_ddpm_step_at_t0_returns_x0_and_ddim_to_minus_one_returns_x0():
    s = NoiseSchedule(linear_beta_schedule(20))
    x0, eps = torch.randn(4, 2), torch.randn(4, 2)
    x1 = s.add_noise(x0, eps, torch.full((4,), 0))
    torch.testing.assert_close(s.ddpm_step(x1, x0, 0, torch.randn(4, 2)), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s.ddim_step(x0, eps, 0, -1), x0)


def test_ddim_step_lands_on_the_forward_marginal():
    # With the true x0 and eps, a DDIM step to t' gives exactly q(x_t' | x0) with that eps.
    s = NoiseSchedule(cosine_beta_schedule(30))
    x0, eps = torch.randn(5, 2), torch.randn(5, 2)
    expected = s.add_noise(x0, eps, torch.full((5,), 12))
    torch.testing.assert_close(s.ddim_step(x0, eps, 20, 12), expected)


@pytest.mark.parametrize("make", [linear_beta_schedule, cosine_beta_schedule])
def test_ddim_at_eta_one_over_every_step_is_the_ddpm_posterior(make):
    # eta = 1 from t to t - 1: the same mean and noise scale as DDPM's posterior q(x_{t-1}|x_t, x0)
    s = NoiseSchedule(make(40))
    x0, eps, noise = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    for t in (1, 7, 20, 39):
        x_t = s.add_noise(x0, eps, torch.full((5,), t))
        torch.testing.assert_close(
            s.ddim_step(x0, eps, t, t - 1, 1.0, noise),
            s.ddpm_step(x_t, x0, t, noise),
            atol=1e-5,
            rtol=1e-4,
        )


def test_ddim_noise_over_a_skip_is_eta_times_the_skipped_posteriors():
    # from 40 to 10: sigma = eta sqrt((1 - ab_10) / (1 - ab_40)) sqrt(1 - ab_40 / ab_10) (eq. 16)
    s = NoiseSchedule(cosine_beta_schedule(50))
    x0, eps, noise = torch.randn(6, 2), torch.randn(6, 2), torch.randn(6, 2)
    ab, ab_prev = s.alpha_bar[40], s.alpha_bar[10]
    for eta in (0.5, 1.0):
        sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
        noisy = s.ddim_step(x0, eps, 40, 10, eta, noise)
        torch.testing.assert_close(noisy - s.ddim_step(x0, eps, 40, 10, eta, 0 * noise),
                                   sigma * noise)  # fmt: skip
        # the rest: x0's share as at eta 0, eps's shrunk so the variance stays 1 - ab_10
        direction = (1 - ab_prev - sigma**2).sqrt() * eps
        torch.testing.assert_close(noisy, ab_prev.sqrt() * x0 + direction + sigma * noise)
    with pytest.raises(ValueError, match="needs noise"):
        s.ddim_step(x0, eps, 40, 10, 0.5)
