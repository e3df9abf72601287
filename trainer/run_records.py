"""What a run writes about itself: the per-epoch CSV, checkpoint metadata, version strings."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import atomic_file
from trainer.config import TrainConfig
from trainer.datasets import TrainingData
from trainer.separation_measures import SELECTION_COLUMN, SELECTION_RULE

# The parts of the selection score the card shows beside each phase's best epoch.
STANDING_COLUMNS = (
    "val_synthetic_layer_psnr",
    "val_real_overlap_psnr",
    "val_real_seam_ratio",
    "val_supervisor_auc",
)


def write_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """The per-epoch log, rewritten whole from the history (so it matches the state)."""
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    with atomic_file(path, text=True, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)


def model_metadata(
    config: TrainConfig,
    data: TrainingData,
    history: Sequence[dict[str, Any]],
    extra: dict[str, Any],
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """What a checkpoint says about its training (the model card's provenance part)."""
    last = history[-1] if history else {}
    return {
        "training": {
            "preset": config.preset,
            "config": config.to_dict(),
            "epochs": len(history),
            "phase": last.get("phase"),
            "phase_epoch": last.get("phase_epoch"),
            "selection": SELECTION_RULE,
            "selection_standing": selection_standing(history),
            **extra,
        },
        "data": {
            "digest": data.digest,
            "manifests": [str(path) for path in data.manifests],
            "n_train_images": len(data.train),
            "n_validation_images": len(data.validation),
            "n_rejected": len(data.rejected),
        },
        "metrics": {key: value for key, value in last.items() if key.startswith("val_")},
        "metrics_identity_baseline": baseline,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def selection_standing(history: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase, the epoch with the highest selection score so far and what it scored.

    Written into every checkpoint, so the card of ``best.pt`` says why its epoch won: the
    best of the other phase (up to then) stands beside it.
    """
    standing: dict[str, dict[str, Any]] = {}
    for row in history:
        score = row.get(SELECTION_COLUMN)
        if not isinstance(score, int | float):
            continue
        key = f"phase {row.get('phase')}"
        if key not in standing or score > standing[key]["score"]:
            standing[key] = {
                "phase_epoch": row.get("phase_epoch"),
                "epoch": row.get("epoch"),
                "score": float(score),
                **{name: row.get(name) for name in STANDING_COLUMNS},
            }
    return standing


def model_version(config: TrainConfig, data: TrainingData, epochs: int) -> str:
    """A version string naming the preset, the data and the epoch count."""
    return f"blsgan-{config.preset}-{data.digest[:8]}-e{epochs}"
