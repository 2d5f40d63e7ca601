"""2-D mixture metrics as VEEGAN and PacGAN define them, and MMD with an RBF kernel.

Srivastava et al. 2017 (VEEGAN, arXiv:1705.07761) and Lin et al. 2018 (PacGAN,
arXiv:1712.04086), 2,500 samples: a sample is *high quality* when it lies within three standard
deviations (Euclidean distance < 3 std) of its nearest mode; a mode is *captured* when at least
one high-quality sample lies nearest to it; *reverse KL* is KL(p_gen || p_true) between the
histogram of high-quality samples over modes and the true (uniform) mode weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def mode_metrics(
    samples: np.ndarray, modes: np.ndarray, std: float, *, min_count: int = 1
) -> dict[str, float]:
    """modes captured, share of high-quality samples, reverse KL (nats) over the mode histogram."""
    d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)  # (N, K)
    nearest, dist = d.argmin(1), d.min(1)
    good = dist < 3 * std
    counts = np.bincount(nearest[good], minlength=len(modes)).astype(np.float64)
    captured = int((counts >= min_count).sum())
    if counts.sum() == 0:
        reverse_kl = math.inf
    else:
        p = counts / counts.sum()
        q = np.full(len(modes), 1.0 / len(modes))
        nz = p > 0
        reverse_kl = float((p[nz] * np.log(p[nz] / q[nz])).sum())
    return {"modes": float(captured), "high_quality": float(good.mean()), "reverse_kl": reverse_kl}


def rbf_mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased MMD^2 with k(a, b) = exp(-||a - b||^2 / (2 h^2)) (Gretton et al. 2012, eq. 3)."""
    x, y = x.double().flatten(1), y.double().flatten(1)

    def k(a, b):
        return torch.exp(-(torch.cdist(a, b) ** 2) / (2 * bandwidth**2))

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def median_bandwidth(x: torch.Tensor, y: torch.Tensor, max_points: int = 2000) -> float:
    """The median pairwise distance of the pooled sample (the usual heuristic)."""
    pooled = torch.cat([x.flatten(1), y.flatten(1)]).double()[:max_points]
    d = torch.cdist(pooled, pooled)
    return float(d[d > 0].median())
