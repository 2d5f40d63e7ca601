"""k-nearest-neighbour manifold metrics between a real and a generated set, in any feature space
(a feature network's for images, the data's own for everything else).

Improved precision/recall (Kynkaanniemi et al. 2019, arXiv:1904.06991, k = 3) and
density/coverage (Naeem et al. 2020, arXiv:2002.09797, k = 5).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _kth_radius(feats: Tensor, k: int) -> Tensor:
    d = torch.cdist(feats, feats)  # (N, N); the 0 to itself is the first neighbour
    return d.kthvalue(k + 1, dim=1).values


@torch.no_grad()
def precision_recall(real_f: Tensor, fake_f: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision (fakes in the real manifold) and recall (reals in the fake one)."""
    r_rad, f_rad = _kth_radius(real_f, k), _kth_radius(fake_f, k)
    d = torch.cdist(fake_f, real_f)  # (F, R)
    precision = (d <= r_rad[None, :]).any(1).float().mean()
    recall = (d.t() <= f_rad[None, :]).any(1).float().mean()
    return {"precision": float(precision), "recall": float(recall)}


@torch.no_grad()
def density_coverage(real_f: Tensor, fake_f: Tensor, k: int = 5) -> dict[str, float]:
    """density = 1/(kM) sum_j sum_i 1[y_j in B(x_i, r_k(x_i))]; coverage = share of reals whose
    ball holds a fake."""
    r_rad = _kth_radius(real_f, k)
    inside = torch.cdist(fake_f, real_f) <= r_rad[None, :]  # (F, R)
    density = inside.float().sum() / (k * len(fake_f))
    coverage = inside.any(0).float().mean()
    return {"density": float(density), "coverage": float(coverage)}
