"""One training core: the same config and seed give the same model in-process, on one Ray Train
worker and as a sweep trial; and the code has one loop, one worker function, one trainer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from genai.config import RunConfig, SweepConfig
from genai.configfile import load_config
from genai.data.prepare import prepare
from genai.storage import ArtifactStore
from genai.train import checkpoint
from genai.train.launcher import train, train_local
from genai.train.loop import fit
from genai.train.state import load_fit_data
from genai.tune.sweep import sweep

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]
ROOT = Path(__file__).resolve().parents[3]

# a GAN: two players, a critic schedule (n_critic 2) and step counters to carry across epochs
GAN = {
    "data.source": "ring8",
    "data.n": 1200,
    "model.family": "gan",
    "model.gan.n_critic": 2,
    "model.arch.width": 32,
    "train.epochs": 3,
    "train.batch_size": 64,
    "train.seed": 5,
}


def weights(store: ArtifactStore, prefix: str) -> dict[str, torch.Tensor]:
    return checkpoint.model_state(checkpoint.read_latest(store, prefix))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_in_process_fit_and_one_ray_worker_give_the_same_model(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = load_config(RunConfig, data={**GAN, "train.run_id": "on-ray"})
    result = train(cfg, store)  # Ray Train, 1 worker
    prepared = prepare(cfg.data, store)
    torch.set_num_threads(1)  # as the Ray worker (OMP_NUM_THREADS=1)
    state = fit(cfg, load_fit_data(store, prepared.key))
    assert_same(state.replicas[0].family.state_dict(), weights(store, "runs/on-ray/checkpoints"))
    assert (
        state.replicas[0].step
        == checkpoint.read_latest(store, "runs/on-ray/checkpoints")["replicas"][0]["step"]
    )
    assert [h["epoch"] for h in state.history] == list(range(result.epochs))
    local = train_local(load_config(RunConfig, data={**GAN, "train.run_id": "local"}), store)
    assert_same(weights(store, "runs/local/checkpoints"), weights(store, "runs/on-ray/checkpoints"))
    assert local.metrics["generator/adversarial"] == pytest.approx(
        result.metrics["generator/adversarial"], rel=1e-9
    )


def test_a_trial_and_a_run_of_the_same_config_end_with_the_same_parameters(tmp_path):
    store = ArtifactStore(f"file://{tmp_path}/store")
    cfg = load_config(RunConfig, data=GAN)
    space = tmp_path / "space.yaml"
    space.write_text("loss.adversarial.name: {choice: [non_saturating]}\n")  # the base's own loss
    swept = sweep(cfg, SweepConfig(space=str(space), trials=1, scheduler="fifo"), store)
    assert swept.counts == {"finished": 1, "stopped": 0, "failed": 0}
    trial = weights(store, f"sweeps/{swept.sweep_id}/tune")  # Tune's checkpoint of the trial
    run = train(cfg, store)  # the same config as a run on 1 Ray Train worker
    assert_same(trial, weights(store, f"runs/{run.run_id}/checkpoints"))


def calls(name: str) -> list[str]:
    """Files under genai/ that call ``name`` (a function or a method)."""
    found = []
    for path in sorted((ROOT / "genai").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func
                called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
                if called == name:
                    found.append(path.relative_to(ROOT).as_posix())
    return found


def test_one_epoch_loop_one_worker_function_one_trainer_builder():
    assert calls("train_epoch") == ["genai/train/loop.py"]  # the epoch loop: run_epoch
    # build_trainer, with a TorchTrainer that starts no Ray Data actor
    assert calls("TorchTrainer") + calls("_TorchTrainer") == ["genai/train/trainer.py"]
    # one checkpoint format, written in one place (a run's, a trial's and a local fit's alike);
    # the other torch.save is the feature network's model.pt, which is no checkpoint
    torch_saves = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "genai").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "save"
        and getattr(node.func.value, "id", None) == "torch"
    )
    assert torch_saves == [
        "genai/data/features.py",
        "genai/train/checkpoint.py",
        "genai/train/checkpoint.py",
    ]
    assert calls("prepare_model") == ["genai/train/worker.py"]
    # the loop reports through its session; Ray Train's and Tune's report sit in the two sessions;
    # a comparison's model (genai/tune/cells.py) reports its record to Tune once, after the core
    # (train_local) has trained it: no epoch goes through it
    assert set(calls("report")) == {
        "genai/train/loop.py",
        "genai/train/worker.py",
        "genai/tune/trial.py",
        "genai/tune/cells.py",
    }
    assert calls("fit") and set(calls("fit")) <= {
        "genai/train/launcher.py",  # train_local, and trainer.fit()
        "genai/train/worker.py",  # train_loop_per_worker
        "genai/tune/trial.py",  # an in-process trial, and trainer.fit() of a wide one
        "genai/tune/sweep.py",  # tuner.fit()
        "genai/tune/cells.py",  # tuner.fit() of a comparison's models
    }
    defined = [
        path.name
        for path in (ROOT / "genai").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.endswith("per_worker")
    ]
    assert defined == ["worker.py"]
