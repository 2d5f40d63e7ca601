"""Image metrics in the domain feature network's space, with torchmetrics where it has them.

FID (Heusel et al. 2017) through torchmetrics with our network as its ``feature=`` module; KID
(Binkowski et al. 2018) with torchmetrics' kernel MMD on seeded subsets of the same features;
improved precision/recall (Kynkaanniemi et al. 2019, k = 3); density/coverage (Naeem et al. 2020,
k = 5); inception score from the classifier's labels (labelled data). The features are
standardised on the train split (:mod:`genai.data.features`), so FID reads on one scale for every
dataset; KID's unbiased estimate is a difference of kernel means and can fall below zero when
the two sets are alike (a floor of two real sets often does). Every metric is computed in the
calling process and never synchronised over a process group.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import poly_mmd

from genai.data.features import FeatureNet
from genai.evaluate.manifold import density_coverage, precision_recall


@torch.no_grad()
def fid(net: FeatureNet, real: Tensor, fake: Tensor) -> float:
    """FID between two image sets (N, *shape) in normalised units, computed in this process.

    ``sync_on_compute=False``: torchmetrics would otherwise gather its state over the default
    process group on ``compute()``, a collective that hangs when one rank of a DDP job scores.
    """
    metric = FrechetInceptionDistance(feature=net, normalize=True, sync_on_compute=False)
    metric.update(real.float(), real=True)
    metric.update(fake.float(), real=False)
    return float(metric.compute())


@torch.no_grad()
def kid(real_f: Tensor, fake_f: Tensor, *, subsets: int = 10, seed: int = 0) -> float:
    """KID: the mean over ``subsets`` seeded subsets of the unbiased polynomial-kernel MMD^2
    (torchmetrics' ``poly_mmd``) between feature sets, as torchmetrics' KID computes it."""
    size = min(len(real_f), len(fake_f), 1000)
    gen = torch.Generator().manual_seed(seed)
    scores = [
        poly_mmd(
            real_f[torch.randperm(len(real_f), generator=gen)[:size]],
            fake_f[torch.randperm(len(fake_f), generator=gen)[:size]],
        )
        for _ in range(subsets)
    ]
    return float(torch.stack(scores).mean())


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
    out = {"fid": fid(net, real, fake), "kid": kid(real_f, fake_f)}
    out |= precision_recall(real_f, fake_f)
    out |= density_coverage(real_f, fake_f)
    if net.head is not None:  # a labelled dataset's network has classes
        out["inception_score"] = inception_score(net, fake)
    return out
