"""The one checkpoint format, read and written only here.

One file, ``state.pt`` (``torch.save`` of plain containers and tensors, so it loads with
``weights_only=True``)::

    {"format": 1, "epoch": last finished epoch, "history": [entry per epoch],
     "replicas": [{"seed", "model": state dict, "optimizers": {player: state dict}, "step",
                   "ema": the weights' moving average (a state dict) or None,
                   "ema_updates": its update count (the warm-up's clock) or None}]}

A run's checkpoints are Ray Train's (``runs/{id}/checkpoints/epoch-NNNNN/state.pt``), a
multi-worker trial's too (``sweeps/{id}/trials/{trial}/epoch-NNNNN/``), an in-process trial's are
Tune's; all hold this file.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch

from genai import layout
from genai.storage import ArtifactStore, StoreError
from genai.train.state import FitState, unwrap

FORMAT = 1
STATE_FILE = layout.STATE_FILE


def to_dict(state: FitState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "epoch": state.epoch,
        "history": state.history,
        "replicas": [
            {
                "seed": r.seed,
                "model": r.family.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in r.optimizers.items()},
                "step": r.step,
                "ema": r.ema.state_dict() if r.ema is not None else None,
                "ema_updates": r.ema.updates if r.ema is not None else None,
            }
            for r in state.replicas
        ],
    }


def save(state: FitState, directory: str) -> str:
    """Write ``state`` into ``directory`` (a checkpoint directory); returns the file's path."""
    path = os.path.join(directory, STATE_FILE)
    torch.save(to_dict(state), path)
    return path


def save_to_store(store: ArtifactStore, run_id: str, state: FitState, keep: int) -> str:
    """Write ``state`` where Ray Train puts a run's checkpoints (a local fit's, as a run's:
    ``runs/{id}/checkpoints/epoch-NNNNN/state.pt``) and delete all but the last ``keep``."""
    buf = io.BytesIO()
    torch.save(to_dict(state), buf)
    key = store.write_bytes(layout.run_checkpoint(run_id, state.epoch), buf.getvalue())
    for old in range(state.epoch - keep, -1, -1):
        stale = layout.run_checkpoint(run_id, old).rsplit("/", 1)[0]
        if not store.exists(stale):
            break
        store.delete(stale)
    return key


def load(source: str | bytes, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A saved state from a checkpoint directory, a file path, or the file's bytes."""
    if isinstance(source, bytes):
        saved = torch.load(io.BytesIO(source), map_location=device, weights_only=True)
    else:
        path = os.path.join(source, STATE_FILE) if os.path.isdir(source) else source
        saved = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise StoreError(f"checkpoint {source if isinstance(source, str) else ''} is not format 1")
    return saved


def restore(state: FitState, saved: dict[str, Any]) -> None:
    """Load ``saved`` into ``state`` (its replicas built for the same config and seeds)."""
    seeds = [r["seed"] for r in saved["replicas"]]
    if seeds != [r.seed for r in state.replicas]:
        raise StoreError(
            f"checkpoint holds seeds {seeds}, this fit {[r.seed for r in state.replicas]}"
        )
    for replica, entry in zip(state.replicas, saved["replicas"], strict=True):
        unwrap(replica.model).load_state_dict(entry["model"])
        for player, opt in replica.optimizers.items():
            opt.load_state_dict(entry["optimizers"][player])
        replica.step = entry["step"]
        if replica.ema is not None and entry.get("ema") is not None:
            replica.ema.load_state_dict(entry["ema"], entry.get("ema_updates"))
    state.epoch, state.history = saved["epoch"], list(saved["history"])


def latest_key(store: ArtifactStore, prefix: str) -> str | None:
    """Key of the newest checkpoint file under ``prefix`` (names sort by epoch)."""
    return layout.newest_state(store.list(prefix))


def read_latest(store: ArtifactStore, prefix: str) -> dict[str, Any]:
    key = latest_key(store, prefix)
    if key is None:
        raise StoreError(f"no checkpoint under {store.key_uri(prefix)}")
    return load(store.read_bytes(key))


def model_state(saved: dict[str, Any], replica: int = 0) -> dict[str, Any]:
    """The weights one replica of a saved state samples with: its EMA's, if it keeps one."""
    entry = saved["replicas"][replica]
    return entry["ema"] if entry.get("ema") is not None else entry["model"]
