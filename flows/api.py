"""The Python API: the ``genai`` commands as functions, for a notebook or a script.

    from flows import api

    data = api.prepare(source="ring8", n=2000, store="file:///tmp/store")
    run = api.train("configs/gan.yaml", overrides=["train.epochs=5"], store="file:///tmp/store")
    scores = api.evaluate(run["run_id"], store="file:///tmp/store")

Each function checks its input first (a :class:`genai.errors.UserError` names the field and the
allowed values), answers from the store when the result is already there (no Prefect, no Ray),
and otherwise starts or joins the Ray and Prefect server that genai commands share
(:mod:`flows.services`) and runs the stage's Prefect flow. Each returns the result record, the
fields ``genai <command> --json`` prints and more. A config is a YAML path (``configs/...`` and
``tune_spaces/...`` resolve to the copies that ship with genai when the working directory has
none), a dict, or a typed config (:mod:`genai.config`); ``overrides`` are ``--set`` strings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from genai.compare.cells import (
    check_selection,
    finished_comparison,
    primary_metric,
)
from genai.config import (
    CompareConfig,
    DataConfig,
    EvaluateConfig,
    GenerateConfig,
    PipelineConfig,
    RunConfig,
    SweepConfig,
)
from genai.configfile import load_config
from genai.data.feature_spec import trained
from genai.data.prepare import find_prepared
from genai.pipeline import DEMO, base_config, finished_pipeline
from genai.storage import ArtifactStore
from genai.strict import StrictModel
from genai.train.runs import check_run, find_finished
from genai.tune.record import finished_sweep, ranking, sweep_id_for
from genai.tune.space import load_space

# Imported where the work starts, never on the answer-from-store path: the flows import Prefect
# (flows.*, 1.5-2 s), the services Ray, and evaluate/generate torch (genai.evaluate.evaluate,
# genai.generate: 1.4 s); a finished result answers in well under a second without them.

M = TypeVar("M", bound=StrictModel)
Config = str | Path | Mapping[str, Any] | StrictModel | None
OnBoot = Callable[[str], None]  # called with the command's name before the services start


def load(
    model: type[M],
    config: Config,
    overrides: Iterable[str] = (),
    *,
    data: dict[str, Any] | None = None,
    prefix: str = "",
) -> M:
    """A typed config from a path, a dict or a config, with ``--set``-style overrides and
    ``data`` fields (dotted keys) over it."""
    overrides = list(overrides)
    if isinstance(config, StrictModel):
        if isinstance(config, model) and not overrides and not data:
            return config
        config = config.model_dump(mode="json")
    return load_config(model, config, overrides=overrides, data=data, prefix=prefix)


FLOW_MODULES = {"run": "pipeline"}  # a command's flow module, where it is not its name


def _stored_or_flow(
    stored: dict[str, Any] | None,
    command: str,
    flow: Callable[[str | None], dict[str, Any]],
    *,
    ray_address: str | None = None,
    on_boot: OnBoot | None = None,
) -> dict[str, Any]:
    """The stored result if there is one; else bring up Prefect and Ray and run ``flow`` (given
    the Ray address to join)."""
    if stored is not None:
        return stored
    from flows.services import services  # Ray and the Prefect server: only when work runs

    if on_boot is not None:
        on_boot(command)
    module = f"flows.{FLOW_MODULES.get(command, command)}"  # imported while a server starts
    return flow(services(ray_address, meanwhile=lambda: importlib.import_module(module)))


def prepare(
    source: str | None = None,
    *,
    config: Config = None,
    store: str | None = None,
    ray_address: str | None = None,
    no_wait: bool = False,
    on_boot: OnBoot | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Prepare a dataset (``genai prepare``): ``source`` and any data field (``n``, ``seed``,
    ``uri``, ``columns``, ``label_column``, ``name``, ...) over ``config``. ``created`` is False
    when the same version was already in the store."""
    given = {k: v for k, v in {"source": source, **fields}.items() if v is not None}
    data = load(DataConfig, config, data=given, prefix="data")
    checked = ArtifactStore(store)  # fail on a bad store before any compute
    found = find_prepared(data, checked)  # no Prefect, no Ray
    if found is not None and not trained(checked, found.manifest):
        found = None  # the dataset is there, its feature network not yet
    stored = found and found.record(checked)

    def flow(address: str | None) -> dict[str, Any]:
        from flows.prepare import prepare_data

        return prepare_data(data=data, store=checked.uri, ray_address=address, wait=not no_wait)

    return _stored_or_flow(stored, "prepare", flow, ray_address=ray_address, on_boot=on_boot)


def train(
    config: Config = None,
    *,
    overrides: Iterable[str] = (),
    store: str | None = None,
    ray_address: str | None = None,
    no_wait: bool = False,
    on_boot: OnBoot | None = None,
) -> dict[str, Any]:
    """Train a model on Ray Train (``genai train``); the same job again resumes it or, when it
    finished, answers from the store (``reused`` True)."""
    run = load(RunConfig, config, overrides)
    checked = ArtifactStore(store)
    done = find_finished(run, checked)  # no Prefect, no Ray

    def flow(address: str | None) -> dict[str, Any]:
        from flows.train import train_flow

        return train_flow(run=run, store=checked.uri, ray_address=address, wait=not no_wait)

    stored = done and done.record()
    return _stored_or_flow(stored, "train", flow, ray_address=ray_address, on_boot=on_boot)


def sweep(
    config: Config = None,
    *,
    space: str | Path,
    overrides: Iterable[str] = (),
    store: str | None = None,
    ray_address: str | None = None,
    no_wait: bool = False,
    on_boot: OnBoot | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Sweep a search space on Ray Tune (``genai sweep``): any sweep field (``trials``,
    ``search``, ``scheduler``, ``repeats``, ``judge_every``, ``metric``) as a keyword."""
    run = load(RunConfig, config, overrides)
    given = {"space": str(space), **{k: v for k, v in fields.items() if v is not None}}
    cfg = load_config(SweepConfig, data=given, prefix="sweep")
    load_space(cfg.space, run)  # a bad space fails here, in well under a second, before Ray
    ranking(run, cfg)  # and a metric this data does not report
    checked = ArtifactStore(store)
    done = finished_sweep(checked, sweep_id_for(run, cfg.space, cfg))  # no Prefect, no Ray

    def flow(address: str | None) -> dict[str, Any]:
        from flows.sweep import sweep_flow

        return sweep_flow(
            run=run, sweep=cfg, store=checked.uri, ray_address=address, wait=not no_wait
        )

    stored = done and done.record()
    return _stored_or_flow(stored, "sweep", flow, ray_address=ray_address, on_boot=on_boot)


def evaluate(
    run_id: str,
    *,
    store: str | None = None,
    ray_address: str | None = None,
    on_boot: OnBoot | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Judge a trained run (``genai evaluate``): ``n_samples``, ``split``, ``seed``, ``sampler``,
    ``ddim_steps``, ``eta``, ``batch_size`` as keywords.
    ``metrics`` and their ``floors`` (the same metric between the data's own splits)."""
    from genai.evaluate.evaluate import stored_evaluation  # torch

    given = {k: v for k, v in fields.items() if v is not None}
    cfg = load_config(EvaluateConfig, data=given, prefix="evaluate")
    checked = ArtifactStore(store)
    check_run(checked, run_id)  # an unknown run fails here, before any flow starts
    done = stored_evaluation(checked, run_id, cfg)  # no Prefect, no Ray

    def flow(address: str | None) -> dict[str, Any]:
        from flows.evaluate import evaluate_flow

        return evaluate_flow(run_id=run_id, evaluate=cfg, store=checked.uri, ray_address=address)

    stored = done and done.summary()
    result = _stored_or_flow(stored, "evaluate", flow, ray_address=ray_address, on_boot=on_boot)
    return {**result, "n_samples": cfg.n_samples, "split": cfg.split}


def generate(
    run_id: str,
    *,
    store: str | None = None,
    ray_address: str | None = None,
    on_boot: OnBoot | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Draw samples from a trained run (``genai generate``): ``n``, ``seed``, ``sampler``,
    ``ddim_steps``, ``eta``, ``batch_size`` as keywords.
    ``files`` names the samples' Parquet and the pictures."""
    from genai.generate import stored_samples  # torch

    given = {k: v for k, v in fields.items() if v is not None}
    cfg = load_config(GenerateConfig, data=given, prefix="generate")
    checked = ArtifactStore(store)
    check_run(checked, run_id)  # an unknown run fails here, before any flow starts

    def flow(address: str | None) -> dict[str, Any]:
        from flows.generate import generate_flow

        return generate_flow(run_id=run_id, generate=cfg, store=checked.uri, ray_address=address)

    done = stored_samples(checked, run_id, cfg)  # no Prefect, no Ray
    stored = done and done.record()
    return _stored_or_flow(stored, "generate", flow, ray_address=ray_address, on_boot=on_boot)


def run(
    config: Config = None,
    *,
    overrides: Iterable[str] = (),
    store: str | None = None,
    ray_address: str | None = None,
    force: bool = False,
    no_wait: bool = False,
    on_boot: OnBoot | None = None,
) -> dict[str, Any]:
    """The main job (``genai run``): prepare -> sweep -> retrain the best -> evaluate ->
    generate. Without a config, the demo (configs/demo.yaml). Returns the pipeline's summary."""
    cfg = load(PipelineConfig, DEMO if config is None else config, overrides)
    load_space(cfg.sweep.space, base_config(cfg))  # before anything starts
    ranking(base_config(cfg), cfg.sweep)
    checked = ArtifactStore(store)

    def flow(address: str | None) -> dict[str, Any]:
        from flows.pipeline import pipeline_flow

        return pipeline_flow(config=cfg, store=checked.uri, ray_address=address, force=force,
                             wait=not no_wait)  # fmt: skip

    stored = None if force else finished_pipeline(cfg, checked)  # no Prefect, no Ray
    return _stored_or_flow(stored, "run", flow, ray_address=ray_address, on_boot=on_boot)


def compare(
    config: Config = None,
    *,
    overrides: Iterable[str] = (),
    store: str | None = None,
    ray_address: str | None = None,
    no_wait: bool = False,
    on_boot: OnBoot | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Compare every family and loss on one data (``genai compare``): ``config`` is a compare
    YAML (``data``, ``families``, ``losses``, ``seeds``, ``budgets``, ``metric``, ``evaluate``,
    ``overrides``); any of those fields as a keyword over it, and ``source``, ``uri``, ``n``
    for its data. ``overrides`` are ``--set`` strings applied to every cell's recipe. Returns
    the summary: ``verdict``, ``leaderboard``, ``files``, ``counts`` (models trained now and
    found in the store)."""
    data = {f"data.{k}": fields.pop(k) for k in ("source", "uri", "n") if fields.get(k) is not None}
    given = {k: v for k, v in fields.items() if v is not None} | data
    cfg = load(CompareConfig, config, data=given, prefix="compare")
    if overrides:  # after the config's own
        tree = cfg.model_dump(mode="json")
        cfg = load(CompareConfig, tree | {"overrides": [*cfg.overrides, *overrides]})
    primary_metric(cfg)  # a metric the data does not report fails here, before anything starts
    check_selection(cfg)  # and a loss the data does not allow
    checked = ArtifactStore(store)
    stored = finished_comparison(checked, cfg)  # no Prefect, no Ray

    def flow(address: str | None) -> dict[str, Any]:
        from flows.compare import compare_flow

        return compare_flow(config=cfg, store=checked.uri, ray_address=address, wait=not no_wait)

    return _stored_or_flow(stored, "compare", flow, ray_address=ray_address, on_boot=on_boot)
