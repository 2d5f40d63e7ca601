"""Typed configs for every stage: data, model, loss, train, sweep, evaluate, generate, pipeline.

YAML in, validated once at the edge, typed objects passed down. Errors name the field's path and
the allowed values (see :mod:`genai.strict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from genai.losses.registry import (
    BCE,
    KL,
    MAE,
    MSE,
    CrossEntropy,
    FeatureMatching,
    GradientPenalty,
    Hinge,
    Huber,
    LeastSquares,
    LossSpec,
    Minimax,
    NonSaturating,
    Perceptual,
    Wasserstein,
)
from genai.strict import ConfigError, StrictModel, union_members, validate

M = TypeVar("M", bound=StrictModel)

SourceName = Literal["digits", "ring8", "grid25", "moons", "swissroll", "parquet"]
GENERATED_SOURCES = ("ring8", "grid25", "moons", "swissroll")
Family = Literal["vae", "gan", "diffusion", "autoregressive"]


# --------------------------------------------------------------------------------------- data
class SplitConfig(StrictModel):
    """Shares of rows in each split; stratified by label where the data has labels."""

    train: float = Field(0.8, gt=0, lt=1)
    val: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must be 1, got {self.train} + {self.val} + {self.test}"
                f" = {total:g}"
            )
        return self


class DataConfig(StrictModel):
    """Where data comes from and how it is prepared."""

    source: SourceName = "digits"
    n: int | None = Field(None, gt=0, description="rows to generate (generated sources only)")
    seed: int = Field(0, ge=0, description="seed of generation and of the split")
    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="dataset name; the source's"
    )
    uri: str | None = Field(None, description="Parquet file or folder (source 'parquet' only)")
    columns: tuple[str, ...] | None = Field(
        None,
        description="value columns of a user Parquet: one list column, or several scalar ones",
    )
    label_column: str | None = None
    shape: tuple[int, ...] | None = Field(
        None, description="shape of one sample, e.g. [8, 8]; default the flat feature count"
    )
    normalise: Literal["auto", "standard", "minmax", "none"] = Field(
        "auto", description="auto: minmax to [0, 1] for images, per-feature standard otherwise"
    )
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _source_fields(self) -> DataConfig:
        if self.source == "parquet":
            if not self.uri:
                raise ValueError("uri: required when source is 'parquet'")
            if not self.columns:
                raise ValueError("columns: required when source is 'parquet' (the value columns)")
        else:
            for field in ("uri", "columns", "label_column", "shape"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field}: only allowed when source is 'parquet'")
        if self.n is not None and self.source not in GENERATED_SOURCES:
            raise ValueError(
                f"n: only generated sources take n ({', '.join(GENERATED_SOURCES)}),"
                f" not {self.source!r}"
            )
        if self.shape is not None and any(d <= 0 for d in self.shape):
            raise ValueError(f"shape: every dimension must be > 0, got {list(self.shape)}")
        return self

    @property
    def dataset_name(self) -> str:
        return self.name or self.source


# -------------------------------------------------------------------------------------- model
class ArchConfig(StrictModel):
    """Network bodies; every field is sweepable."""

    body: Literal["mlp", "conv"] = "mlp"
    width: int = Field(128, gt=0, description="hidden units (mlp) or base channels (conv)")
    depth: int = Field(2, gt=0, description="hidden layers (mlp) or conv stages")
    latent_dim: int = Field(8, gt=0, description="latent size of VAE and GAN")
    layers: int = Field(2, gt=0, description="transformer layers (autoregressive)")
    heads: int = Field(4, gt=0, description="attention heads (autoregressive)")
    d_model: int = Field(64, gt=0, description="transformer width (autoregressive)")

    @model_validator(mode="after")
    def _heads_divide(self) -> ArchConfig:
        if self.d_model % self.heads:
            raise ValueError(
                f"d_model: {self.d_model} is not divisible by heads={self.heads};"
                " pick d_model as a multiple of heads"
            )
        return self


class DiffusionOptions(StrictModel):
    timesteps: int = Field(100, gt=1)
    schedule: Literal["linear", "cosine"] = "cosine"
    sampler: Literal["ddpm", "ddim"] = "ddpm"
    sample_steps: int = Field(50, gt=0, description="DDIM steps (DDPM uses every timestep)")


class GanOptions(StrictModel):
    n_critic: int = Field(1, gt=0, description="discriminator steps per generator step")


class AutoregressiveOptions(StrictModel):
    bins: int = Field(64, gt=1, description="quantisation levels per value")
    temperature: float = Field(1.0, gt=0)


class ModelConfig(StrictModel):
    family: Family = "vae"
    arch: ArchConfig = ArchConfig()
    diffusion: DiffusionOptions = DiffusionOptions()
    gan: GanOptions = GanOptions()
    autoregressive: AutoregressiveOptions = AutoregressiveOptions()


# A family's loss slots: slot -> (allowed loss names, required). Required slots a config leaves
# out get the family's default loss (default_losses).
FAMILY_SLOTS: Mapping[str, Mapping[str, tuple[tuple[str, ...], bool]]] = MappingProxyType(
    {
        "vae": {
            "reconstruction": (("mse", "mae", "huber", "bce"), True),
            "kl": (("kl",), True),
            "perceptual": (("perceptual",), False),
        },
        "gan": {
            "adversarial": (
                ("minimax", "non_saturating", "hinge", "least_squares", "wasserstein"),
                True,
            ),
            # any discriminator; with wasserstein it is WGAN-GP (Fedus et al. 2018 use it with
            # non_saturating too, arXiv:1710.08446)
            "gradient_penalty": (("gradient_penalty",), False),
            "feature_matching": (("feature_matching", "perceptual"), False),
        },
        "diffusion": {"noise": (("mse", "mae", "huber"), True)},
        "autoregressive": {"nll": (("cross_entropy",), True)},
    }
)


def slot_losses(slot: str) -> tuple[type[LossSpec], ...]:
    """The loss classes slot ``slot`` of :class:`LossSlots` takes."""
    return tuple(
        m for m in union_members(LossSlots.model_fields[slot].annotation) if m is not type(None)
    )


def _slot_form(classes: tuple[type[LossSpec], ...]) -> dict[str, Any]:
    """One flat object form for a slot: ``name`` a dropdown of its losses, then every field
    those losses take (a field only some take is optional and says which). The Prefect UI draws
    this as a select; a union of near-identical objects it would draw as a row of buttons,
    preselecting the first, whatever the value."""
    names = [cls.model_fields["name"].default for cls in classes]
    props: dict[str, Any] = {
        "name": {"title": "Name", "type": "string", "enum": names, "default": names[0]}
    }
    for cls in classes:
        for field, spec in cls.model_json_schema()["properties"].items():
            if field == "name" or field in props:
                continue
            takers = [c.model_fields["name"].default for c in classes if field in c.model_fields]
            if len(takers) < len(classes):
                spec = {k: v for k, v in spec.items() if k != "default"}
                spec = {"anyOf": [spec, {"type": "null"}], "title": spec.get("title", field)}
                what = cls.model_fields[field].description or ""
                spec["description"] = f"{what} ({', '.join(takers)} only)".strip()
            props[field] = spec
    return {
        "type": "object",
        "title": "loss",
        "properties": props,
        "required": ["name"],
        "additionalProperties": False,
    }


def _slot_forms(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    for slot, prop in schema.get("properties", {}).items():
        keep = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
        form = _slot_form(slot_losses(slot))
        schema["properties"][slot] = {"anyOf": [form, {"type": "null"}], **keep}


class LossSlots(StrictModel):
    """A model's loss slots, each empty or holding one loss and its weight; which slots a family
    has, and which losses each takes there, is ``FAMILY_SLOTS``. Reads like a mapping of the
    filled slots (``loss["kl"].weight``, ``dict(loss)``) and dumps only those."""

    model_config = ConfigDict(json_schema_extra=_slot_forms)

    reconstruction: Annotated[MSE | MAE | Huber | BCE, Field(discriminator="name")] | None = Field(
        None, description="vae: how far the decoded sample is from the input"
    )
    kl: KL | None = Field(None, description="vae: KL of the posterior from N(0, I); weight = beta")
    perceptual: Perceptual | None = Field(
        None, description="vae: distance in the feature network's activations"
    )
    adversarial: (
        Annotated[
            Minimax | NonSaturating | Hinge | LeastSquares | Wasserstein,
            Field(discriminator="name"),
        ]
        | None
    ) = Field(None, description="gan: the two players' game")
    gradient_penalty: GradientPenalty | None = Field(
        None, description="gan: WGAN-GP penalty on the critic; weight = lambda"
    )
    feature_matching: (
        Annotated[FeatureMatching | Perceptual, Field(discriminator="name")] | None
    ) = Field(None, description="gan: generator term on discriminator or feature activations")
    noise: Annotated[MSE | MAE | Huber, Field(discriminator="name")] | None = Field(
        None, description="diffusion: error of the predicted noise"
    )
    nll: CrossEntropy | None = Field(None, description="autoregressive: next-token likelihood")

    @model_serializer(mode="wrap")
    def _filled_only(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def keys(self) -> list[str]:
        return [k for k in type(self).model_fields if getattr(self, k) is not None]

    def values(self) -> list[LossSpec]:
        return [getattr(self, k) for k in self.keys()]

    def items(self) -> list[tuple[str, LossSpec]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def get(self, slot: str, default: LossSpec | None = None) -> LossSpec | None:
        value = getattr(self, slot, None) if slot in type(self).model_fields else None
        return default if value is None else value

    def __getitem__(self, slot: str) -> LossSpec:
        value = self.get(slot)
        if value is None:
            raise KeyError(slot)
        return value

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, str) and self.get(slot) is not None

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # a mapping: its slots
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.items())


def default_losses(family: str) -> dict[str, dict[str, Any]]:
    """The loss a required slot gets when the config leaves it out."""
    first = {"vae": "mse", "gan": "non_saturating", "diffusion": "mse"}
    out = {}
    for slot, (allowed, required) in FAMILY_SLOTS[family].items():
        if required:
            out[slot] = {"name": first.get(family, allowed[0]) if len(allowed) > 1 else allowed[0]}
    return out


# -------------------------------------------------------------------------------------- train
class TrainConfig(StrictModel):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; None: off")
    num_workers: int = Field(1, gt=0)
    use_gpu: bool | Literal["auto"] = "auto"
    mixed_precision: bool = Field(False, description="bf16 autocast, GPU only")
    seed: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, gt=0)
    max_failures: int = Field(1, ge=-1, description="-1: retry forever")
    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_slot(family: str, slot: str) -> None:
    slots = FAMILY_SLOTS[family]
    if slot not in slots:
        raise ValueError(
            f"loss.{slot}: {family!r} has no slot {slot!r};"
            f" its slots are {', '.join(repr(s) for s in slots)}"
        )


class RunConfig(StrictModel):
    """What one training run needs: data, model, its losses and the training settings."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossSlots = LossSlots()
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _fill_default_losses(cls, values: Any) -> Any:
        if isinstance(values, dict):
            model = values.get("model") or {}
            family = (
                model.get("family", "vae")
                if isinstance(model, dict)
                else getattr(model, "family", None)
            )
            given = values.get("loss") or {}
            if (
                isinstance(family, str)
                and family in FAMILY_SLOTS
                and isinstance(given, dict | LossSlots)
            ):
                # An empty slot, or a field left empty (as the Prefect UI's form sends them), is
                # the same as leaving it out.
                loss = {
                    slot: {k: v for k, v in spec.items() if v is not None}
                    if isinstance(spec, dict)
                    else spec
                    for slot, spec in dict(given).items()
                    if spec is not None
                }
                for slot in loss:
                    _check_slot(family, slot)
                defaults = default_losses(family)
                for slot, spec in defaults.items():
                    loss.setdefault(slot, spec)
                for slot, spec in loss.items():  # `kl: {weight: 2}` means the slot's usual loss
                    allowed = FAMILY_SLOTS[family].get(slot, ((),))[0]
                    default = defaults.get(
                        slot, {"name": allowed[0]} if len(allowed) == 1 else None
                    )
                    if isinstance(spec, dict) and "name" not in spec and default:
                        loss[slot] = {**spec, "name": default["name"]}
                values = {**values, "loss": loss}
        return values

    @model_validator(mode="after")
    def _slots_match_family(self) -> RunConfig:
        slots = FAMILY_SLOTS[self.model.family]
        for slot, spec in self.loss.items():
            _check_slot(self.model.family, slot)
            allowed = slots[slot][0]
            if spec.name not in allowed:
                raise ValueError(
                    f"loss.{slot}.name: {spec.name!r} is not one of"
                    f" {', '.join(repr(a) for a in allowed)} (slot {slot!r} of"
                    f" {self.model.family!r})"
                )
        image = self.data.source == "digits" or (
            self.data.source == "parquet"
            and self.data.shape is not None
            and len(self.data.shape) >= 2
        )
        if self.model.arch.body == "conv" and not image:
            raise ValueError(
                f"model.arch.body: 'conv' needs image data; data.source {self.data.source!r}"
                " gives vectors (a user Parquet is an image with data.shape [H, W]): use 'mlp'"
            )
        recon = self.loss.get("reconstruction")
        if recon is not None and recon.name == "bce" and not image:
            raise ValueError(
                f"loss.reconstruction.name: 'bce' needs data in [0, 1] (min-max normalised images);"
                f" data.source {self.data.source!r} is standardised: use mse, mae or huber"
            )
        return self


# ------------------------------------------------------------------------- sweep, eval, generate
class SweepConfig(StrictModel):
    space: str = Field("tune_spaces/vae_loss_weights.yaml", description="search-space YAML file")
    trials: int = Field(8, gt=0)
    search: Literal["random", "optuna"] = "random"
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, gt=0, description="epochs before ASHA may stop a trial")
    reduction_factor: int = Field(2, gt=1)
    repeats: int = Field(1, gt=0, description="seeds per sampled config; ranked by the mean")
    max_concurrent: int | None = Field(None, gt=0, description="None: what the cluster holds")


class EvaluateConfig(StrictModel):
    n_samples: int = Field(2500, gt=0)
    split: Literal["test", "val"] = "test"
    seed: int = Field(0, ge=0)


class GenerateConfig(StrictModel):
    n: int = Field(64, gt=0)
    seed: int = Field(0, ge=0)
    batch_size: int = Field(512, gt=0)


class PipelineConfig(RunConfig):
    """The whole job: prepare -> sweep -> retrain best -> evaluate -> generate."""

    name: str = Field("demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    sweep: SweepConfig = SweepConfig()
    retrain_epochs: int | None = Field(None, gt=0, description="None: train.epochs")
    evaluate: EvaluateConfig = EvaluateConfig()
    generate: GenerateConfig = GenerateConfig()


# ------------------------------------------------------------------------------------ loading
def set_path(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``tree`` with ``a.b.c`` set to ``value`` (intermediate dicts created)."""
    out = dict(tree)
    head, _, rest = dotted.partition(".")
    if not head:
        raise ConfigError(f"invalid override path {dotted!r}")
    if rest:
        child = out.get(head)
        out[head] = set_path(child if isinstance(child, dict) else {}, rest, value)
    else:
        out[head] = value
    return out


def apply_overrides(tree: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides; values are parsed as YAML (``3``, ``true``, ``[1, 2]``)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        tree = set_path(tree, key.strip(), yaml.safe_load(raw))
    return tree


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        tree = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{p}: expected a mapping at the top, got {type(tree).__name__}")
    return tree


def load_config(
    model: type[M],
    path: str | Path | None = None,
    *,
    overrides: Iterable[str] = (),
    data: dict[str, Any] | None = None,
    prefix: str = "",
) -> M:
    """Build a config from an optional YAML file, a dict and ``--set`` overrides, validated once."""
    tree: dict[str, Any] = read_yaml(path) if path is not None else {}
    if data:
        for key, value in data.items():
            tree = set_path(tree, key, value)
    tree = apply_overrides(tree, overrides)
    where = f"config {path}" if path is not None else "config"
    return validate(model, tree, what=where, prefix=prefix)
