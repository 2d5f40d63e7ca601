"""Configs from files and the command line: a YAML mapping, ``--set a.b=v`` overrides, validated
once into a typed config (:mod:`genai.config`), with errors that name the file and the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from genai.strict import ConfigError, StrictModel, validate

M = TypeVar("M", bound=StrictModel)


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


# The example configs and search spaces ship inside the package (pyproject maps configs/ and
# tune_spaces/ of the checkout to genai/configs and genai/tune_spaces of an installed wheel).
SHIPPED = ("configs", "tune_spaces")


def shipped(path: str | Path) -> Path:
    """``path`` itself when it exists; else, for ``configs/...`` and ``tune_spaces/...``, the copy
    that ships with genai, so ``genai train configs/vae.yaml`` works from any directory."""
    p = Path(path)
    if p.exists() or p.is_absolute() or not p.parts or p.parts[0] not in SHIPPED:
        return p
    return installed(p)


def installed(path: str | Path) -> Path:
    """The copy of ``configs/...`` or ``tune_spaces/...`` that ships with genai, whatever the
    working directory holds (``path`` itself when genai ships no such file)."""
    p = Path(path)
    package = Path(__file__).resolve().parent
    for root in (package, package.parent):  # an installed wheel; a checkout (editable install)
        if (root / p).is_file():
            return root / p
    return p


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = shipped(path)
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
    path: str | Path | Mapping[str, Any] | None = None,
    *,
    overrides: Iterable[str] = (),
    data: dict[str, Any] | None = None,
    prefix: str = "",
) -> M:
    """Build a config from an optional YAML file (or a mapping in its place), a dict and
    ``--set`` overrides, validated once."""
    if isinstance(path, Mapping):
        tree, path = dict(path), None
    else:
        tree = read_yaml(path) if path is not None else {}
    if data:
        for key, value in data.items():
            tree = set_path(tree, key, value)
    tree = apply_overrides(tree, overrides)
    where = f"config {path}" if path is not None else "config"
    return validate(model, tree, what=where, prefix=prefix)
