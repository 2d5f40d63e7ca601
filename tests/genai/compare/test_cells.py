"""What a comparison trains, planned without torch or Ray: the cells a selection names, each
cell's run config from its recipe, content keys, and bad selections refused before anything
starts."""

from __future__ import annotations

import pytest

from genai.compare.cells import (
    RECIPES,
    cell_config,
    cell_key,
    check_selection,
    comparison_id_for,
    epochs_for,
    primary_metric,
    recipe_dataset,
    selection,
)
from genai.config import CompareConfig, DataConfig, RunConfig, main_losses
from genai.configfile import load_config
from genai.strict import ConfigError


def compare(**fields) -> CompareConfig:
    return load_config(CompareConfig, data=fields, prefix="compare")


def test_the_default_selection_is_every_family_with_every_main_loss():
    cells = selection(compare())
    assert len(cells) == 4 + 5 + 3 + 1
    assert [loss for f, loss in cells if f == "gan"] == list(main_losses("gan"))
    assert ("vae", "bce") in cells and ("autoregressive", "cross_entropy") in cells
    chosen = selection(compare(families=["gan", "vae"], losses=["hinge", "mse"]))
    assert chosen == [("gan", "hinge"), ("vae", "mse")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"families": ["vae"], "losses": ["hinge"]}, "compare.losses: 'hinge' is no loss of the"
         " main slot of vae; allowed: vae (reconstruction): mse, mae, huber, bce"),
        ({"budgets": [0]}, "compare.budgets.0: Input should be greater than 0"),
        ({"seeds": 0}, "compare.seeds: Input should be greater than 0"),
        ({"families": ["gan", "gan"]}, "compare.families: ['gan', 'gan'] names a value twice"),
        ({"families": ["flow"]}, "compare.families.0: 'flow' is not one of 'vae', 'gan', 'diffusion',"),
    ],
)  # fmt: skip
def test_a_bad_selection_names_the_field(fields, message):
    with pytest.raises(ConfigError) as err:
        compare(**fields)
    assert message in str(err.value)


def test_a_named_loss_the_data_does_not_allow_fails_before_anything_starts():
    cfg = compare(**{"data.source": "ring8", "families": ["vae"], "losses": ["bce"]})
    with pytest.raises(ConfigError, match="(?s)vae/bce .*'bce' needs data in \\[0, 1\\]"):
        check_selection(cfg)
    check_selection(compare(**{"data.source": "ring8", "families": ["vae"]}))  # bce left out later
    with pytest.raises(ConfigError, match="(?s)none of the 4 selected cells is valid;.*widht"):
        check_selection(compare(**{"data.source": "ring8", "families": ["vae"],
                                   "overrides": ["model.arch.widht=3"]}))  # fmt: skip
    with pytest.raises(ConfigError, match="compare.metric: 'fid' is not reported"):
        primary_metric(compare(**{"data.source": "ring8", "metric": "fid"}))
    assert primary_metric(compare(**{"data.source": "digits"})) == "fid"
    assert primary_metric(compare(**{"data.source": "moons"})) == "mmd2"


def test_a_cell_is_its_recipe_with_the_loss_the_seed_and_one_worker():
    cfg = compare(**{"data.source": "photos", "overrides": ["train.lr=0.0003"]})
    run = cell_config(cfg, "gan", "wasserstein", 2, "photos")
    recipe = load_config(RunConfig, RECIPES["photos", "gan"])
    assert run.loss["adversarial"].name == "wasserstein"
    assert run.loss["gradient_penalty"].name == "gradient_penalty"  # WGAN-GP's constraint
    assert (run.data.seed, run.train.seed, run.train.lr) == (2, 2, 0.0003)
    assert run.train.num_workers == 1
    assert run.train.batch_size == recipe.train.batch_size * recipe.train.num_workers
    assert run.model == recipe.model and run.train.epochs == recipe.train.epochs


def test_recipes_by_dataset_or_kind():
    assert recipe_dataset(DataConfig(source="ring8")) == "ring8"
    assert recipe_dataset(DataConfig(source="moons")) == "ring8"
    images = DataConfig(source="images", uri="/tmp/x")
    assert recipe_dataset(images, [3, 64, 64]) == "photos"
    assert recipe_dataset(images, [3, 16, 16]) == "digits"
    assert {d for d, _ in RECIPES} == {"ring8", "grid25", "digits", "shapes", "photos"}
    assert {f for _, f in RECIPES} == {"vae", "gan", "diffusion", "autoregressive"}


def test_keys_change_with_what_the_model_is_and_how_it_is_judged():
    cfg = compare(**{"data.source": "ring8"})
    run = cell_config(cfg, "vae", "mse", 0, "ring8")
    key = cell_key(run, "v1", {"n_samples": 1000}, 500)
    assert key == cell_key(run, "v1", {"n_samples": 1000}, 500)  # content, nothing else
    other = run.model_copy(update={"train": run.train.model_copy(update={"epochs": 3})})
    assert len({key, cell_key(other, "v1", {"n_samples": 1000}, 500),
                cell_key(run, "v2", {"n_samples": 1000}, 500),
                cell_key(run, "v1", {"n_samples": 999}, 500)}) == 4  # fmt: skip
    assert comparison_id_for(cfg).startswith("compare-")
    assert comparison_id_for(cfg) != comparison_id_for(compare(**{"data.source": "ring8",
                                                                   "seeds": 4}))  # fmt: skip
    assert epochs_for(300, 22) == 14 and epochs_for(1, 22) == 1 and epochs_for(44, 22) == 2


def test_the_data_a_cell_gets_does_not_depend_on_which_fields_were_set():
    """A UI form or a re-validated dump sets every data field: the recipe's ring8 `n: 100000`
    stays unless the compare's own `n` differs from the default, and the id is the same."""
    given = compare(**{"data.source": "ring8", "families": ["gan"]})
    dumped = CompareConfig.model_validate(given.model_dump(mode="json"))
    for cfg in (given, dumped):
        assert cell_config(cfg, "gan", "hinge", 1, "ring8").data.n == 100000
    assert comparison_id_for(given) == comparison_id_for(dumped)
    smaller = compare(**{"data.source": "ring8", "data.n": 2000, "families": ["gan"]})
    assert cell_config(smaller, "gan", "hinge", 1, "ring8").data.n == 2000


def test_a_batch_the_user_sets_is_not_multiplied_by_the_recipes_workers():
    recipe = load_config(RunConfig, RECIPES["digits", "vae"])  # 2 workers
    cfg = compare(**{"data.source": "digits"})
    assert cell_config(cfg, "vae", "mse", 0, "digits").train.batch_size == (
        recipe.train.batch_size * recipe.train.num_workers
    )
    mine = compare(**{"data.source": "digits", "overrides": ["train.batch_size=32"]})
    assert cell_config(mine, "vae", "mse", 0, "digits").train.batch_size == 32


def test_more_workers_per_model_are_refused_before_anything_starts():
    cfg = compare(**{"data.source": "digits", "overrides": ["train.num_workers=2"]})
    with pytest.raises(ConfigError, match="compare.overrides: train.num_workers: a comparison"):
        check_selection(cfg)
