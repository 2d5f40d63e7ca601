"""Image metrics in the domain feature network's space, with torchmetrics where it has them.

FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) through torchmetrics with our network as
its ``feature=`` module; improved precision/recall (Kynkaanniemi et al. 2019, k = 3);
density/coverage (Naeem et al. 2020, k = 5); inception score from the classifier's labels.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genai.evaluate.features import FeatureNet


@torch.no_grad()
def fid_kid(net: FeatureNet, real: Tensor, fake: Tensor) -> dict[str, float]:
    """FID and KID (mean) between two image sets (N, *shape) in normalised units."""
    fid = FrechetInceptionDistance(feature=net, normalize=True)
    subset = min(len(real), len(fake), 1000)
    kid = KernelInceptionDistance(feature=net, normalize=True, subsets=10, subset_size=subset)
    for metric in (fid, kid):
        metric.update(real.float(), real=True)
        metric.update(fake.float(), real=False)
    kid_mean, _ = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean)}


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


@torch.no_grad()
def inception_score(net: FeatureNet, images: Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with the domain classifier (Salimans et al. 2016)."""
    p = torch.softmax(net.logits(images.float()), dim=-1).double()  # (N, K)
    marginal = p.mean(0, keepdim=True)
    kl = (p * (torch.log(p + 1e-12) - torch.log(marginal + 1e-12))).sum(1)
    return float(torch.exp(kl.mean()))


@torch.no_grad()
def image_metrics(net: FeatureNet, real: Tensor, fake: Tensor) -> dict[str, float]:
    """Every image metric between a reference set and a generated (or held-out) set."""
    real_f, fake_f = net(real.float()).double(), net(fake.float()).double()
    out = fid_kid(net, real, fake)
    out |= precision_recall(real_f, fake_f)
    out |= density_coverage(real_f, fake_f)
    out["inception_score"] = inception_score(net, fake)
    return out
