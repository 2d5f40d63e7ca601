"""Configs: strict, typed, and errors that name the field and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai.config import DataConfig, PipelineConfig, RunConfig
from genai.configfile import apply_overrides, load_config, shipped
from genai.losses.slots import FAMILY_SLOTS, LossSlots, losses_of
from genai.strict import ConfigError


def error_of(model, data: dict, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(model, data=data, **kw)
    return str(info.value)


def test_family_misspelt_lists_the_families():
    msg = error_of(RunConfig, {"model.family": "vea"})
    assert "model.family: 'vea' is not one of 'vae', 'gan', 'diffusion', 'autoregressive'" in msg


def test_loss_misspelt_lists_the_slots_losses():
    msg = error_of(RunConfig, {"loss.reconstruction.name": "kll"})
    assert "loss.reconstruction.name: 'kll' is not one of 'mse', 'mae', 'huber', 'bce'" in msg
    msg = error_of(RunConfig, {"model.family": "gan", "loss.adversarial.name": "hinj"})
    assert "loss.adversarial.name: 'hinj' is not one of 'minimax', 'non_saturating'" in msg


def test_misspelt_slot_lists_the_familys_slots():
    msg = error_of(RunConfig, {"loss.reconstrution.name": "mse"})
    assert (
        "loss.reconstrution: 'vae' has no slot 'reconstrution';"
        " its slots are 'reconstruction', 'kl', 'perceptual'"
    ) in msg


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


def test_family_slots_are_read_off_the_one_slot_table():
    """Which family has which slot and which losses each takes: DESIGN section 5, read off
    LossSlots' fields (their types and Slot markers), so there is no second table to sync."""
    assert {f: dict(s) for f, s in FAMILY_SLOTS.items()} == {
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
            "gradient_penalty": (("gradient_penalty", "r1"), False),
            "feature_matching": (("feature_matching", "perceptual"), False),
        },
        "diffusion": {"noise": (("mse", "mae", "huber"), True)},
        "autoregressive": {"nll": (("cross_entropy",), True)},
    }
    for slot in LossSlots.model_fields:
        names = {c.model_fields["name"].default for c in losses_of(slot)}
        assert any(set(s[slot][0]) == names for s in FAMILY_SLOTS.values() if slot in s), slot


def test_loss_reads_as_a_mapping_of_filled_slots_and_dumps_only_those():
    cfg = load_config(RunConfig, data={"model.family": "gan", "loss.gradient_penalty.weight": 5})
    assert list(cfg.loss) == ["adversarial", "gradient_penalty"] == list(dict(cfg.loss))
    assert cfg.loss["gradient_penalty"].weight == 5 and "reconstruction" not in cfg.loss
    assert cfg.loss.get("noise") is None and len(cfg.loss) == 2
    with pytest.raises(KeyError):
        cfg.loss["kl"]
    dumped = cfg.model_dump(mode="json")["loss"]
    assert dumped == {
        "adversarial": {"weight": 1.0, "name": "non_saturating"},
        "gradient_penalty": {"weight": 5.0, "name": "gradient_penalty"},
    }
    assert RunConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_a_penalty_without_a_name_is_wgan_gp_and_r1_is_named():
    gan = {"model.family": "gan"}
    plain = load_config(RunConfig, data={**gan, "loss.gradient_penalty": {"weight": 2}})
    assert plain.loss["gradient_penalty"].name == "gradient_penalty"  # as every config before r1
    r1 = load_config(RunConfig, data={**gan, "loss.gradient_penalty": {"name": "r1"}})
    assert (r1.loss["gradient_penalty"].name, r1.loss["gradient_penalty"].weight) == ("r1", 1.0)
    with pytest.raises(ConfigError, match="loss.gradient_penalty.name: 'r2' is not one of"
                       " 'gradient_penalty', 'r1'"):  # fmt: skip
        load_config(RunConfig, data={**gan, "loss.gradient_penalty.name": "r2"})


def test_empty_slots_and_fields_as_a_form_sends_them_are_left_out():
    form = RunConfig().model_dump(mode="json")
    form["model"]["family"] = "gan"
    form["loss"] = {slot: None for slot in LossSlots.model_fields}
    form["loss"]["adversarial"] = {"name": "hinge", "weight": 2, "delta": None}
    cfg = RunConfig.model_validate(form)
    assert dict(cfg.loss) == {"adversarial": cfg.loss["adversarial"]}
    assert cfg.loss["adversarial"].name == "hinge" and cfg.loss["adversarial"].weight == 2
    form["loss"]["adversarial"]["delta"] = 1.0  # a field hinge does not take
    msg = str(pytest.raises(ConfigError, load_config, RunConfig, data=form).value)
    assert "loss.adversarial.delta: unknown field 'delta'; allowed fields: weight, name" in msg


def test_slot_json_schema_is_one_form_with_a_loss_dropdown():
    props = RunConfig.model_json_schema()["$defs"]["LossSlots"]["properties"]
    form, empty = props["reconstruction"]["anyOf"]
    assert empty == {"type": "null"} and form["additionalProperties"] is False
    assert form["properties"]["name"]["enum"] == ["mse", "mae", "huber", "bce"]
    assert "huber only" in form["properties"]["delta"]["description"]
    assert "default" not in form["properties"]["delta"]  # not sent for mse
    assert props["adversarial"]["anyOf"][0]["properties"]["name"]["enum"] == [
        "minimax", "non_saturating", "hinge", "least_squares", "wasserstein"
    ]  # fmt: skip


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


def test_shipped_configs_and_spaces_resolve_from_any_directory(tmp_path, monkeypatch):
    checkout = shipped("configs/vae.yaml").resolve()
    monkeypatch.chdir(tmp_path)
    assert shipped("configs/vae.yaml") == checkout and checkout.is_file()
    assert shipped("tune_spaces/gan_losses.yaml").is_file()
    assert load_config(RunConfig, "configs/gan.yaml").model.family == "gan"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "vae.yaml").write_text("model: {family: gan}\n")
    assert shipped("configs/vae.yaml") == Path("configs/vae.yaml")  # the working directory's wins
    assert shipped("other/vae.yaml") == Path("other/vae.yaml")  # only the shipped folders
    with pytest.raises(ConfigError, match="config file 'configs/nope.yaml' does not exist"):
        load_config(RunConfig, "configs/nope.yaml")


OLD_VAE_SPACE = """\
# beta-VAE on digits: which reconstruction loss, with which beta (KL weight), at which width and
# latent size, with which learning rate? (bench/quality.py: beta, latent size and width move
# digits' FID the most.)
loss.reconstruction.name: {choice: [mse, bce, huber]}
loss.kl.weight: {loguniform: [0.1, 10]}
model.arch.width: {choice: [16, 32]}
model.arch.latent_dim: {choice: [8, 16]}
train.lr: {loguniform: [0.001, 0.005]}
"""  # tune_spaces/vae_loss_weights.yaml until the demo's space changed


OLD_AR_RECIPE = """
data: {source: digits}
model:
  family: autoregressive
  arch: {layers: 2, heads: 4, d_model: 64}
  autoregressive: {bins: 17, temperature: 0.9}
loss:
  nll: {name: cross_entropy}
train: {epochs: 50, batch_size: 32, lr: 0.002, schedule: cosine, num_workers: 2}
"""  # configs/autoregressive.yaml while it was the transformer


def test_ids_of_earlier_configs_stay_as_they_were(tmp_path):
    """Run and sweep ids hash the config (a sweep's, its space's text too); a field added later
    stays out of the hash at its default (config.LATER_DEFAULTS), so what the store holds is
    still found. These are the ids the shipped configs had before data.label_uri and
    data.image_labels existed (the sweep's: with the search space of that time)."""
    from genai.config import SweepConfig
    from genai.pipeline import pipeline_id_for
    from genai.train.runs import run_id_for
    from genai.tune.record import sweep_id_for

    run = load_config(RunConfig, "configs/vae.yaml")
    assert run_id_for(run, "v1") == "vae-614a6ebc92c1"
    (tmp_path / "vae_loss_weights.yaml").write_text(OLD_VAE_SPACE)  # the text, comments too
    space = str(tmp_path / "vae_loss_weights.yaml")
    assert sweep_id_for(run, space, SweepConfig()) == "vae_loss_weights-81287d062eb2"
    # a pipeline's id also hashes its space's text: the demo with today's space is a new pipeline
    demo = load_config(PipelineConfig, "configs/demo.yaml")
    assert pipeline_id_for(demo) == "demo-39005f721e4b"
    space = tmp_path / "space.yaml"  # the same path, edited: another pipeline
    mine = demo.model_copy(update={"sweep": demo.sweep.model_copy(update={"space": str(space)})})
    space.write_text(shipped(demo.sweep.space).read_text())
    before = pipeline_id_for(mine)
    space.write_text(space.read_text() + "train.batch_size: {choice: [32]}\n")
    assert pipeline_id_for(mine) != before
    other = load_config(RunConfig, "configs/vae.yaml", overrides=["data.image_labels=true"])
    assert run_id_for(other, "v1") == "vae-614a6ebc92c1"  # the default, given: the same run
    # model.autoregressive.body came later still (one level deeper): the transformer keeps its id
    (tmp_path / "ar.yaml").write_text(OLD_AR_RECIPE)
    ar = load_config(RunConfig, tmp_path / "ar.yaml")
    assert run_id_for(ar, "v1") == "autoregressive-e98c5d2e58cf"
    given = load_config(RunConfig, tmp_path / "ar.yaml",
                        overrides=["model.autoregressive.body=transformer"])  # fmt: skip
    assert run_id_for(given, "v1") == "autoregressive-e98c5d2e58cf"
    made = load_config(RunConfig, tmp_path / "ar.yaml",
                       overrides=["model.autoregressive.body=made"])  # fmt: skip
    assert run_id_for(made, "v1") != "autoregressive-e98c5d2e58cf"
    # model.diffusion.attention and eta came with the 32x32 bodies: the DDPM keeps its id
    ddpm = load_config(RunConfig, "configs/diffusion.yaml")
    assert run_id_for(ddpm, "v1") == "diffusion-70aa4c921bd7"
    for given in ("model.diffusion.eta=0.0", "model.diffusion.attention=false"):
        same = load_config(RunConfig, "configs/diffusion.yaml", overrides=[given])
        assert run_id_for(same, "v1") == "diffusion-70aa4c921bd7"
    noisy = load_config(RunConfig, "configs/diffusion.yaml", overrides=["model.diffusion.eta=1"])
    assert run_id_for(noisy, "v1") != "diffusion-70aa4c921bd7"


def test_model_options_are_per_family():
    """model.gan, model.diffusion, model.autoregressive: each only where model.family takes it."""
    msg = error_of(RunConfig, {"model.family": "gan", "model.diffusion.timesteps": 10})
    assert (
        "model.diffusion.timesteps: an option of the diffusion family, but model.family is 'gan'"
        " (the gan family takes arch, class_path, gan); set model.family: diffusion, or leave it"
        " out"
    ) in msg
    assert "model.gan.n_critic: an option of the gan family, but model.family is 'vae'" in (
        error_of(RunConfig, {"model.gan.n_critic": 2})
    )
    # what the UI's form sends for the sections of the families not chosen: null, or every
    # family's defaults (as it did in tests/flows/test_deployments.py): says nothing
    cfg = RunConfig.model_validate({"model": {"family": "gan", "diffusion": None}})
    assert cfg.model.gan.n_critic == 1 and "diffusion" not in cfg.model.model_dump()
    form = {"family": "gan", "gan": {"n_critic": 2}, "autoregressive": {"temperature": 1},
            "diffusion": {"timesteps": 100, "schedule": "cosine", "sampler": "ddpm"}}  # fmt: skip
    assert (
        RunConfig.model_validate({"model": form}).model
        == load_config(RunConfig, data={"model.family": "gan", "model.gan.n_critic": 2}).model
    )
    assert RunConfig.model_validate({"model": {"arch": {"width": 8}}}).model.family == "vae"
