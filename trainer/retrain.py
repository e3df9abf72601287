"""What ``blsnode train`` does, as one plain function: resolve, train, optionally register.

The command parses options into a :class:`TrainRequest`; :func:`run_training` turns the
preset and flags into a config, picks the starting weights, records the provenance a
model card needs (command, source commit), runs :func:`trainer.loop.train`, and puts the
best checkpoint into the model registry when asked. It returns a JSON-ready summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from blsgan_core.checkpoint import Checkpoint, load_checkpoint
from trainer.config import TrainConfig, load_preset, with_ablations
from trainer.loop import RunResult, train
from trainer.provenance import source_commit

# (checkpoint file, name) -> summary of the registry entry
Registrar = Callable[[Path, str], dict[str, Any]]


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``blsnode train`` was asked to do."""

    preset: str
    manifests: tuple[Path, ...]
    out: Path
    resume: bool = False
    initial: Path | None = None
    no_pretrain: bool = False
    no_correction: bool = False
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str | None = None
    threads: int | None = None
    stop_after_epochs: int | None = None
    show_progress: bool = True
    command: str = ""
    register: str | None = None


def resolve_config(request: TrainRequest) -> TrainConfig:
    """The preset with the request's overrides and ablations applied."""
    config = load_preset(request.preset)
    if request.overrides:
        config = config.with_overrides(**request.overrides)
    return with_ablations(
        config, no_pretrain=request.no_pretrain, no_correction=request.no_correction
    )


def run_training(request: TrainRequest, registrar: Registrar | None = None) -> dict[str, Any]:
    """Train (or resume) as requested; register the best model if a name was given."""
    if request.register is not None and registrar is None:
        raise ValueError("a registry is needed to register the trained model")
    if request.threads is not None:
        if request.threads < 1:
            raise ValueError(f"threads must be >= 1, got {request.threads}")
        torch.set_num_threads(request.threads)
    if not request.resume and not request.manifests:
        raise ValueError("no manifest: pass --manifest PATH (repeatable) or set training.manifests")
    initial: Checkpoint | None = None
    if request.initial is not None:
        initial = load_checkpoint(request.initial, expected_kind="blsgan")
    provenance = {"command": request.command, "commit": source_commit()}
    result = train(
        resolve_config(request),
        list(request.manifests),
        request.out,
        resume=request.resume,
        initial=initial,
        device=request.device,
        show_progress=request.show_progress,
        stop_after_epochs=request.stop_after_epochs,
        provenance=provenance,
    )
    summary = run_summary(result)
    if request.register is not None and registrar is not None:
        if result.completed_epochs < result.total_epochs:
            raise ValueError(
                f"the run stopped after {result.completed_epochs} of {result.total_epochs} "
                "epochs: resume it before registering"
            )
        summary["registered"] = registrar(result.best_checkpoint, request.register)
    return summary


def run_summary(result: RunResult) -> dict[str, Any]:
    """The JSON-ready facts of a run: files, progress, throughput, last validation."""
    last = result.history[-1] if result.history else {}
    rates = [row["images_per_s"] for row in result.history if "images_per_s" in row]
    return {
        "out": str(result.out),
        "completed_epochs": result.completed_epochs,
        "total_epochs": result.total_epochs,
        "finished": result.completed_epochs == result.total_epochs,
        "last_checkpoint": str(result.last_checkpoint),
        "best_checkpoint": str(result.best_checkpoint),
        "best": result.best,
        "images_per_s": sum(rates) / len(rates) if rates else None,
        "validation": {key: value for key, value in last.items() if key.startswith("val_")},
        "data_digest": result.data_digest,
        "rejected_records": result.rejected,
    }
