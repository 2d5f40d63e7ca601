"""The model section of a run config: one class per family, chosen by ``model.family`` (as the
losses are chosen by their ``name``), each with the options that apply to it; the network
bodies (``model.arch``) are shared and sweepable."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from genai.plugins import family_class
from genai.strict import StrictModel

Family = Literal["vae", "gan", "diffusion", "autoregressive"]
FAMILIES: tuple[str, ...] = Family.__args__  # type: ignore[attr-defined]

# Before model options were per family (a union on model.family), every config held every
# family's options; the ids hashed them. The other families' sections, at the defaults they had,
# are put back for the hash (frozen here: a later change of a default changes no stored id).
FORMER_MODEL_SECTIONS: dict[str, dict[str, Any]] = {
    "diffusion": {"timesteps": 100, "schedule": "cosine", "sampler": "ddpm", "sample_steps": 50},
    "gan": {"n_critic": 1},
    "autoregressive": {"bins": 64, "temperature": 1.0},  # body: a later field (LATER_DEFAULTS)
}


class ArchConfig(StrictModel):
    """Network bodies; every field is sweepable."""

    body: Literal["mlp", "conv", "dcgan", "unet"] = Field(
        "mlp",
        description="mlp: flat vectors; conv: a small conv stack (sized for 8x8); dcgan (vae,"
        " gan): strided convs with normalisation for 32-64 px; unet (diffusion): a UNet with"
        " skips and a time embedding. The autoregressive family's network is"
        " model.autoregressive.body",
    )
    width: int = Field(
        128,
        gt=0,
        description="hidden units (mlp, and autoregressive MADE) or base channels (conv, dcgan,"
        " unet, pixelcnn)",
    )
    depth: int = Field(
        2,
        gt=0,
        description="hidden layers (mlp, MADE), stride-2 stages (conv, dcgan: 3 takes 32 px to"
        " 4x4), UNet levels below full resolution, or PixelCNN's masked 3x3 layers",
    )
    activation: Literal["silu", "relu", "leaky_relu", "gelu"] = Field(
        "silu",
        description="the MLP bodies' and MADE's nonlinearity (a GAN's critic: always leaky_relu)",
    )
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
    eta: float = Field(
        0.0,
        ge=0,
        le=1,
        description="DDIM's noise (Song et al. 2021): 0 deterministic, 1 the DDPM posterior's"
        " noise over the skipped steps; used by the ddim sampler and by the fast sampler of"
        " evaluate, generate and sweep trials (evaluate.eta / generate.eta override it)",
    )
    attention: bool = Field(
        False, description="unet: self-attention at the lowest resolution (Ho et al. 2020)"
    )


class GanOptions(StrictModel):
    n_critic: int = Field(1, gt=0, description="discriminator steps per generator step")


class AutoregressiveOptions(StrictModel):
    bins: int = Field(64, gt=1, description="quantisation levels per value")
    temperature: float = Field(1.0, gt=0)
    body: Literal["transformer", "made", "pixelcnn"] = Field(
        "transformer",
        description="the network giving each value's distribution from the values before it: a"
        " causal transformer (arch.layers, heads, d_model), MADE, a masked MLP (arch.width,"
        " depth, activation) that is cheaper per step, or pixelcnn for colour images (masked"
        " convolutions, arch.width channels, arch.depth layers; pixels in raster order, a"
        " pixel's channels one after another)",
    )


OPTIONS: dict[str, type[StrictModel]] = {
    "gan": GanOptions,
    "diffusion": DiffusionOptions,
    "autoregressive": AutoregressiveOptions,
}


def _unset(family: str, section: Any) -> bool:
    """Whether ``section`` of ``family``'s options is empty or holds only its defaults."""
    if section is None or section == {}:
        return True
    options = OPTIONS.get(family)
    try:
        return options is not None and options.model_validate(section) == options()
    except ValueError:  # not valid as that family's options: say so where it stands
        return False


class FamilyModel(StrictModel):
    """What every family takes: the network bodies and, instead of the built-in family, your
    own class. Each family adds its own options (``model.gan``, ``model.diffusion``,
    ``model.autoregressive``); another family's options are an error that says so."""

    family: Family
    arch: ArchConfig = ArchConfig()
    class_path: str | None = Field(
        None,
        description="your own family instead of the built-in one: 'module:Class', a subclass of"
        " genai.models.GenerativeModel built as Class(model, losses, data, features=None); it"
        " takes the loss slots of `family`. Imported from the working directory or the Python path",
    )
    options: ClassVar[str | None] = None  # the name of this family's own options section
    bodies: ClassVar[tuple[str, ...]] = ("mlp", "conv")  # the model.arch.body values it takes

    @model_validator(mode="before")
    @classmethod
    def _unset_sections_left_out(cls, values: Any) -> Any:
        """Another family's section that says nothing is left out: empty (null, {}) or at its
        defaults, as the Prefect UI's form sends every family's section it shows; a value of
        its own stays, and is an error (:meth:`misplaced`)."""
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (k in FAMILIES and _unset(k, v))}
        return values

    @model_validator(mode="after")
    def _class_path_names_a_family(self) -> FamilyModel:
        if self.class_path is not None:
            family_class(self.class_path)  # a ValueError naming model.class_path
        elif self.arch.body not in self.bodies:
            hint = ""
            if self.options == "autoregressive":
                hint = " (its network is model.autoregressive.body: transformer, made, pixelcnn)"
            raise ValueError(
                f"arch.body: {self.arch.body!r} is not a body of the {self.family} family; it"
                f" takes {', '.join(map(repr, self.bodies))}{hint}"
            )
        return self

    @classmethod
    def misplaced(cls, name: str) -> str | None:
        """What is wrong with field ``name`` here when it is another family's options."""
        if name not in FAMILIES:
            return None
        tag = cls.model_fields["family"].default
        own = ", ".join(f for f in cls.model_fields if f != "family")
        return (
            f"an option of the {name} family, but model.family is {tag!r} (the {tag} family takes"
            f" {own}); set model.family: {name}, or leave it out"
        )


class VaeModel(FamilyModel):
    family: Literal["vae"] = "vae"
    bodies: ClassVar[tuple[str, ...]] = ("mlp", "conv", "dcgan")


class GanModel(FamilyModel):
    family: Literal["gan"] = "gan"
    gan: GanOptions = GanOptions()
    options: ClassVar[str | None] = "gan"
    bodies: ClassVar[tuple[str, ...]] = ("mlp", "conv", "dcgan")


class DiffusionModel(FamilyModel):
    family: Literal["diffusion"] = "diffusion"
    diffusion: DiffusionOptions = DiffusionOptions()
    options: ClassVar[str | None] = "diffusion"
    bodies: ClassVar[tuple[str, ...]] = ("mlp", "conv", "unet")

    @model_validator(mode="after")
    def _attention_in_a_unet(self) -> DiffusionModel:
        if self.diffusion.attention and self.arch.body != "unet":
            raise ValueError(
                f"diffusion.attention: true needs arch.body 'unet' (the attention sits at the"
                f" UNet's lowest resolution); arch.body is {self.arch.body!r}"
            )
        return self


class AutoregressiveModel(FamilyModel):
    family: Literal["autoregressive"] = "autoregressive"
    autoregressive: AutoregressiveOptions = AutoregressiveOptions()
    options: ClassVar[str | None] = "autoregressive"


IMAGE_BODIES = ("conv", "dcgan", "unet")  # model.arch.body values that need image rows


def image_body(model: FamilyModel) -> tuple[str, str] | None:
    """(the field and its value, what to use instead) when the model's network needs image rows
    ([H, W] or [C, H, W]); None when it takes any vector."""
    if isinstance(model, AutoregressiveModel) and model.autoregressive.body == "pixelcnn":
        return "model.autoregressive.body: 'pixelcnn'", "'transformer' or 'made'"
    if model.arch.body in IMAGE_BODIES and not isinstance(model, AutoregressiveModel):
        return f"model.arch.body: {model.arch.body!r}", "'mlp'"
    return None


# the model section: one class per family, chosen by model.family (as the losses by their name)
ModelConfig = Annotated[
    VaeModel | GanModel | DiffusionModel | AutoregressiveModel, Field(discriminator="family")
]
