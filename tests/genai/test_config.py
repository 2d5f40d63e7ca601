"""Configs: strict, typed, and errors that name the field and the allowed values."""

from __future__ import annotations

import pytest

from genai.config import (
    DataConfig,
    PipelineConfig,
    RunConfig,
    apply_overrides,
    load_config,
)
from genai.strict import ConfigError


def error_of(model, data: dict, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(model, data=data, **kw)
    return str(info.value)


def test_family_misspelt_lists_the_families():
    msg = error_of(RunConfig, {"model.family": "vea"})
    assert "model.family: 'vea' is not one of 'vae', 'gan', 'diffusion', 'autoregressive'" in msg


def test_loss_misspelt_lists_the_losses():
    msg = error_of(RunConfig, {"loss.reconstruction.name": "kll"})
    assert "loss.reconstruction: 'kll' is not one of" in msg
    assert "'kl'" in msg and "'mse'" in msg and "'hinge'" in msg


def test_loss_not_allowed_in_slot_names_slot_and_choices():
    msg = error_of(RunConfig, {"loss.reconstruction.name": "hinge"})
    assert "loss.reconstruction.name: 'hinge' is not one of 'mse', 'mae', 'huber', 'bce'" in msg


def test_slot_of_another_family_is_rejected():
    msg = error_of(RunConfig, {"model.family": "diffusion", "loss.kl.name": "kl"})
    assert "loss.kl: 'diffusion' has no slot 'kl'; its slots are 'noise'" in msg


def test_unknown_field_names_the_allowed_fields():
    msg = error_of(RunConfig, {"data.sourc": "digits"})
    assert "data.sourc: unknown field 'sourc'; allowed fields: source, n, seed" in msg


def test_negative_weight_and_n_name_their_paths():
    assert "loss.kl.weight: Input should be greater than or equal to 0 (got -1)" in error_of(
        RunConfig, {"loss.kl.weight": -1}
    )
    assert "data.n: Input should be greater than 0 (got -5)" in error_of(
        RunConfig, {"data.source": "ring8", "data.n": -5}
    )


def test_cross_field_checks_say_how_to_fix():
    assert "data.uri: required when source is 'parquet'" in error_of(
        DataConfig, {"source": "parquet"}, prefix="data"
    )
    assert "data.n: only generated sources take n" in error_of(
        DataConfig, {"source": "digits", "n": 10}, prefix="data"
    )
    msg = error_of(RunConfig, {"data.split.train": 0.7})
    assert "data.split: train + val + test must be 1" in msg
    msg = error_of(RunConfig, {"data.source": "moons", "model.arch.body": "conv"})
    assert "model.arch.body: 'conv' needs image data; data.source 'moons' gives vectors" in msg
    msg = error_of(RunConfig, {"data.source": "ring8", "loss.reconstruction.name": "bce"})
    assert "loss.reconstruction.name: 'bce' needs data in [0, 1]" in msg


def test_defaults_fill_required_slots_and_are_frozen():
    cfg = RunConfig()
    assert set(cfg.loss) == {"reconstruction", "kl"}
    gan = load_config(RunConfig, data={"model.family": "gan"})
    assert gan.loss["adversarial"].name == "non_saturating"
    with pytest.raises(Exception, match="frozen"):
        cfg.train.epochs = 3


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model:\n  family: gan\nloss:\n  adversarial: {name: hinge}\ntrain:\n  epochs: 3\n"
    )
    cfg = load_config(RunConfig, path, overrides=["train.epochs=5", "loss.adversarial.weight=0.5"])
    assert cfg.model.family == "gan"
    assert cfg.train.epochs == 5
    assert cfg.loss["adversarial"].weight == 0.5
    assert apply_overrides({}, ["a.b=[1, 2]"]) == {"a": {"b": [1, 2]}}


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(RunConfig, bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(RunConfig, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(RunConfig, overrides=["train.epochs"])


def test_every_stage_has_a_strict_model():
    cfg = load_config(PipelineConfig, data={"sweep.trials": 3, "generate.n": 16})
    assert cfg.sweep.trials == 3 and cfg.generate.n == 16
    for path in ("sweep.bogus", "evaluate.bogus", "generate.bogus", "train.bogus", "model.arch.x"):
        assert "unknown field" in error_of(PipelineConfig, {path: 1})
    assert "sweep.search: 'grid' is not one of 'random', 'optuna'" in error_of(
        PipelineConfig, {"sweep.search": "grid"}
    )
