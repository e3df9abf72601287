"""The held-out joints scored after every epoch, and the figures of the final epoch.

A fixed, seeded set: up to ``validation.max_images`` real joints overlapping by >= 20 px
and as many synthetic overlaps of non-overlapping joints, all from the validation side
of the joint-disjoint split, at full 256 x 256 size. The identity layers are scored on
the same joints once, so every number of the run has its baseline beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from blsgan_core.model import BLSGANModel
from blsgan_core.synthetic import SyntheticConfig
from trainer import plots
from trainer.config import TrainConfig
from trainer.datasets import SampleStore, TrainingData
from trainer.evaluation.separation import (
    EvalJoint,
    SeparationScores,
    identity_separator,
    model_separator,
    real_joints,
    score_separator,
    synthetic_joints,
)

BEST_METRIC = "val_synthetic_layer_psnr"


def validation_row(scores: SeparationScores) -> dict[str, float | None]:
    """The CSV columns of one validation: means of the headline metrics."""
    report = scores.report()
    return {
        "val_real_mse": report["real"]["mse"]["mean"],
        "val_real_ssim": report["real"]["ssim"]["mean"],
        "val_real_psnr": report["real"]["psnr"]["mean"],
        "val_synthetic_layer_mse": report["synthetic"]["layer_mse"]["mean"],
        BEST_METRIC: report["synthetic"]["layer_psnr"]["mean"],
    }


def extremes(joints: Sequence[EvalJoint]) -> list[EvalJoint]:
    """The joints with the smallest and the largest overlap (one if they coincide)."""
    if not joints:
        return []
    smallest = min(joints, key=lambda joint: joint.overlap_px)
    largest = max(joints, key=lambda joint: joint.overlap_px)
    return [smallest] if smallest is largest else [smallest, largest]


@dataclass(frozen=True)
class Validation:
    """The validation joints of a run."""

    real: list[EvalJoint]
    synthetic: list[EvalJoint]

    @classmethod
    def build(cls, data: TrainingData, store: SampleStore, config: TrainConfig) -> Validation:
        """Up to ``validation.max_images`` real overlapping and synthetic joints each."""
        cap = config.validation.max_images
        synthetic = synthetic_joints(
            data.validation,
            store,
            seed=config.validation.synthetic_seed,
            options=SyntheticConfig(**config.data.synthetic),
        )
        return cls(real_joints(data.validation, store)[:cap], synthetic[:cap])

    def score(self, model: BLSGANModel, device: torch.device) -> SeparationScores:
        """Scores of the current model."""
        return score_separator(model_separator(model, device), self.real, self.synthetic)

    def baseline_scores(self) -> SeparationScores:
        """Scores of the identity layers: what a model must beat to separate anything."""
        return score_separator(identity_separator, self.real, self.synthetic)

    def final_plots(
        self, model: BLSGANModel, device: torch.device, scores: SeparationScores, folder: Path
    ) -> None:
        """Metrics against overlap size (with the baseline) and the example panel."""
        plots.metrics_by_overlap(scores, folder / "metrics_by_overlap.png", self.baseline_scores())
        # Of each kind the smallest and the largest overlap, so the panel shows the range.
        examples = extremes(self.synthetic) + extremes(self.real)
        if examples:
            plots.example_panel(examples, model_separator(model, device), folder / "examples.png")
