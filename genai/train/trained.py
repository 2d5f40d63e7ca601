"""A model built for its data: the feature-network wiring a run needs, and a trained run loaded
back from the store (``evaluate``, ``generate``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from genai import layout
from genai.config import RunConfig
from genai.data.dataset import read_manifest
from genai.data.features import load_feature_net
from genai.data.prepare import ensure_feature_net
from genai.models import DataSpec, GenerativeModel, build_model
from genai.storage import ArtifactStore, StoreError
from genai.strict import ConfigError
from genai.train import checkpoint
from genai.train.runs import check_run, read_config


def needs_features(cfg: RunConfig) -> bool:
    """Whether a loss slot uses the dataset's domain feature network."""
    return any(spec.name == "perceptual" for spec in cfg.loss.values())


def feature_layers(
    store: ArtifactStore,
    cfg: RunConfig,
    dataset_key: str,
    *,
    train: bool = False,
    ray_address: str | None = None,
    device: Any = "cpu",
) -> nn.Module | None:
    """The frozen feature network's layers where a ``perceptual`` loss needs them, else None.

    A driver (``train``: a run's plan, loading a run to judge it) trains the network first if
    the store lacks it, on ``ray_address``; a worker or a trial only loads it (its CPUs are the
    worker group's: a training task of its own could wait for them forever)."""
    if not needs_features(cfg):
        return None
    if train:
        trained = ensure_feature_net(store, dataset_key, ray_address=ray_address)
        if trained is None:
            manifest = read_manifest(store, dataset_key)
            raise ConfigError(
                "loss: 'perceptual' needs a domain feature network, which only image data has;"
                f" {manifest['dataset']} is {manifest['kind']}"
            )
    else:
        trained = load_feature_net(store, dataset_key)
        if trained is None:
            manifest = read_manifest(store, dataset_key)
            raise StoreError(
                f"{manifest['dataset']}/{manifest['version']} has no feature network in"
                f" {store.uri}: the run's driver trains it before any worker starts"
            )
    return trained.net.to(device).layers


def build_for(
    cfg: RunConfig, manifest: dict[str, Any], features: nn.Module | None = None
) -> GenerativeModel:
    """``cfg``'s model for the dataset of ``manifest``."""
    return build_model(cfg.model, cfg.loss, DataSpec.from_manifest(manifest), features=features)


@dataclass(frozen=True)
class TrainedRun:
    """A run's model in eval mode with its newest weights (the EMA's, if kept), its config and
    its dataset."""

    run_id: str
    model: GenerativeModel
    config: RunConfig
    manifest: dict[str, Any]
    dataset_key: str


def load_trained(
    store: ArtifactStore, run_id: str, *, ray_address: str | None = None
) -> TrainedRun:
    """The run's model with its newest weights; its feature network, if it needs one and the
    store lacks it (a changed network version), is trained first on ``ray_address``."""
    check_run(store, run_id)
    stored = read_config(store, run_id)
    manifest = read_manifest(store, stored.dataset_key)
    state = checkpoint.read_latest(store, layout.run_checkpoints(run_id))
    features = feature_layers(
        store, stored.config, stored.dataset_key, train=True, ray_address=ray_address
    )
    model = build_for(stored.config, manifest, features)
    model.load_state_dict(checkpoint.model_state(state))
    model.eval()
    return TrainedRun(run_id, model, stored.config, manifest, stored.dataset_key)
