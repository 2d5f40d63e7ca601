"""What a sweep is called and what it leaves in the store, read without Ray: its id (a hash of
the base config, the space file's content and the sweep settings), the metric it ranks by, its
result (``best.json``, written last) and its leaderboard."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai import layout
from genai.config import RunConfig, SweepConfig, identity
from genai.configfile import shipped
from genai.evaluate.names import FEATURE_SCORE, OWN_SPACE_SCORE, metrics_for, mode_of
from genai.storage import ArtifactStore
from genai.strict import ConfigError
from genai.tune.table import leaderboard as ranked


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    uri: str
    trials: int
    best: dict[str, Any]
    counts: dict[str, int]
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "uri": self.uri,
            "trials": self.trials,
            "best": self.best,
        }

    def record(self) -> dict[str, Any]:
        """What ``genai sweep`` and ``api.sweep`` return."""
        return self.summary() | {"counts": self.counts, "reused": self.reused}


def sweep_id_for(base: RunConfig, space_path: str, cfg: SweepConfig) -> str:
    payload = {
        "base": identity(base),
        "space": shipped(space_path).read_text(),
        # judge_every added later: at its default it leaves earlier sweeps' ids as they were
        "sweep": cfg.model_dump(
            mode="json",
            exclude={"space", "max_concurrent"}
            | ({"judge_every"} if cfg.judge_every == 1 else set()),
        ),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{Path(space_path).stem}-{digest}"


def leaderboard(store: ArtifactStore, sweep_id: str, top: int = 20) -> list[dict[str, Any]]:
    """A finished sweep's trials, best first."""
    rows = store.read_table(layout.sweep_trials(sweep_id)).to_pylist()
    return ranked(rows, store.read_json(layout.sweep_best(sweep_id)).get("mode", "min"), top)


def finished_sweep(store: ArtifactStore, sweep_id: str) -> SweepResult | None:
    """The result of a finished sweep (its best.json), or None."""
    if not store.exists(layout.sweep_best(sweep_id)):
        return None
    best = store.read_json(layout.sweep_best(sweep_id))
    uri = store.key_uri(layout.sweep(sweep_id))
    return SweepResult(sweep_id, uri, best["trials"], best, best["counts"], True)


def ranking(base: RunConfig, cfg: SweepConfig) -> tuple[str, str]:
    """The metric trials are ranked by and Tune's mode for it; a metric the Judge does not
    report for this data is a config error, raised before anything starts."""
    data = base.data
    reported = metrics_for(images=data.image, labelled=data.labelled, mixture=data.mixture)
    metric = cfg.metric or (FEATURE_SCORE if data.image else OWN_SPACE_SCORE)
    if metric not in reported:
        raise ConfigError(
            f"sweep.metric: {metric!r} is not reported for data.source {data.source!r};"
            f" choose one of {', '.join(repr(m) for m in reported)}"
        )
    return metric, mode_of(metric)
