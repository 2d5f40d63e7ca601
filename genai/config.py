"""Typed configs for every stage: data, model, loss, train, sweep, evaluate, generate, pipeline.

Validated once at the edge (:mod:`genai.configfile` reads YAML and ``--set`` overrides), typed
objects passed down. Errors name the field's path and the allowed values (:mod:`genai.strict`);
the loss slots are :mod:`genai.losses.slots`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from genai.forms import FamilyForm, SlotForms
from genai.losses.slots import FAMILY_SLOTS, LossSlots, check_names, fill_slots, losses_of
from genai.model_config import FORMER_MODEL_SECTIONS, Family, ModelConfig, VaeModel, image_body
from genai.strict import StrictModel

SourceName = Literal[
    "digits", "photos", "shapes", "ring8", "grid25", "moons", "swissroll",
    "parquet", "csv", "npy", "images",
]  # fmt: skip
GENERATED_SOURCES = ("ring8", "grid25", "moons", "swissroll", "shapes")
IMAGE_SOURCES = ("digits", "photos", "shapes", "images")  # always images
FILE_SOURCES = ("parquet", "csv", "npy", "images")  # a user's data, at data.uri
# which fields each file source takes (beside uri, name, seed, normalise, split)
FILE_FIELDS = {
    "parquet": ("columns", "label_column", "shape"),
    "csv": ("columns", "label_column", "shape"),
    "npy": ("label_uri", "shape"),
    "images": ("image_labels",),
}


# Fields added after configs first named runs, sweeps and pipelines (their ids hash the config):
# at these values they stay out of the hash (identity), so what was made before keeps its id.
LATER_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("data", "label_uri"): None,
    ("data", "image_labels"): True,
    ("model", "class_path"): None,
    ("model", "autoregressive", "body"): "transformer",
    ("model", "diffusion", "attention"): False,
    ("model", "diffusion", "eta"): 0.0,
    ("train", "buffer_mb"): 128,
    ("evaluate", "sampler"): "fast",
    ("evaluate", "ddim_steps"): 50,
    ("evaluate", "batch_size"): 512,
    ("generate", "sampler"): "fast",
    ("generate", "ddim_steps"): 50,
    ("evaluate", "eta"): None,
    ("generate", "eta"): None,
}


def identity(cfg: StrictModel) -> dict[str, Any]:
    """The config as the ids hash it: its JSON dump without the later fields at their defaults,
    with the sections of the other model families as every config held them before."""
    tree = cfg.model_dump(mode="json")
    model = tree.get("model")
    if isinstance(model, dict):
        absent = {k: dict(v) for k, v in FORMER_MODEL_SECTIONS.items() if k not in model}
        tree["model"] = {**model, **absent}
    for (*sections, name), default in LATER_DEFAULTS.items():
        part = tree
        for section in sections:
            part = part.get(section) if isinstance(part, dict) else None
        if isinstance(part, dict) and name in part and part[name] == default:
            del part[name]
    return tree


# Settings added to evaluate / generate whose default draws exactly what their absence drew: a
# result stored before the field existed is the same result (not so for sampler, ddim_steps:
# before them a diffusion run was sampled with its own chain).
SAME_AS_ABSENT: dict[str, dict[str, Any]] = {"evaluate": {"eta": None}, "generate": {"eta": None}}


def same_settings(stored: dict[str, Any] | None, cfg: StrictModel, section: str) -> bool:
    """Whether settings stored with a result (``cfg.model_dump`` then) are ``cfg``'s, a field of
    SAME_AS_ABSENT at its default counting as absent on either side."""
    if stored is None:
        return False
    absent = SAME_AS_ABSENT.get(section, {})

    def kept(tree: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in tree.items() if not (k in absent and v == absent[k])}

    return kept(stored) == kept(cfg.model_dump(mode="json"))


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
    uri: str | None = Field(
        None,
        description="your data, local or s3://: a Parquet file or folder (parquet), a CSV file"
        " (csv), a NumPy .npy of one row per sample (npy), a folder of PNG/JPEG images (images)",
    )
    columns: tuple[str, ...] | None = Field(
        None,
        description="value columns (parquet, csv): list columns and numeric ones; default every"
        " numeric or list column but the label column",
    )
    label_column: str | None = Field(
        None, description="label column (parquet, csv): integers, or any values (mapped)"
    )
    label_uri: str | None = Field(
        None, description="a NumPy .npy of one label per row (npy): integers, or any values"
    )
    image_labels: bool = Field(
        True,
        description="images: label each image by its subfolder's name (false: unlabelled)",
    )
    shape: tuple[int, ...] | None = Field(
        None,
        description="shape of one sample, e.g. [8, 8] (parquet, csv, npy); default the flat"
        " feature count. Two or more dimensions make the rows images",
    )
    normalise: Literal["auto", "standard", "minmax", "none"] = Field(
        "auto",
        description="auto: images to [0, 1] (an image folder by its pixel format's range, 8-bit"
        " / 255; other images min-max over the train split), per-feature standard otherwise",
    )
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _source_fields(self) -> DataConfig:
        if self.source in FILE_SOURCES and not self.uri:
            raise ValueError(f"uri: required when source is {self.source!r} (where your data is)")
        for field in ("uri", "columns", "label_column", "label_uri", "shape", "image_labels"):
            default = type(self).model_fields[field].default
            allowed = [s for s in FILE_SOURCES if field == "uri" or field in FILE_FIELDS[s]]
            if getattr(self, field) != default and self.source not in allowed:
                raise ValueError(
                    f"{field}: only allowed when source is {' or '.join(map(repr, allowed))},"
                    f" not {self.source!r}"
                )
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

    @property
    def image(self) -> bool:
        """Rows are images: digits, an image folder, or a file source with a 2-D or 3-D shape."""
        if self.source in IMAGE_SOURCES:
            return True
        return self.source in FILE_SOURCES and self.shape is not None and len(self.shape) >= 2

    @property
    def labelled(self) -> bool:
        if self.source in ("digits", "photos", *GENERATED_SOURCES):
            return self.source != "swissroll"
        if self.source == "images":
            return self.image_labels
        return self.label_column is not None or self.label_uri is not None

    @property
    def mixture(self) -> bool:
        """A 2-D Gaussian mixture with known modes (VEEGAN/PacGAN's metrics apply)."""
        return self.source in ("ring8", "grid25")


def stored_config(tree: dict[str, Any]) -> RunConfig:
    """A run config as a store holds it, written by this genai or an earlier one: before model
    options were per family, every model section held every family's options; the other
    families' are dropped (they never had an effect)."""
    model = tree.get("model")
    if isinstance(model, dict):
        family = model.get("family", "vae")
        others = [f for f in FORMER_MODEL_SECTIONS if f != family]
        tree = {**tree, "model": {k: v for k, v in model.items() if k not in others}}
    return RunConfig.model_validate(tree)


# -------------------------------------------------------------------------------------- train
class TrainConfig(StrictModel):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate (a GAN's generator's)")
    lr_discriminator: float | None = Field(
        None, gt=0, description="GANs: the discriminator's learning rate (TTUR); None: lr"
    )
    betas: tuple[float, float] | None = Field(
        None, description="Adam betas; None: (0.5, 0.9) for GANs, (0.9, 0.999) otherwise"
    )
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up from 0")
    schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="learning-rate decay after warm-up, to min_lr_ratio x lr"
    )
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="the decayed learning rate / lr")
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="EMA of the weights, used to sample and evaluate; None: off"
    )
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; None: off")
    num_workers: int = Field(1, gt=0)
    use_gpu: bool | Literal["auto"] = "auto"
    mixed_precision: bool = Field(False, description="bf16 autocast, GPU only")
    seed: int = Field(0, ge=0)
    buffer_mb: int = Field(
        128,
        gt=0,
        description="rows a worker holds at once, in MB: a train split that fits is held whole and"
        " shuffled globally each epoch; a larger one streams in row groups, shuffled within"
        " windows of half this size",
    )
    keep_checkpoints: int = Field(2, gt=0)
    max_failures: int = Field(1, ge=-1, description="-1: retry forever")
    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    @model_validator(mode="after")
    def _betas_in_range(self) -> TrainConfig:
        if self.betas is not None and not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas: each must be in [0, 1), got {list(self.betas)}")
        return self


class RunConfig(StrictModel):
    """What one training run needs: data, model, its losses and the training settings."""

    data: DataConfig = DataConfig()
    model: Annotated[ModelConfig, FamilyForm()] = VaeModel()  # the UI: a family dropdown
    loss: Annotated[LossSlots, SlotForms(losses_of)] = LossSlots()  # the UI: one form a slot
    train: TrainConfig = TrainConfig()

    @model_validator(mode="before")
    @classmethod
    def _fill_default_losses(cls, values: Any) -> Any:
        if isinstance(values, dict):
            model = values.get("model") or {}
            if isinstance(model, dict) and "family" not in model:
                model = {"family": "vae", **model}  # the default family
                values = {**values, "model": model}
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
                values = {**values, "loss": fill_slots(family, given)}
        return values

    @model_validator(mode="after")
    def _slots_match_family(self) -> RunConfig:
        check_names(self.model.family, self.loss)
        if self.train.lr_discriminator is not None and self.model.family != "gan":
            raise ValueError(
                f"train.lr_discriminator: only a GAN has a discriminator; model.family is"
                f" {self.model.family!r}: leave it out"
            )
        image = self.data.image
        body = image_body(self.model)
        if body is not None and not image:
            raise ValueError(
                f"{body[0]} needs image data; data.source {self.data.source!r}"
                " gives vectors (a user file's rows are images with data.shape [H, W]): use"
                f" {body[1]}"
            )
        recon = self.loss.get("reconstruction")
        if recon is not None and recon.name == "bce" and not image:
            raise ValueError(
                f"loss.reconstruction.name: 'bce' needs data in [0, 1] (min-max normalised images);"
                f" data.source {self.data.source!r} is standardised: use mse, mae or huber"
            )
        return self


# ------------------------------------------------------------------------- sweep, eval, generate
SweepMetric = Literal[
    "fid", "kid", "modes", "high_quality", "reverse_kl", "mmd2",
    "precision", "recall", "density", "coverage", "inception_score",
]  # fmt: skip


class SweepConfig(StrictModel):
    space: str = Field("tune_spaces/vae_loss_weights.yaml", description="search-space YAML file")
    metric: SweepMetric | None = Field(
        None,
        description="the evaluate metric trials are ranked by (higher or lower is better as the"
        " metric says); None: fid for images, mmd2 otherwise",
    )
    trials: int = Field(8, gt=0)
    search: Literal["random", "optuna"] = "random"
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, gt=0, description="epochs before ASHA may stop a trial")
    judge_every: int = Field(
        1,
        gt=0,
        description="epochs between a trial's judgments (sample and score); the last epoch is"
        " always judged, and only judged epochs are reported to Tune and ASHA",
    )
    reduction_factor: int = Field(2, gt=1)
    repeats: int = Field(1, gt=0, description="seeds per sampled config; ranked by the mean")
    max_concurrent: int | None = Field(None, gt=0, description="None: what the cluster holds")


ETA = (
    "DDIM's noise for a diffusion model's fast sampler: 0 deterministic, 1 the DDPM posterior's"
    " over the skipped steps; None: the run's model.diffusion.eta (other families and the model"
    " sampler ignore it)"
)


class EvaluateConfig(StrictModel):
    n_samples: int = Field(2500, gt=0)
    split: Literal["test", "val"] = "test"
    seed: int = Field(0, ge=0)
    sampler: Literal["fast", "model"] = Field(
        "fast",
        description="fast: a diffusion model samples with DDIM in ddim_steps steps (the other"
        " families have one sampler); model: the run's own (model.diffusion.sampler)",
    )
    ddim_steps: int = Field(50, gt=0, description="DDIM steps of the fast sampler")
    eta: float | None = Field(None, ge=0, le=1, description=ETA)
    batch_size: int = Field(512, gt=0, description="samples drawn at a time (512: as generate)")


class GenerateConfig(StrictModel):
    n: int = Field(64, gt=0)
    seed: int = Field(0, ge=0)
    batch_size: int = Field(512, gt=0)
    sampler: Literal["fast", "model"] = Field(
        "fast", description="as evaluate.sampler: fast is DDIM for a diffusion model"
    )
    ddim_steps: int = Field(50, gt=0, description="DDIM steps of the fast sampler")
    eta: float | None = Field(None, ge=0, le=1, description=ETA)


class PipelineConfig(RunConfig):
    """The whole job: prepare -> sweep -> retrain best -> evaluate -> generate."""

    name: str = Field("demo", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    sweep: SweepConfig = SweepConfig()
    retrain_epochs: int | None = Field(None, gt=0, description="None: train.epochs")
    retrain_workers: int | None = Field(
        None, gt=0, description="Ray Train workers of the retrain; None: train.num_workers"
    )
    evaluate: EvaluateConfig = EvaluateConfig()
    generate: GenerateConfig = GenerateConfig()


# ------------------------------------------------------------------------------------- compare
# the slot a comparison varies in each family: the loss that makes the family what it is
MAIN_SLOT = {
    "vae": "reconstruction",
    "gan": "adversarial",
    "diffusion": "noise",
    "autoregressive": "nll",
}
Step = Annotated[int, Field(gt=0)]


def main_losses(family: str) -> tuple[str, ...]:
    """Every loss the main slot of ``family`` takes."""
    return FAMILY_SLOTS[family][MAIN_SLOT[family]][0]


class CompareConfig(StrictModel):
    """``genai compare``: every (family, loss) cell the selection names, at each budget, for
    ``seeds`` seeds, judged by evaluate's loss-independent metrics beside their floors."""

    name: str = Field("compare", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: DataConfig = DataConfig()
    families: list[Family] = Field(
        default_factory=list, description="families compared; empty: every one the data allows"
    )
    losses: list[str] = Field(
        default_factory=list,
        description="losses of the families' main slots (vae reconstruction, gan adversarial,"
        " diffusion noise, autoregressive nll) to compare; empty: every one each allows",
    )
    seeds: int = Field(
        3, gt=0, le=50, description="seeds per cell: a seed draws the data's split and the model"
    )
    budgets: list[Step] = Field(
        default_factory=list,
        description="training steps per model (several: quality against budget, each cell at"
        " each); empty: each family's recipe's own steps",
    )
    metric: SweepMetric | None = Field(
        None,
        description="the metric the leaderboard ranks by; None: fid for images, high_quality for"
        " 2-D mixtures, mmd2 otherwise",
    )
    overrides: list[str] = Field(
        default_factory=list, description="a.b=value set in every cell's recipe (as --set)"
    )
    evaluate: EvaluateConfig = Field(
        EvaluateConfig(n_samples=1000), description="how each model is judged (as genai evaluate)"
    )

    @model_validator(mode="after")
    def _selection(self) -> CompareConfig:
        families = self.families or list(MAIN_SLOT)
        allowed = {name for f in families for name in main_losses(f)}
        for name in self.losses:
            if name not in allowed:
                shown = "; ".join(
                    f"{f} ({MAIN_SLOT[f]}): {', '.join(main_losses(f))}" for f in families
                )
                raise ValueError(
                    f"losses: {name!r} is no loss of the main slot of"
                    f" {', '.join(families)}; allowed: {shown}"
                )
        for field in ("families", "losses", "budgets"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field}: {values} names a value twice")
        return self
