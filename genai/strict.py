"""The one strict pydantic base every config uses, and readable validation errors."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from genai.errors import UserError


class StrictModel(BaseModel):
    """Base of every config: unknown fields are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ConfigError(UserError, ValueError):
    """A configuration a user wrote is invalid; the message names each field and the fix."""


def _one_of(expected: str) -> str:
    """pydantic writes "'a', 'b' or 'c'"; we list them all with commas."""
    return re.sub(r"' or '", "', '", expected)


def union_members(annotation: Any) -> list[Any]:
    """The alternatives of a Union/Optional (or the annotation itself)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return union_members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in union_members(a)]
    return [annotation]


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("name") or model.model_fields.get("family")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _walk(root: type[BaseModel] | None, loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Follow ``loc`` through the model classes, dropping union tags pydantic inserts.

    Returns the cleaned path and the model class at its end (``None`` where it cannot tell).
    """
    path: list[str] = []
    current: Any = root
    items = list(loc)
    i = 0
    while i < len(items):
        part = items[i]
        path.append(str(part))
        i += 1
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            current = None
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            current = None
            continue
        annotation = field.annotation
        # dict[str, X]: the next loc item is a key.
        if typing.get_origin(annotation) is dict:
            if i < len(items):
                path.append(str(items[i]))
                i += 1
            annotation = typing.get_args(annotation)[1]
        models = [
            m for m in union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)
        ]
        if len(models) > 1 and i < len(items):
            tagged = {_tag_of(m): m for m in models}
            if items[i] in tagged:  # pydantic's discriminator tag, not a user key
                current = tagged[items[i]]
                i += 1
                continue
        current = models[0] if len(models) == 1 else None
    return path, current


def format_validation_error(
    err: ValidationError, root: type[BaseModel] | None = None, prefix: str = ""
) -> str:
    """One line per problem: ``path: what is wrong (allowed values)``."""
    lines = []
    for e in err.errors(include_url=False):
        path, parent_model = _walk(root, tuple(e["loc"]))
        where = ".".join(path)
        kind, ctx, value = e["type"], e.get("ctx", {}), e.get("input")
        if kind == "literal_error":
            msg = f"{value!r} is not one of {_one_of(ctx['expected'])}"
        elif kind == "union_tag_invalid":
            where = f"{where}.{ctx['discriminator'].strip(chr(39))}"  # the tag's own field
            msg = f"{ctx['tag']!r} is not one of {ctx['expected_tags']}"
        elif kind == "union_tag_not_found":
            msg = f"needs a {ctx['discriminator']} field"
        elif kind == "extra_forbidden":
            owner_path, owner = _walk(root, tuple(e["loc"][:-1]))
            misplaced = getattr(owner, "misplaced", None)  # a config that explains its own
            known = misplaced(path[-1]) if misplaced is not None else None
            if known is not None:
                msg = known
                if isinstance(value, dict) and len(value) == 1:  # name the option given
                    where = f"{where}.{next(iter(value))}"
            else:
                allowed = ", ".join(owner.model_fields) if owner else "see the documentation"
                msg = f"unknown field {path[-1]!r}; allowed fields: {allowed}"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind.startswith("value_error") or kind == "assertion_error":
            text = re.sub(r"^(Value|Assertion) error, ", "", e["msg"])
            # Validators write "field: message"; join that field onto the location.
            m = re.match(r"^([A-Za-z_][\w.]*): (.*)$", text, re.S)
            if m:
                where = f"{where}.{m.group(1)}" if where else m.group(1)
                text = m.group(2)
            msg = text
        else:
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            msg = f"{e['msg']}{shown}"
        where = ".".join(p for p in (prefix, where) if p)
        lines.append(f"{where}: {msg}" if where else msg)
    return "\n".join(lines)


def validate(model: type[BaseModel], data: Any, *, what: str = "config", prefix: str = "") -> Any:
    """Validate ``data`` as ``model`` or raise :class:`ConfigError` with a readable message.

    ``prefix`` is the model's place in a larger config (``data`` for a DataConfig alone).
    """
    try:
        return model.model_validate(data)
    except ValidationError as err:
        text = format_validation_error(err, model, prefix)
        raise ConfigError(f"invalid {what}:\n{text}") from None
