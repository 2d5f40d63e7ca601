"""What a comparison trains: its cells (a family and the loss in its main slot), each at every
budget and seed, as resolved run configs keyed by their content.

A cell starts from its family's recipe for the data (``RECIPES``: the shipped config each dataset
and family is measured with, docs/BENCHMARKS.md; a user's data gets the recipe of its kind),
with the compare's ``overrides``, the cell's loss, the seed (``data.seed`` draws the split,
``train.seed`` the model) and the budget in training steps (whole epochs: the fewest that reach
it). It trains on one worker at the recipe's global batch (``num_workers`` x ``batch_size``), as
the benchmarks always fitted recipes. A cell's key hashes the run's config, the dataset's
version, how it is judged and the code of the training core and the Judge
(:func:`core_version`), so a model is trained once for every comparison that holds it and again
when that code changes. No torch, no Ray: the driver plans before anything starts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai import layout
from genai.config import (
    MAIN_SLOT,
    CompareConfig,
    DataConfig,
    RunConfig,
    identity,
    main_losses,
)
from genai.configfile import apply_overrides, load_config, read_yaml, shipped
from genai.data.prepare import locate
from genai.evaluate.names import FEATURE_SCORE, OWN_SPACE_SCORE, metrics_for
from genai.model_config import FAMILIES
from genai.storage import ArtifactStore
from genai.strict import ConfigError

# (dataset, family) -> the shipped config that is its recipe (docs/BENCHMARKS.md says how each
# was found)
IMAGES_32 = ("shapes", "photos")
RECIPES: dict[tuple[str, str], str] = {
    ("ring8", "gan"): "configs/gan.yaml",
    ("ring8", "vae"): "configs/recipes/ring8-vae.yaml",
    ("ring8", "diffusion"): "configs/diffusion.yaml",
    ("ring8", "autoregressive"): "configs/recipes/ring8-autoregressive.yaml",
    ("grid25", "gan"): "configs/recipes/grid25-gan.yaml",
    ("grid25", "vae"): "configs/recipes/grid25-vae.yaml",
    ("grid25", "diffusion"): "configs/recipes/grid25-diffusion.yaml",
    ("grid25", "autoregressive"): "configs/recipes/grid25-autoregressive.yaml",
    ("digits", "gan"): "configs/recipes/digits-gan.yaml",
    ("digits", "vae"): "configs/vae.yaml",
    ("digits", "diffusion"): "configs/recipes/digits-diffusion.yaml",
    ("digits", "autoregressive"): "configs/autoregressive.yaml",
    **{(d, f): f"configs/recipes/{d}-{f}.yaml" for d in IMAGES_32 for f in FAMILIES},
}
# the critic's constraint under a Wasserstein loss, where the recipe has none (WGAN-GP)
WGAN_PENALTY = {"name": "gradient_penalty", "weight": 1.0}
# what the training core and the Judge are: a change here retrains a comparison's cells
CORE = ("train", "models", "losses", "evaluate")


@functools.cache
def core_version() -> str:
    """A hash of the source of the training core, the models, the losses and the Judge."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in CORE:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def recipe_dataset(data: DataConfig, shape: list[int] | None = None) -> str:
    """Whose recipes a dataset gets: its own (a built-in dataset), else its kind's: images of
    32 px and more the photos', smaller images the digits', vectors ring8's."""
    if (data.source, "vae") in RECIPES:
        return data.source
    if data.image:
        return "photos" if shape is not None and min(shape[-2:]) >= 32 else "digits"
    return "ring8"


@dataclass(frozen=True)
class Cell:
    """One model of a comparison: a family and its main slot's loss at one budget and seed."""

    family: str
    loss: str
    seed: int
    budget: int | None  # the steps asked for (None: the recipe's own)
    steps: int  # the steps it trains: whole epochs
    config: RunConfig
    run_id: str
    key: str

    @property
    def name(self) -> str:
        return f"{self.family}/{self.loss}"

    @property
    def row(self) -> str:
        """The leaderboard row it belongs to (every seed of one cell at one budget)."""
        return f"{self.family}-{self.loss}-{self.steps}"


def selection(cfg: CompareConfig) -> list[tuple[str, str]]:
    """The (family, loss) cells ``cfg`` names: each selected family (default all) with each
    selected loss its main slot takes (default all)."""
    families = cfg.families or list(MAIN_SLOT)
    return [
        (f, loss)
        for f in families
        for loss in main_losses(f)
        if not cfg.losses or loss in cfg.losses
    ]


def recipe_tree(cfg: CompareConfig, family: str, dataset: str) -> dict[str, Any]:
    """The family's recipe with the compare's data and overrides."""
    tree = read_yaml(RECIPES[dataset, family])
    own = tree.get("data", {})
    # the compare's data fields that differ from the defaults (not those "set": a UI form or a
    # re-validated dump sets every field) win over a built-in dataset's recipe
    given = cfg.data.model_dump(mode="json", exclude_defaults=True)
    if cfg.data.source == own.get("source"):
        tree["data"] = {**own, **given}
    else:
        tree["data"] = {"source": cfg.data.source, **given}
    return apply_overrides(tree, cfg.overrides)


def cell_config(cfg: CompareConfig, family: str, loss: str, seed: int, dataset: str) -> RunConfig:
    """The cell's run config at ``seed`` before its budget is set (the recipe's epochs)."""
    tree = recipe_tree(cfg, family, dataset)
    recipe = RECIPES[dataset, family]
    try:
        train = load_config(RunConfig, tree).train
        if train.num_workers > 1 and any(o.startswith("train.num_workers") for o in cfg.overrides):
            raise ConfigError(
                "compare.overrides: train.num_workers: a comparison trains each model on one"
                " worker at the global batch (num_workers x batch_size); leave it out"
            )
        slot = MAIN_SLOT[family]
        own_batch = any(o.startswith("train.batch_size=") for o in cfg.overrides)
        fields: dict[str, Any] = {
            "data.seed": seed,
            "train.seed": seed,
            f"loss.{slot}": {"name": loss},
            "train.num_workers": 1,
            # the recipe's global batch on one worker, unless the user set the batch
            "train.batch_size": train.batch_size
            if own_batch
            else train.batch_size * train.num_workers,
            "train.run_id": None,
        }
        spec = tree.get("loss", {}).get(slot)  # the recipe's weight on the slot stays
        if isinstance(spec, dict) and "weight" in spec:
            fields[f"loss.{slot}"]["weight"] = spec["weight"]
        if loss == "wasserstein" and "gradient_penalty" not in tree.get("loss", {}):
            fields["loss.gradient_penalty"] = WGAN_PENALTY
        return load_config(RunConfig, tree, data=fields)
    except ConfigError as err:
        raise ConfigError(
            f"{family}/{loss} ({recipe} with the compare's settings): {err}"
        ) from None


def epochs_for(budget: int, steps_per_epoch: int) -> int:
    """The fewest whole epochs that reach ``budget`` steps."""
    return max(1, math.ceil(budget / steps_per_epoch))


def cell_key(cfg: RunConfig, dataset_version: str, judged: dict[str, Any], picture: int) -> str:
    """The content key of a model and its judgment (the run's id is made from it)."""
    payload = identity(cfg)
    payload["train"].pop("run_id", None)
    payload |= {
        "dataset_version": dataset_version,
        "evaluate": judged,
        "picture": picture,
        "core": core_version(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@functools.cache
def recipes_version() -> str:
    """A hash of every recipe's text: an edited recipe makes a new comparison."""
    digest = hashlib.sha256()
    for path in sorted(set(RECIPES.values())):
        digest.update(path.encode() + b"\0" + shipped(path).read_text().encode())
    return digest.hexdigest()[:12]


def comparison_id_for(cfg: CompareConfig) -> str:
    """``{name}-{hash}``: the hash of the compare's config, the recipes' text and the core's
    code."""
    payload = {
        "compare": cfg.model_dump(mode="json"),
        "core": core_version(),
        "recipes": recipes_version(),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{cfg.name}-{digest}"


def primary_metric(cfg: CompareConfig) -> str:
    """The metric the leaderboard ranks by; one this data does not report is a config error."""
    data = cfg.data
    reported = metrics_for(images=data.image, labelled=data.labelled, mixture=data.mixture)
    default = FEATURE_SCORE if data.image else "high_quality" if data.mixture else OWN_SPACE_SCORE
    metric = cfg.metric or default
    if metric not in reported:
        raise ConfigError(
            f"compare.metric: {metric!r} is not reported for data.source {data.source!r};"
            f" choose one of {', '.join(repr(m) for m in reported)}"
        )
    return metric


def seed_data(cfg: CompareConfig, seed: int) -> DataConfig:
    """The data the models of ``seed`` train on (every recipe of a dataset names the same)."""
    dataset = recipe_dataset(cfg.data, cfg.data.shape or [3, 32, 32])  # no recipe changes it
    tree = recipe_tree(cfg, selection(cfg)[0][0], dataset)
    return DataConfig.model_validate({**tree["data"], "seed": seed})


def finished_comparison(store: ArtifactStore, cfg: CompareConfig) -> dict[str, Any] | None:
    """The stored summary of ``cfg``'s comparison if its data is still what it was (a user's
    files changed make a new version): no torch, no Ray; a user's files are listed, a built-in
    source's rows made, to name their version."""
    key = layout.comparison_summary(comparison_id_for(cfg))
    if not store.exists(key):
        return None
    summary = store.read_json(key)
    for seed, made in summary["datasets"].items():
        if locate(seed_data(cfg, int(seed))).version != made["version"]:
            return None
    return summary | {"reused": True}


def check_selection(cfg: CompareConfig) -> None:
    """Before anything starts: a cell whose loss the user named must make a valid run config
    (e.g. ``bce`` needs images), and some cell must (an override no recipe takes). Cells the
    compare chose itself that the data does not allow are left out later, with the reason."""
    if cfg.data.image and cfg.data.shape is None and (cfg.data.source, "vae") not in RECIPES:
        candidates = ["photos", "digits"]  # a folder's image size is read when it is prepared
    else:
        candidates = [recipe_dataset(cfg.data, cfg.data.shape)]
    errors = []
    for family, loss in selection(cfg):
        failed = []
        for dataset in candidates:
            try:
                cell_config(cfg, family, loss, 0, dataset)
                break
            except ConfigError as err:
                failed.append(err)
        else:
            if loss in cfg.losses:
                raise failed[0]
            errors.append(str(failed[0]))
    if errors and len(errors) == len(selection(cfg)):
        raise ConfigError(
            f"compare: none of the {len(errors)} selected cells is valid; {errors[0]}"
        )
