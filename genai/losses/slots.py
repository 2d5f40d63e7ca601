"""Loss slots: which family has which slot, which losses each slot takes, and the defaults.

One table, :class:`LossSlots`: each field is a slot; its type (a union of loss configs) says which
losses it takes, and its ``Slot`` marker which family owns it and, for a required slot, the loss a
config that leaves it out gets. :func:`family_slots` reads the table; nothing else repeats it.
The Prefect UI's form of the table is shaped in :mod:`genai.forms`, attached by the config that
holds it (:mod:`genai.config`): the catalogue knows nothing of forms.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import Field, model_serializer

from genai.losses.registry import (
    BCE,
    KL,
    MAE,
    MSE,
    R1,
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
from genai.strict import StrictModel, union_members


@dataclass(frozen=True)
class Slot:
    """A slot's owner and, when the slot is required, the loss it gets by default."""

    family: str
    default: str | None = None  # None: optional slot
    usual: str | None = None  # the loss of a slot given without a name

    @property
    def required(self) -> bool:
        return self.default is not None


def _slot(family: str, default: str | None, description: str, usual: str | None = None) -> Any:
    """A slot of ``family``; ``default`` fills it when left out (required), ``usual`` names the
    loss of a slot given without a name (default: ``default``, or the slot's only loss)."""
    extra = {"slot": [family, default, usual or default]}
    return Field(None, description=description, json_schema_extra=extra)


class LossSlots(StrictModel):
    """A model's loss slots, each empty or holding one loss and its weight. Reads like a mapping
    of the filled slots (``loss["kl"].weight``, ``dict(loss)``) and dumps only those."""

    reconstruction: Annotated[MSE | MAE | Huber | BCE, Field(discriminator="name")] | None = _slot(
        "vae", "mse", "vae: how far the decoded sample is from the input"
    )
    kl: KL | None = _slot("vae", "kl", "vae: KL of the posterior from N(0, I); weight = beta")
    perceptual: Perceptual | None = _slot(
        "vae", None, "vae: distance in the feature network's activations"
    )
    adversarial: (
        Annotated[
            Minimax | NonSaturating | Hinge | LeastSquares | Wasserstein,
            Field(discriminator="name"),
        ]
        | None
    ) = _slot("gan", "non_saturating", "gan: the two players' game")
    # any discriminator; with wasserstein it is WGAN-GP (Fedus et al. 2018 use it with
    # non_saturating too, arXiv:1710.08446)
    gradient_penalty: Annotated[GradientPenalty | R1, Field(discriminator="name")] | None = _slot(
        "gan",
        None,
        "gan: a penalty on the critic's input gradient: gradient_penalty (WGAN-GP, weight ="
        " lambda) or r1 (zero-centred on real rows, weight = gamma / 2)",
        usual="gradient_penalty",
    )
    feature_matching: (
        Annotated[FeatureMatching | Perceptual, Field(discriminator="name")] | None
    ) = _slot("gan", None, "gan: generator term on discriminator or feature activations")
    noise: Annotated[MSE | MAE | Huber, Field(discriminator="name")] | None = _slot(
        "diffusion", "mse", "diffusion: error of the predicted noise"
    )
    nll: CrossEntropy | None = _slot(
        "autoregressive", "cross_entropy", "autoregressive: next-token likelihood"
    )

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


def losses_of(slot: str) -> tuple[type[LossSpec], ...]:
    """The loss classes slot ``slot`` takes."""
    annotation = LossSlots.model_fields[slot].annotation
    return tuple(m for m in union_members(annotation) if m is not type(None))


def loss_name(cls: type[LossSpec]) -> str:
    return cls.model_fields["name"].default


def slot_of(slot: str) -> Slot:
    family, default, usual = LossSlots.model_fields[slot].json_schema_extra["slot"]  # type: ignore[index]
    return Slot(family, default, usual)


def _family_slots() -> Mapping[str, Mapping[str, tuple[tuple[str, ...], bool]]]:
    table: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {}
    for slot in LossSlots.model_fields:
        owner = slot_of(slot)
        names = tuple(loss_name(c) for c in losses_of(slot))
        table.setdefault(owner.family, {})[slot] = (names, owner.required)
    return MappingProxyType({f: MappingProxyType(s) for f, s in table.items()})


# family -> slot -> (loss names it takes, required), read off LossSlots
FAMILY_SLOTS = _family_slots()


def default_losses(family: str) -> dict[str, dict[str, Any]]:
    """The loss each required slot of ``family`` gets when a config leaves it out."""
    return {
        slot: {"name": slot_of(slot).default}
        for slot in FAMILY_SLOTS[family]
        if slot_of(slot).required
    }


def check_slot(family: str, slot: str) -> None:
    slots = FAMILY_SLOTS[family]
    if slot not in slots:
        raise ValueError(
            f"loss.{slot}: {family!r} has no slot {slot!r};"
            f" its slots are {', '.join(repr(s) for s in slots)}"
        )


def fill_slots(family: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """A config's ``loss`` as the form or YAML gives it -> every required slot filled.

    An empty slot or a field left empty (as the Prefect UI's form sends them) is the same as
    leaving it out; ``kl: {weight: 2}`` means the slot's usual loss with that weight.
    """
    loss = {
        slot: {k: v for k, v in spec.items() if v is not None} if isinstance(spec, dict) else spec
        for slot, spec in dict(given).items()
        if spec is not None
    }
    for slot in loss:
        check_slot(family, slot)
    for slot, spec in default_losses(family).items():
        loss.setdefault(slot, spec)
    for slot, spec in loss.items():
        names = FAMILY_SLOTS[family][slot][0]
        usual = slot_of(slot).usual or (names[0] if len(names) == 1 else None)
        if isinstance(spec, dict) and "name" not in spec and usual:
            loss[slot] = {**spec, "name": usual}
    return loss


def check_names(family: str, loss: LossSlots) -> None:
    """Every filled slot belongs to ``family`` and holds one of the losses it takes."""
    for slot, spec in loss.items():
        check_slot(family, slot)
        allowed = FAMILY_SLOTS[family][slot][0]
        if spec.name not in allowed:
            raise ValueError(
                f"loss.{slot}.name: {spec.name!r} is not one of"
                f" {', '.join(repr(a) for a in allowed)} (slot {slot!r} of {family!r})"
            )
