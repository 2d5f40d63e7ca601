"""Search spaces: YAML files whose keys are paths into the run config and whose values are
distributions. Validated completely, without Ray, before a sweep starts.

    loss.reconstruction.name: {choice: [mse, bce, huber]}
    loss.kl.weight: {loguniform: [0.1, 10]}
    model.arch.width: {choice: [64, 128]}
    train.lr: {quniform: [0.0005, 0.003, 0.0005]}
"""

from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genai.config import RunConfig
from genai.configfile import set_path, shipped
from genai.losses.registry import LossConfig
from genai.strict import ConfigError, validate

DISTRIBUTIONS = ("choice", "grid", "uniform", "loguniform", "randint", "quniform")


@dataclass(frozen=True)
class Param:
    """One swept path and its distribution."""

    path: str
    kind: str
    args: tuple[Any, ...]

    def edge_values(self) -> list[Any]:
        """Values that must all validate: every choice, or both ends of a range."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":
            return [int(self.args[0]), int(self.args[1])]
        return [self.args[0], self.args[1]]

    @property
    def grid_values(self) -> list[Any] | None:
        """The finite values of a discrete parameter (None for continuous ones)."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":
            return list(range(int(self.args[0]), int(self.args[1]) + 1))
        if self.kind == "quniform":
            lo, hi, q = self.args
            return [round(lo + i * q, 12) for i in range(int(math.floor((hi - lo) / q + 1e-9)) + 1)]
        return None


@dataclass(frozen=True)
class SearchSpace:
    path: str
    params: tuple[Param, ...]

    @property
    def grid_size(self) -> int:
        """How many configs each sample expands to: Tune runs every combination of the `grid`
        parameters once per sample (1 when there are none)."""
        return math.prod(len(p.args) for p in self.params if p.kind == "grid")

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of a fully discrete space (for the grid baseline)."""
        values = [p.grid_values for p in self.params]
        if any(v is None for v in values):
            raise ConfigError(f"{self.path}: a continuous distribution has no finite grid")
        return [
            dict(zip([p.path for p in self.params], combo, strict=True))
            for combo in itertools.product(*values)
        ]


def trial_epochs(params: Mapping[str, Any], base_epochs: int) -> int:
    """A trial's epochs: its own ``train.epochs`` where the space sweeps it, else the base's."""
    return int(params.get("train.epochs") or base_epochs)


def most_epochs(space: SearchSpace, base_epochs: int) -> int:
    """The most epochs a trial of ``space`` can train (ASHA's max_t): the base's, or the largest
    ``train.epochs`` the space can draw."""
    swept = [int(v) for p in space.params if p.path == "train.epochs" for v in p.edge_values()]
    return max([base_epochs, *swept])


def _parse_param(key: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(
            f"{where}: {key}: expected one distribution, e.g. {{choice: [a, b]}}; allowed:"
            f" {', '.join(DISTRIBUTIONS)}"
        )
    kind, args = next(iter(spec.items()))
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: {key}: {kind!r} is not one of {', '.join(repr(d) for d in DISTRIBUTIONS)}"
        )
    if not isinstance(args, list):
        raise ConfigError(f"{where}: {key}: {kind} takes a list, got {args!r}")
    if kind in ("choice", "grid"):
        if not args:
            raise ConfigError(f"{where}: {key}: {kind} needs at least one value")
        return Param(key, kind, tuple(args))
    need = 3 if kind == "quniform" else 2
    if len(args) != need or not all(
        isinstance(a, int | float) and not isinstance(a, bool) for a in args
    ):
        shape = "[low, high, q]" if kind == "quniform" else "[low, high]"
        raise ConfigError(f"{where}: {key}: {kind} takes {shape} numbers, got {args!r}")
    low, high = args[0], args[1]
    if low > high:
        raise ConfigError(f"{where}: {key}: low {low} > high {high}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: {key}: loguniform needs low > 0, got {low}")
    if kind == "randint" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: {key}: randint takes whole numbers, got {args!r}")
    if kind == "quniform" and args[2] <= 0:
        raise ConfigError(f"{where}: {key}: quniform needs q > 0, got {args[2]}")
    return Param(key, kind, tuple(args))


def load_space(path: str | Path, base: RunConfig) -> SearchSpace:
    """Read and validate a space file against ``base``: every key is a real config path and every
    value it can take gives a valid config. Raises :class:`ConfigError` naming the key."""
    p = shipped(path)
    if not p.is_file():
        raise ConfigError(f"search space {str(p)!r} does not exist")
    try:
        tree = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(tree, dict) or not tree:
        raise ConfigError(f"{p}: expected a mapping of config paths to distributions")
    params = tuple(_parse_param(str(k), v, str(p)) for k, v in tree.items())
    base_tree = base.model_dump(mode="json")
    for param in params:
        for value in param.edge_values():
            try:
                validate(
                    RunConfig, apply_params(base_tree, {param.path: value}), what="trial config"
                )
            except ConfigError as err:
                detail = str(err).split("\n", 1)[-1]
                raise ConfigError(
                    f"{p}: {param.path} = {value!r} gives an invalid config:\n{detail}"
                ) from None
    return SearchSpace(str(path), params)  # the name as given, wherever the file was found


def loss_fields(name: str) -> set[str] | None:
    """The fields the loss config called ``name`` takes (None for an unknown name)."""
    union = typing.get_args(LossConfig)[0]
    for cls in typing.get_args(union):
        if typing.get_args(cls.model_fields["name"].annotation) == (name,):
            return set(cls.model_fields)
    return None


def apply_params(tree: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The base config tree with each swept path set. Where a loss slot's name changes, the old
    loss's own fields are dropped (``delta`` of huber means nothing to mse)."""
    for key, value in params.items():
        tree = set_path(tree, key, value)
    for slot, spec in (tree.get("loss") or {}).items():
        fields = loss_fields(spec.get("name")) if isinstance(spec, dict) else None
        if fields is not None:
            swept = {
                k.split(".")[2]
                for k in params
                if k.startswith(f"loss.{slot}.") and k.count(".") == 2
            }
            tree["loss"][slot] = {k: v for k, v in spec.items() if k in fields or k in swept}
    return tree


def trial_config(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    """The validated config of one trial."""
    return validate(
        RunConfig, apply_params(base.model_dump(mode="json"), params), what="trial config"
    )
