"""Every shipped config and search space validates, and the quality benchmark's recipes are them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from genai.config import CompareConfig, PipelineConfig, RunConfig
from genai.configfile import load_config, read_yaml
from genai.pipeline import base_config
from genai.tune.space import load_space

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "compare")
COMPARES = sorted((ROOT / "configs" / "compare").glob("*.yaml"))


def bench_quality():
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_validates(path):
    model = PipelineConfig if "sweep" in read_yaml(path) else RunConfig
    cfg = load_config(model, path)
    assert cfg.model.family in {"vae", "gan", "diffusion", "autoregressive"}
    if isinstance(cfg, PipelineConfig):  # its search space fits its config
        assert load_space(ROOT / cfg.sweep.space, base_config(cfg)).params


@pytest.mark.parametrize("path", COMPARES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_compare_config_validates(path):
    from genai.compare.cells import check_selection, primary_metric, selection

    cfg = load_config(CompareConfig, path)
    check_selection(cfg)
    assert primary_metric(cfg) and selection(cfg)


def test_quality_recipes_are_shipped_configs_of_their_dataset_and_family():
    quality = bench_quality()
    datasets = {"ring8", "grid25", "digits", "shapes", "photos"}
    assert {d for d, _ in quality.RECIPES} == datasets
    assert {f for _, f in quality.RECIPES} == set(quality.LOSSES)
    for (dataset, family), path in quality.RECIPES.items():
        assert (ROOT / path) in CONFIGS, path
        for loss in quality.losses(dataset, family)[1]:
            cfg = quality.config(dataset, family, loss, seed=2)
            assert (cfg.data.source, cfg.model.family) == (dataset, family)
            if loss == "wasserstein":  # the critic keeps WGAN-GP's penalty, whatever the recipe's
                assert cfg.loss["gradient_penalty"].name == "gradient_penalty"
            assert cfg.train.num_workers == 1 and cfg.train.seed == cfg.data.seed == 2
            shipped = load_config(RunConfig, ROOT / path)
            assert cfg.train.batch_size == shipped.train.batch_size * shipped.train.num_workers
            # a penalty the recipe lacks costs a second backward pass: fewer epochs, same CPU
            added = loss == "wasserstein" and "gradient_penalty" not in shipped.loss
            epochs = round(shipped.train.epochs * quality.WGAN_EPOCHS) if added else None
            assert cfg.train.epochs == (epochs or shipped.train.epochs)
            if dataset in quality.IMAGES_32 and family != "autoregressive":  # --conv's twin
                conv = quality.config(dataset, family, loss, seed=2, sets=quality.CONV_BODY)
                assert conv.model.arch.body == "conv"
                assert conv.model.model_dump(exclude={"arch"}) == cfg.model.model_dump(
                    exclude={"arch"}
                )
