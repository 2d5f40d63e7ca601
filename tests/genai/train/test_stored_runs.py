"""Runs stored before model options were per family (config.json holds every family's options)
still load, resume and evaluate; a misplaced option is an error that names it and the family."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from genai import layout
from genai.config import EvaluateConfig, GenerateConfig, RunConfig
from genai.configfile import load_config
from genai.evaluate.evaluate import evaluate_run
from genai.generate import generate
from genai.model_config import FORMER_MODEL_SECTIONS
from genai.storage import ArtifactStore
from genai.train.launcher import train_local
from genai.train.runs import read_config, read_history, write_metrics
from genai.train.trained import load_trained

pytestmark = pytest.mark.usefixtures("ray_cluster")

DIFFUSION = {
    "data.source": "ring8",
    "data.n": 800,
    "model.family": "diffusion",
    "model.arch.width": 32,
    "model.diffusion.timesteps": 20,
    "model.diffusion.sample_steps": 5,
    "train.epochs": 2,
    "train.batch_size": 64,
    "train.keep_checkpoints": 2,
}


def as_stored_before(store: ArtifactStore, run_id: str) -> dict:
    """Rewrite the run's config.json as genai wrote it before: every family's options, and
    another family's option set (which the earlier genai accepted and ignored)."""
    saved = store.read_json(layout.run_config(run_id))
    model = saved["config"]["model"]
    for family, section in FORMER_MODEL_SECTIONS.items():
        model.setdefault(family, {**section, "body": "transformer"} if family == "autoregressive"
                         else section)  # fmt: skip
    model["gan"] = {"n_critic": 5}
    store.write_json(layout.run_config(run_id), saved)
    return saved


def test_a_run_stored_with_every_familys_options_loads_resumes_and_evaluates(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = load_config(RunConfig, data=DIFFUSION)
    first = train_local(cfg, store)
    saved = as_stored_before(store, first.run_id)
    assert {"gan", "autoregressive", "diffusion"} <= set(saved["config"]["model"])
    with pytest.raises(ValidationError):  # as a config of today it is refused ...
        RunConfig.model_validate(saved["config"])
    stored = read_config(store, first.run_id)  # ... as a stored run it reads
    assert stored.config == cfg and stored.config.model.diffusion.timesteps == 20

    # stopped after its first epoch: no result, the second checkpoint and epoch gone
    store.delete(layout.run_result(first.run_id))
    store.delete(layout.run_checkpoint(first.run_id, 1).rsplit("/", 1)[0])
    write_metrics(store, first.run_id, read_history(store, first.run_id)[:1])
    resumed = train_local(cfg, store)  # the same config names the same run, which resumes
    assert resumed.run_id == first.run_id and resumed.resumed_from_epoch == 1
    assert resumed.epochs == 2

    as_stored_before(store, first.run_id)  # and evaluate/generate read the old config.json
    trained = load_trained(store, first.run_id)
    assert trained.config == cfg and trained.model.schedule is not None
    evaluation = evaluate_run(store, first.run_id, EvaluateConfig(n_samples=200, ddim_steps=5))
    assert evaluation.metrics["mmd2"] >= 0 and "modes" in evaluation.metrics
    # an evaluation stored before evaluate.eta existed is the same settings' (eta None) ...
    key = layout.evaluation(first.run_id)
    table = store.read_table(key)
    meta = store.table_metadata(table)
    del meta["evaluate"]["eta"]
    store.write_table(key, table, metadata=meta)
    again = evaluate_run(store, first.run_id, EvaluateConfig(n_samples=200, ddim_steps=5))
    assert again.reused and again.metrics == evaluation.metrics
    # ... and another eta is another evaluation, named by its sampler
    noisy = evaluate_run(store, first.run_id, EvaluateConfig(n_samples=200, ddim_steps=5, eta=1))
    assert not noisy.reused and noisy.sampler == "ddim 5 steps, eta 1"
    # one stored before evaluate.sampler existed was drawn with the run's own chain: not reused
    table = store.read_table(key)
    store.write_table(key, table, metadata={"evaluate": {"n_samples": 200, "split": "test",
                                                         "seed": 0}})  # fmt: skip
    assert not evaluate_run(store, first.run_id, EvaluateConfig(n_samples=200)).reused
    samples = generate(store, first.run_id, GenerateConfig(n=16, ddim_steps=5))
    assert set(samples.files) >= {"samples", "scatter"}
    skey = layout.samples_table(first.run_id)  # samples stored before generate.eta: the same
    stable = store.read_table(skey)
    smeta = store.table_metadata(stable)
    del smeta["generate"]["eta"]
    store.write_table(skey, stable, metadata=smeta)
    assert generate(store, first.run_id, GenerateConfig(n=16, ddim_steps=5)).reused
    assert not generate(store, first.run_id, GenerateConfig(n=16, ddim_steps=5, eta=0.5)).reused


def test_genai_train_with_another_familys_option_exits_2_naming_it(tmp_path):
    """The README's example, as written (a temporary store added): a misplaced option stops the
    command before anything starts."""
    genai = str(Path(sys.executable).parent / "genai")
    out = subprocess.run(
        [genai, "train", "configs/gan.yaml", "--set", "model.diffusion.timesteps=10",
         "--store", f"file://{tmp_path}/store"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert (
        "model.diffusion.timesteps: an option of the diffusion family, but model.family is 'gan'"
    ) in out.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.json"))


def test_a_sweeps_best_config_stored_before_retrains_as_the_same_run():
    """best.json of a sweep stored before holds every family's options: the pipeline retrains
    it as the run today's best.json names (the same id)."""
    from genai.config import PipelineConfig
    from genai.pipeline import base_config, retrain_config
    from genai.train.runs import run_id_for

    demo = load_config(PipelineConfig, "configs/demo.yaml")
    today = base_config(demo).model_dump(mode="json")
    before = {**today, "model": {**today["model"], **FORMER_MODEL_SECTIONS}}
    old, new = retrain_config(demo, {"config": before}), retrain_config(demo, {"config": today})
    assert old == new and run_id_for(old, "v1") == run_id_for(new, "v1")
