"""JSON-schema shaping for the Prefect UI's parameter forms.

The UI draws a union of near-identical objects as a row of buttons and preselects the first,
whatever the value; a loss slot therefore gets one flat object form: ``name`` a dropdown of the
slot's losses, then every field those losses take (a field only some take is optional and says
which; a field whose default differs between them is left empty, each loss's default named).
Validation stays pydantic's discriminated union; this only changes what the form shows. The
config layer attaches it: ``loss: Annotated[LossSlots, SlotForms(losses_of)]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def _name(cls: type[BaseModel]) -> str:
    return cls.model_fields["name"].default


def _optional(
    spec: dict[str, Any], field: str, description: str, drop: tuple[str, ...] = ("default",)
) -> dict[str, Any]:
    """``spec`` as an optional field (may be left empty) with its own description."""
    inner = {k: v for k, v in spec.items() if k not in drop}
    return {
        "anyOf": [inner, {"type": "null"}],
        "title": inner.get("title", field),
        "description": description,
    }


def slot_form(classes: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """One flat object form for a slot that takes any of ``classes``."""
    names = [_name(cls) for cls in classes]
    props: dict[str, Any] = {
        "name": {"title": "Name", "type": "string", "enum": names, "default": names[0]}
    }
    for cls in classes:
        for field, spec in cls.model_json_schema()["properties"].items():
            if field == "name" or field in props:
                continue
            takers = [_name(c) for c in classes if field in c.model_fields]
            if len(takers) < len(classes):
                what = cls.model_fields[field].description or ""
                spec = _optional(spec, field, f"{what} ({', '.join(takers)} only)".strip())
            fields = [c.model_fields[field] for c in classes if field in c.model_fields]
            if len(takers) == len(classes) and len({repr(f.default) for f in fields}) > 1:
                each = [f"{name}: {f.description}, default {f.default}"
                        for name, f in zip(names, fields, strict=True)]  # fmt: skip
                text = "; ".join(each) + " (empty: the loss's default)"
                spec = _optional(spec, field, text, drop=("default", "description"))
            props[field] = spec
    return {
        "type": "object",
        "title": "loss",
        "properties": props,
        "required": ["name"],
        "additionalProperties": False,
    }


def slot_forms(
    schema: dict[str, Any], losses_of: Callable[[str], tuple[type[BaseModel], ...]]
) -> None:
    """Replace each slot property of a LossSlots schema with its flat form (optional)."""
    for slot, prop in schema.get("properties", {}).items():
        keep = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
        schema["properties"][slot] = {
            "anyOf": [slot_form(losses_of(slot)), {"type": "null"}],
            **keep,
        }


@dataclass(frozen=True)
class SlotForms:
    """``Annotated`` marker of a LossSlots field: its schema gets :func:`slot_forms`.

    ``losses_of(slot)`` names the loss classes a slot takes. The shaping is done on the model's
    own definition (``$defs``), so the schema reads as if LossSlots carried it itself.
    """

    losses_of: Callable[[str], tuple[type[BaseModel], ...]]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        slot_forms(handler.resolve_ref_schema(json_schema), self.losses_of)
        return json_schema


@dataclass(frozen=True)
class FamilyForm:
    """``Annotated`` marker of the model field (a union of one class per family): the UI gets
    one form, ``family`` a dropdown, then the fields every family takes, then each family's own
    options, optional and marked with the family that takes them. The form sends every section
    it shows, the other families' at their defaults: :class:`genai.model_config.FamilyModel`
    leaves a section that is empty or at its defaults out, so only a value set there is an
    error."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        union = handler(core_schema)
        members = [handler.resolve_ref_schema(m) for m in union.get("oneOf", [])]
        if not members:
            return union
        families = [m["properties"]["family"]["const"] for m in members]
        props: dict[str, Any] = {
            "family": {"title": "Family", "type": "string", "enum": families,
                       "default": families[0]},
        }  # fmt: skip
        for family, member in zip(families, members, strict=True):
            for field, spec in member["properties"].items():
                if field == "family" or field in props:
                    continue
                shared = all(field in m["properties"] for m in members)
                what = f"options of the {family} family (left empty for another family)"
                props[field] = spec if shared else _optional(spec, field, what)
        # family is not required: left out it is vae, as in a config file
        return {"type": "object", "title": "model", "properties": props,
                "additionalProperties": False}  # fmt: skip
