"""The BLS-GAN's part of the shared epoch loop (:mod:`trainer.epochs`).

One epoch of either phase over a seeded loader, the validation on the held-out joints
(:mod:`trainer.validation`), the checkpoint with the run's metadata, and the plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from blsgan_core.checkpoint import Checkpoint
from blsgan_core.model import BLSGANModel, model_checkpoint
from blsgan_core.synthetic import SyntheticConfig
from trainer import plots
from trainer.config import TrainConfig
from trainer.datasets import JointDataset, SampleStore, TrainingData, epoch_order, phase_items
from trainer.epochs import Selection, Validated
from trainer.evaluation.separation import SeparationScores
from trainer.run_records import model_metadata, model_version
from trainer.state import TrainingState, named_networks
from trainer.steps import Batch, StepSettings, training_step
from trainer.validation import BEST_METRIC, Validation

PLOTS = "plots"
# The best epoch over both phases: the highest selection score (trainer.separation_measures).
SELECTION = Selection(BEST_METRIC, higher_is_better=True, context=("phase",))
LOG_KEYS = (
    "loss_g",
    "loss_d",
    "images_per_s",
    "val_synthetic_layer_psnr",
    "val_synthetic_seam_ratio",
    "val_synthetic_k_r",
    "val_supervisor_auc",
    BEST_METRIC,
)


def run_epoch(
    networks: BLSGANModel,
    loader: DataLoader[dict[str, torch.Tensor]],
    phase: int,
    settings: StepSettings,
    optimizers: dict[str, torch.optim.Optimizer],
    device: torch.device,
    description: str,
    show_progress: bool,
) -> dict[str, float]:
    """Train one epoch; mean of every logged loss, images and images/s."""
    networks.train()
    sums: dict[str, float] = {}
    images = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=description, unit="batch", disable=not show_progress, leave=False)
    for data in bar:
        batch = Batch.from_loader(data, device)
        logged = training_step(networks, batch, phase, settings, optimizers)
        for key, value in logged.items():
            sums[key] = sums.get(key, 0.0) + value * batch.size
        images += batch.size
        rate = images / max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(
            loss_g=f"{logged['loss_g']:.4f}", loss_d=f"{logged['loss_d']:.4f}", img_s=f"{rate:.1f}"
        )
    seconds = time.perf_counter() - start
    means = {key: value / max(images, 1) for key, value in sums.items()}
    return {**means, "images": images, "images_per_s": images / seconds}


@dataclass
class BLSGANEpochs:
    """The BLS-GAN's :class:`trainer.epochs.Trainer`: G + R and D, both phases."""

    model: BLSGANModel
    optimizers: dict[str, torch.optim.Optimizer]
    config: TrainConfig
    data: TrainingData
    store: SampleStore
    validation: Validation
    baseline: dict[str, Any]
    phases: list[tuple[int, int]]
    device: torch.device
    settings: StepSettings
    out: Path
    show_progress: bool = True
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    log_keys: tuple[str, ...] | None = LOG_KEYS
    scores: SeparationScores | None = field(default=None, init=False)

    @property
    def networks(self) -> dict[str, nn.Module]:
        """Generator, reconstructor and supervisor."""
        return named_networks(self.model)

    def train_epoch(self, phase: int, phase_epoch: int) -> dict[str, Any]:
        """One epoch of ``phase`` over the joints drawn for it; losses and throughput."""
        description = f"phase {phase} epoch {phase_epoch + 1}/{dict(self.phases)[phase]}"
        trained = run_epoch(
            self.model,
            self._loader(phase, phase_epoch),
            phase,
            self.settings,
            self.optimizers,
            self.device,
            description,
            self.show_progress,
        )
        return {"phase": phase, "phase_epoch": phase_epoch + 1, **trained}

    def validate(self) -> Validated:
        """The validation columns; the scores are kept for the final plots."""
        self.scores, measured = self.validation.row(self.model, self.device)
        return Validated(measured, measured[BEST_METRIC])

    def checkpoint(self, state: TrainingState) -> Checkpoint:
        """The model with the run's metadata (supervisor included, for fine-tuning)."""
        return model_checkpoint(
            self.model,
            model_version(self.config, self.data, state.completed_epochs),
            model_metadata(self.config, self.data, state.history, state.extra, self.baseline),
            include_supervisor=True,
        )

    def after_epoch(self, state: TrainingState, final: bool) -> None:
        """Loss curves every epoch, the caller's callback; metric plots after the last."""
        plots.loss_curves(state.history, self.out / PLOTS / "losses.png", self.baseline)
        if self.on_epoch is not None:
            self.on_epoch(state.history[-1])
        if final and self.scores is not None:
            self.validation.final_plots(self.model, self.device, self.scores, self.out / PLOTS)

    def _loader(self, phase: int, phase_epoch: int) -> DataLoader[dict[str, torch.Tensor]]:
        """The epoch's joints, drawn and ordered from ``(seed, phase, epoch)``."""
        return epoch_loader(self.config, self.data, self.store, phase, phase_epoch, self.device)


def epoch_loader(
    config: TrainConfig,
    data: TrainingData,
    store: SampleStore,
    phase: int,
    phase_epoch: int,
    device: torch.device,
) -> DataLoader[dict[str, torch.Tensor]]:
    """One epoch of ``phase``: its joints, drawn and ordered from ``(seed, phase, epoch)``."""
    dataset = JointDataset(
        store,
        phase_items(data, phase, config.data.min_real_overlap_px),
        seed=config.seed,
        phase=phase,
        epoch=phase_epoch,
        crop_size=config.data.crop_size,
        hflip=config.data.hflip,
        synthetic=SyntheticConfig(**config.data.synthetic),
        mask_noise_px=config.data.given_mask_noise_px,
        mask_margin_px=config.data.mask_margin_px,
    )
    order = list(epoch_order(len(dataset), seed=config.seed, phase=phase, epoch=phase_epoch))
    return DataLoader(
        dataset,
        batch_size=config.optim.batch_size,
        sampler=order,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
