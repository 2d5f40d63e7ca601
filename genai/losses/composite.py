"""The weighted composite: total = sum_k w_k L_k, with every named term kept for logging."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from genai.losses.registry import LossSpec


@dataclass(frozen=True)
class LossTerms:
    """The total to differentiate and each unweighted term, by slot name."""

    total: Tensor
    terms: dict[str, Tensor]

    def logged(self, prefix: str = "") -> dict[str, float]:
        """Plain floats for metrics: ``{prefix}total`` and ``{prefix}{slot}``."""
        out = {f"{prefix}total": float(self.total.detach())}
        out |= {f"{prefix}{k}": float(v.detach()) for k, v in self.terms.items()}
        return out


def weighted_total(
    terms: Mapping[str, Tensor], weights: Mapping[str, LossSpec | float]
) -> LossTerms:
    """Combine named loss values with their weights (a spec's ``weight``, or a number)."""
    if not terms:
        raise ValueError("a composite loss needs at least one term")
    total = None
    for name, value in terms.items():
        spec = weights[name]
        w = spec.weight if isinstance(spec, LossSpec) else float(spec)
        total = w * value if total is None else total + w * value
    return LossTerms(total, dict(terms))
