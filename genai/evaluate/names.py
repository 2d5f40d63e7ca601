"""The names of the Judge's metrics, which way each is better, and which data reports which:
read by sweeps and tables without loading torch."""

from __future__ import annotations

FEATURE_SCORE, OWN_SPACE_SCORE = "fid", "mmd2"
# every metric a Judge may report, in the order tables show them
METRICS = (
    "fid", "kid", "modes", "high_quality", "reverse_kl", "mmd2",
    "precision", "recall", "density", "coverage", "inception_score",
)  # fmt: skip
HIGHER_IS_BETTER = frozenset(
    {"modes", "high_quality", "precision", "recall", "density", "coverage", "inception_score"}
)
OWN_SPACE = ("mmd2", "precision", "recall", "density", "coverage")
FEATURE_SPACE = ("fid", "kid", "precision", "recall", "density", "coverage", "inception_score")
MIXTURE = ("modes", "high_quality", "reverse_kl")


def mode_of(metric: str) -> str:
    """Tune's mode for ranking by ``metric``: "max" where higher is better, else "min"."""
    return "max" if metric in HIGHER_IS_BETTER else "min"


def metrics_for(*, images: bool, labelled: bool, mixture: bool) -> tuple[str, ...]:
    """The metrics a Judge reports for data of this kind (in its order): images in the domain
    feature network's space (the inception score only where it has classes)."""
    if images:
        return FEATURE_SPACE if labelled else FEATURE_SPACE[:-1]
    return (MIXTURE if mixture else ()) + OWN_SPACE


KID_NOTE = (
    "KID is an unbiased estimate, a difference of kernel means: for two real sets it sits near 0"
    " and can fall below it"
)
