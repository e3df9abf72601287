"""The resumable state of a training run: one file, written atomically after every epoch.

Every trainer (BLS-GAN, localiser, segmenter) keeps the same ``<run>/state.pt``: the
resolved config, the data it reads, the phases, the last finished epoch, the weights of
its networks by name (BLS-GAN: generator, reconstructor, supervisor; a front-end
network: ``model``), its optimiser states by name, the per-epoch history (from which the
logs and plots are rewritten), the best epoch and the provenance the model card keeps.
Every random choice of the data pipelines is derived from the seed and the epoch, so no
RNG state has to travel. Model checkpoints (``last.pt``, ``best.pt``) are separate,
inference-only files in the :mod:`blsgan_core.checkpoint` format; they never hold
optimizer state.

Writing is temp file, fsync, rename, so a kill leaves either the previous epoch's state
or the new one, never a torn file. The file is read with ``weights_only=True``: it holds
tensors and plain data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from blsgan_core.checkpoint import read_payload, write_payload
from blsgan_core.model import BLSGANModel

NETWORKS = ("generator", "reconstructor", "supervisor")
STATE_FILE = "state.pt"
STATE_FORMAT = 1


@dataclass
class TrainingState:
    """Progress of a run after ``completed_epochs`` epochs (over all its phases).

    ``manifests`` names the data the run reads (manifest files, or a data folder);
    ``extra`` is the provenance its checkpoints carry (:func:`resumed_provenance`).
    """

    config: dict[str, Any]
    manifests: list[str]
    phases: list[tuple[int, int]]
    completed_epochs: int
    networks: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, dict[str, Any]]
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def save_training_state(path: Path, state: TrainingState) -> None:
    """Write ``state`` atomically to ``path``."""
    payload = {
        "format": STATE_FORMAT,
        "config": state.config,
        "manifests": state.manifests,
        "phases": [list(item) for item in state.phases],
        "completed_epochs": state.completed_epochs,
        "networks": state.networks,
        "optimizers": state.optimizers,
        "history": state.history,
        "best": state.best,
        "extra": state.extra,
    }
    write_payload(path, payload)


def load_training_state(path: Path) -> TrainingState:
    """Read a run's state; ``ValueError`` if missing or not a training state."""
    if not path.is_file():
        raise ValueError(f"no training state at {path}: nothing to resume")
    payload = read_payload(path, "training state")
    if isinstance(payload, dict) and "format" not in payload and "state" in payload:
        return _frontend_state(payload)
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a training state of format {STATE_FORMAT}")
    return TrainingState(
        config=payload["config"],
        manifests=list(payload["manifests"]),
        phases=[(int(phase), int(epochs)) for phase, epochs in payload["phases"]],
        completed_epochs=int(payload["completed_epochs"]),
        networks=payload["networks"],
        optimizers=payload["optimizers"],
        history=list(payload["history"]),
        best=dict(payload["best"]),
        extra=dict(payload["extra"]),
    )


def _frontend_state(payload: dict[str, Any]) -> TrainingState:
    """The state of a front-end run started before the trainers shared this format.

    Such runs (``{model, optimizer, state}``) may still be resumed; their optimiser
    step count is kept in the history, as this format does.
    """
    old = payload["state"]
    history = [dict(row) for row in old["history"]]
    if history:
        history[-1]["step"] = int(old["step"])
    best = {"epoch": old["best_epoch"], "score": old["best"]} if old["best_epoch"] > 0 else {}
    return TrainingState(
        config={},
        manifests=[],
        phases=[(1, int(old["epoch"]))],
        completed_epochs=int(old["epoch"]),
        networks={"model": payload["model"]},
        optimizers={"adam": payload["optimizer"]},
        history=history,
        best=best,
    )


def resumed_provenance(extra: dict[str, Any], command: str | None) -> dict[str, Any]:
    """The provenance of a resumed run: the first command stays, each resume is listed."""
    return {**extra, "resumed_by": [*extra.get("resumed_by", []), command]}


def named_networks(model: BLSGANModel) -> dict[str, torch.nn.Module]:
    """The three networks by the names their weights have in a state (with the supervisor)."""
    return {name: _network(model, name) for name in NETWORKS}


def load_network_states(model: BLSGANModel, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """Load a checkpoint's networks into ``model``; the supervisor may be missing.

    Inference checkpoints may leave the supervisor out; fine-tuning from one then starts
    with a fresh supervisor.
    """
    for name in NETWORKS:
        if name not in states:
            if name == "supervisor":
                continue
            raise ValueError(f"no weights for the {name}")
        _network(model, name).load_state_dict(states[name])


def _network(model: BLSGANModel, name: str) -> torch.nn.Module:
    network = getattr(model, name)
    if network is None:
        raise ValueError(f"the model was built without its {name}")
    if not isinstance(network, torch.nn.Module):
        raise TypeError(f"{name} is not a network")
    return network
