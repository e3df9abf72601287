"""What a BLS-GAN run says about itself in its checkpoints: metadata, version strings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainer.config import TrainConfig
from trainer.datasets import TrainingData
from trainer.model_card import checkpoint_metadata
from trainer.separation_measures import SELECTION_RULE


def model_metadata(
    config: TrainConfig,
    data: TrainingData,
    history: Sequence[dict[str, Any]],
    extra: dict[str, Any],
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """What a checkpoint says about its training, in every trainer's layout (trainer.model_card)."""
    last = history[-1] if history else {}
    return checkpoint_metadata(
        training={
            "preset": config.preset,
            "config": config.to_dict(),
            "seed": config.seed,
            "epochs": len(history),
            "phase": last.get("phase"),
            "phase_epoch": last.get("phase_epoch"),
            "selection": SELECTION_RULE,
            **extra,
        },
        data={
            "digest": data.digest,
            "manifests": [str(path) for path in data.manifests],
            "n_train_images": len(data.train),
            "n_validation_images": len(data.validation),
            "n_rejected": len(data.rejected),
        },
        metrics={key: value for key, value in last.items() if key.startswith("val_")},
        metrics_identity_baseline=baseline,
    )


def model_version(config: TrainConfig, data: TrainingData, epochs: int) -> str:
    """A version string naming the preset, the data and the epoch count."""
    return f"blsgan-{config.preset}-{data.digest[:8]}-e{epochs}"
