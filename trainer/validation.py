"""The held-out joints scored after every epoch, and the figures of the final epoch.

A fixed, seeded set: up to ``validation.max_images`` real joints overlapping by >= 20 px,
as many synthetic overlaps of non-overlapping joints drawn with the training shifts, and
as many drawn with shifts beyond them (:data:`WIDE_SHIFTS`), all from the validation
side of the joint-disjoint split, at full 256 x 256 size. The identity layers are scored
on the same joints once, so every number of the run has its baseline beside it. The
measures are those of :mod:`trainer.separation_measures`; the best model is the one with
the highest :func:`trainer.separation_measures.selection_score` (:data:`BEST_METRIC`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from blsgan_core.model import BLSGANModel
from blsgan_core.networks.supervisor import Supervisor
from blsgan_core.synthetic import SyntheticConfig
from trainer import plots, separation_measures
from trainer.config import TrainConfig
from trainer.datasets import SampleStore, TrainingData
from trainer.evaluation.separation import (
    EvalJoint,
    SeparationScores,
    Separator,
    identity_separator,
    model_separator,
    real_joints,
    run_separator,
    score_separator,
    synthetic_joints,
)
from trainer.separation_measures import Row

BEST_METRIC = separation_measures.SELECTION_COLUMN
# Shifts per bone for the "wide" synthetic set: beyond the training range (1-8 px per bone).
WIDE_SHIFTS = {"min_shift": 10, "max_shift": 16}


def validation_row(scores: SeparationScores) -> dict[str, float | None]:
    """The CSV columns of one validation: means of the headline metrics."""
    report = scores.report()
    return {
        "val_real_mse": report["real"]["mse"]["mean"],
        "val_real_ssim": report["real"]["ssim"]["mean"],
        "val_real_psnr": report["real"]["psnr"]["mean"],
        "val_synthetic_layer_mse": report["synthetic"]["layer_mse"]["mean"],
        "val_synthetic_layer_psnr": report["synthetic"]["layer_psnr"]["mean"],
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
    wide: list[EvalJoint]

    @classmethod
    def build(cls, data: TrainingData, store: SampleStore, config: TrainConfig) -> Validation:
        """Up to ``validation.max_images`` real overlapping and synthetic joints of each set."""
        cap = config.validation.max_images
        options = SyntheticConfig(**config.data.synthetic)
        seed = config.validation.synthetic_seed
        synthetic = synthetic_joints(data.validation, store, seed=seed, options=options)
        wide = synthetic_joints(
            data.validation,
            store,
            seed=seed + 1,
            options=SyntheticConfig(**{**config.data.synthetic, **WIDE_SHIFTS}),
        )
        return cls(real_joints(data.validation, store)[:cap], synthetic[:cap], wide[:cap])

    def score(self, model: BLSGANModel, device: torch.device) -> SeparationScores:
        """Scores of the current model."""
        return score_separator(model_separator(model, device), self.real, self.synthetic)

    def baseline_scores(self) -> SeparationScores:
        """Scores of the identity layers: what a model must beat to separate anything."""
        return score_separator(identity_separator, self.real, self.synthetic)

    def measures(
        self,
        separator: Separator,
        supervisor: Supervisor | None = None,
        device: torch.device | None = None,
    ) -> Row:
        """:mod:`trainer.separation_measures` of ``separator`` (with D's if given)."""
        real = run_separator(separator, self.real)
        synthetic = run_separator(separator, self.synthetic)
        row: Row = {}
        if self.synthetic:
            row.update(
                separation_measures.synthetic_measures(self.synthetic, synthetic, "val_synthetic")
            )
        if self.wide:
            wide = run_separator(separator, self.wide)
            row.update(separation_measures.synthetic_measures(self.wide, wide, "val_wide"))
        if self.real:
            row.update(separation_measures.real_measures(self.real, real))
        if supervisor is not None:
            row.update(
                separation_measures.supervisor_measures(
                    supervisor,
                    self.synthetic,
                    synthetic,
                    self.real,
                    real,
                    device or torch.device("cpu"),
                )
            )
        return row

    def row(self, model: BLSGANModel, device: torch.device) -> tuple[SeparationScores, Row]:
        """The scores (for the plots) and the CSV columns of ``model``, selection included."""
        scores = self.score(model, device)
        row: Row = {**validation_row(scores)}
        row.update(self.measures(model_separator(model, device), model.supervisor, device))
        row[BEST_METRIC] = separation_measures.selection_score(row)
        return scores, row

    def baseline_row(self) -> Row:
        """The same columns for the identity layers (no supervisor, so no AUC or verdict)."""
        row: Row = {**validation_row(self.baseline_scores())}
        row.update(self.measures(identity_separator))
        row[BEST_METRIC] = separation_measures.selection_score(row)
        return row

    def final_plots(
        self, model: BLSGANModel, device: torch.device, scores: SeparationScores, folder: Path
    ) -> None:
        """Metrics against overlap size (with the baseline) and the example panel."""
        plots.metrics_by_overlap(scores, folder / "metrics_by_overlap.png", self.baseline_scores())
        # Of each kind the smallest and the largest overlap, so the panel shows the range.
        examples = extremes(self.synthetic) + extremes(self.real)
        if examples:
            plots.example_panel(examples, model_separator(model, device), folder / "examples.png")
