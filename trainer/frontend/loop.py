"""Pieces both front-end trainers share: threads and seeds, resumable state, schedule, logs."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blsgan_core.checkpoint import read_payload, write_payload


def configure_torch(threads: int, seed: int) -> None:
    """Few threads (the training machine is shared) and a seeded torch."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The sample generator of one epoch: resuming at epoch e replays exactly epoch e."""
    torch.manual_seed(seed * 100_003 + epoch)
    return np.random.default_rng([seed, epoch])


def cosine_lr(base: float, step: int, total: int, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to 2 % of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, positive_weight: float = 9.0
) -> torch.Tensor:
    """BCE against soft (Gaussian) targets, pixels near a peak weighted ``1 + w * target``.

    The weight is per pixel, so the optimum stays ``sigmoid(logit) = target`` and peak
    values remain calibrated confidences, while the few peak pixels are not drowned by
    the background.
    """
    weight = 1.0 + positive_weight * target
    return nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)


def spatial_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between each channel's spatial softmax and its normalised target.

    Unlike per-pixel BCE, a channel that spreads its mass over several landmarks pays
    for it (log of the number of places), so finger identities are learned quickly.
    """
    batch, channels = logits.shape[:2]
    log_probability = torch.log_softmax(logits.reshape(batch, channels, -1), dim=-1)
    flat = target.reshape(batch, channels, -1)
    distribution = flat / flat.sum(dim=-1, keepdim=True).clamp_min(1e-8)
    return -(distribution * log_probability).sum(dim=-1).mean()


@dataclass
class TrainingState:
    """Where a run stands: last finished epoch, best validation score, history."""

    epoch: int = 0
    step: int = 0
    best: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def save_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainingState
) -> None:
    """Everything needed to resume, written atomically."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": asdict(state),
    }
    write_payload(path, payload)


def load_training_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> TrainingState:
    """Restore model and optimiser from ``save_training_state``; the state is returned."""
    payload = read_payload(path, "training state")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    return TrainingState(**payload["state"])


def log(path: Path, record: dict[str, Any]) -> None:
    """One JSON line in the run's log and a short line on stdout."""
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per sample and channel, averaged; sigmoid applied once, here."""
    probability = torch.sigmoid(logits)
    dims = tuple(range(2, logits.ndim))
    intersection = (probability * target).sum(dims)
    total = probability.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * intersection + eps) / (total + eps)).mean()
