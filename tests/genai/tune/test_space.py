"""Search spaces are validated completely, quickly, and without Ray."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai.config import RunConfig
from genai.configfile import load_config
from genai.strict import ConfigError
from genai.tune.space import apply_params, load_space, trial_config

ROOT = Path(__file__).resolve().parents[3]
BASE = RunConfig()
GAN = load_config(RunConfig, data={"model.family": "gan", "data.source": "ring8"})


def space_file(tmp_path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


SHIPPED = [
    ("vae_loss_weights", BASE),
    ("gan_losses", GAN),
    (
        "diffusion_arch",
        load_config(RunConfig, data={"model.family": "diffusion", "data.source": "ring8"}),
    ),
    ("autoregressive_arch", load_config(RunConfig, data={"model.family": "autoregressive"})),
    (
        "digits_autoregressive_sampling",
        load_config(
            RunConfig,
            ROOT / "configs/autoregressive.yaml",
            overrides=["model.autoregressive.body=transformer"],
        ),
    ),
    (
        "digits_autoregressive_made",
        load_config(RunConfig, ROOT / "configs/autoregressive.yaml"),
    ),
    (
        "digits_diffusion_schedule",
        load_config(RunConfig, ROOT / "configs/recipes/digits-diffusion.yaml"),
    ),
]


def test_every_shipped_space_is_checked():
    assert {name for name, _ in SHIPPED} == {p.stem for p in (ROOT / "tune_spaces").glob("*.yaml")}


@pytest.mark.parametrize(("name", "base"), SHIPPED)
def test_shipped_spaces_are_valid(name, base):
    space = load_space(ROOT / "tune_spaces" / f"{name}.yaml", base)
    assert len(space.params) >= 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model.arch.widht: {choice: [8, 16]}",
            "model.arch.widht = 8 gives an invalid config:\nmodel.arch.widht: unknown field 'widht'",
        ),
        ("loss.kl.weight: {choice: []}", "loss.kl.weight: choice needs at least one value"),
        ("loss.kl.weight: {uniform: [2, 1]}", "loss.kl.weight: low 2 > high 1"),
        (
            "loss.kl.weight: {normal: [0, 1]}",
            "loss.kl.weight: 'normal' is not one of 'choice', 'grid', 'uniform', 'loguniform', 'randint', 'quniform'",
        ),
        ("loss.kl.weight: {loguniform: [0, 1]}", "loss.kl.weight: loguniform needs low > 0"),
        (
            "loss.kl.weight: {uniform: [0, one]}",
            "loss.kl.weight: uniform takes [low, high] numbers",
        ),
        ("model.arch.depth: {randint: [1, 2.5]}", "model.arch.depth: randint takes whole numbers"),
        (
            "loss.reconstruction.name: {choice: [mse, hinge]}",
            "loss.reconstruction.name = 'hinge' gives an invalid config:\nloss.reconstruction.name: 'hinge' is not one of 'mse', 'mae', 'huber', 'bce'",
        ),
        ("model.arch.width: {uniform: [-5, 10]}", "model.arch.width = -5 gives an invalid config"),
        ("model.arch.width: 64", "model.arch.width: expected one distribution"),
    ],
)
def test_bad_space_fails_fast_naming_the_key(tmp_path, text, message):
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_space(space_file(tmp_path, text), BASE)
    assert time.monotonic() - start < 1.0
    assert message in str(info.value)


def test_a_bad_space_never_starts_ray(tmp_path):
    path = space_file(tmp_path, "model.arch.widht: {choice: [8]}")
    code = (
        "import sys\n"
        "from genai.config import RunConfig\n"
        "from genai.strict import ConfigError\n"
        "from genai.tune.space import load_space\n"
        f"try:\n    load_space({str(path)!r}, RunConfig())\nexcept ConfigError as e:\n    print('ERR', e)\n"
        "print('ray imported' if 'ray' in sys.modules else 'ray never imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert "ERR" in out.stdout and "ray never imported" in out.stdout, out.stdout + out.stderr


def test_changing_a_loss_drops_the_old_losses_fields():
    base = load_config(
        RunConfig, data={"loss.reconstruction.name": "huber", "loss.reconstruction.delta": 0.5}
    )
    tree = apply_params(base.model_dump(mode="json"), {"loss.reconstruction.name": "mse"})
    assert tree["loss"]["reconstruction"] == {"name": "mse", "weight": 1.0}
    assert (
        trial_config(base, {"loss.reconstruction.name": "mse", "loss.kl.weight": 3.0})
        .loss["kl"]
        .weight
        == 3.0
    )


def test_grid_of_a_discrete_space(tmp_path):
    space = load_space(
        space_file(
            tmp_path, "model.arch.width: {grid: [8, 16]}\nmodel.arch.depth: {randint: [1, 3]}\n"
        ),
        BASE,
    )
    assert len(space.grid()) == 6
    assert space.grid_size == 2  # Tune expands only `grid` per sample; randint is sampled
    continuous = load_space(space_file(tmp_path, "loss.kl.weight: {uniform: [0.1, 1]}"), BASE)
    assert continuous.grid_size == 1
    with pytest.raises(ConfigError, match="no finite grid"):
        continuous.grid()
