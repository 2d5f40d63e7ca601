"""One home for judging samples of a dataset: the metrics ``evaluate`` reports and the score a
sweep ranks by come from :class:`Judge`, under the same names.

What is measured depends on what the data is:

- images (each image dataset has a domain feature network, :mod:`genai.data.features`):
  ``fid``, ``kid``, ``precision``, ``recall``, ``density``, ``coverage`` in the network's
  standardised feature space, and ``inception_score`` where it has classes; the score is ``fid``.
- 2-D mixtures with known modes (ring8, grid25): ``modes``, ``high_quality``, ``reverse_kl`` as
  VEEGAN/PacGAN define them, then the metrics of any other data;
- any other data (vectors, points): ``mmd2`` (RBF kernel, median bandwidth)
  and ``precision``, ``recall``, ``density``, ``coverage`` in the data's own space; the score is
  ``mmd2``.

Lower scores are better. The floor of a metric is its value for real rows (the train split)
against the same reference: the best a model can hope for at that sample size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from genai.data.dataset import SplitReader, denormalise, read_manifest
from genai.data.feature_spec import has_feature_net
from genai.data.prepare import ensure_feature_net
from genai.evaluate.images import image_metrics
from genai.evaluate.manifold import density_coverage, precision_recall
from genai.evaluate.names import FEATURE_SCORE, OWN_SPACE_SCORE
from genai.evaluate.points import median_bandwidth, mode_metrics, rbf_mmd2
from genai.storage import ArtifactStore


def score_name(manifest: dict[str, Any]) -> str:
    """The metric a sweep over this dataset ranks by."""
    return FEATURE_SCORE if has_feature_net(manifest) else OWN_SPACE_SCORE


MAX_REFERENCE = 2500  # rows of a split the k-NN and kernel metrics compare with (N^2 memory)
FLOOR_ROWS = 5000  # train rows kept for floors (a floor of n samples uses the first n)


def subset(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """At most ``n`` rows of ``x``, a seeded random subset when it has more."""
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


class Judge:
    """Sample metrics of one dataset against one of its splits (``reference``), at most
    ``max_reference`` of its rows (a seeded subset: k-NN and kernel metrics cost N^2), and
    floors from at most ``max_reference`` train rows (the first ones of a split that fits the
    reader's budget, a sample spread over the row groups of a larger one)."""

    def __init__(
        self,
        store: ArtifactStore,
        dataset_key: str,
        *,
        reference: str = "test",
        max_reference: int = MAX_REFERENCE,
        ray_address: str | None = None,
    ):
        self.manifest: dict[str, Any] = read_manifest(store, dataset_key)
        self.reference_split = reference
        ref = SplitReader(store, dataset_key, reference, manifest=self.manifest)
        if ref.whole:
            self.reference = subset(torch.from_numpy(ref.read_all()[0]), max_reference)
        else:
            self.reference = torch.from_numpy(ref.head(max_reference)[0])
        train = SplitReader(store, dataset_key, "train", manifest=self.manifest)
        self.train = torch.from_numpy(train.head(max(max_reference, FLOOR_ROWS))[0])
        trained = ensure_feature_net(store, dataset_key, ray_address=ray_address)  # images
        self.features = None if trained is None else trained.net
        self.score_name = score_name(self.manifest)
        self.bandwidth = (
            None
            if self.features is not None
            else median_bandwidth(self.reference, self.train[: max(len(self.reference), 500)])
        )

    @property
    def modes(self) -> np.ndarray | None:
        modes = self.manifest.get("modes")
        return None if modes is None else np.asarray(modes)

    @torch.no_grad()
    def metrics(self, fake: Tensor) -> dict[str, float]:
        """Every sample metric of ``fake`` (N, *shape) in normalised units; process-local."""
        fake = fake.detach().cpu().float()
        out: dict[str, float] = {}
        if self.modes is not None:
            pts = denormalise(fake.numpy(), self.manifest)
            out |= mode_metrics(pts, self.modes, self.manifest["mode_std"])
        if self.features is not None:
            return out | image_metrics(self.features, self.reference, fake)
        real_f, fake_f = self.reference.flatten(1).double(), fake.flatten(1).double()
        out["mmd2"] = rbf_mmd2(self.reference, fake, self.bandwidth)
        out |= precision_recall(real_f, fake_f)
        out |= density_coverage(real_f, fake_f)
        return out

    def floors(self, n: int) -> dict[str, float]:
        """The same metrics for ``n`` real train rows against the reference."""
        return self.metrics(self.train[: min(n, len(self.train))])

    def score(self, metrics: dict[str, float]) -> float:
        """The number a sweep ranks by unless ``sweep.metric`` says otherwise (lower is better)."""
        return metrics[self.score_name]
