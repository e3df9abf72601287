"""The loss terms of the front-end networks (localiser heatmaps, segmenter masks)."""

from __future__ import annotations

import torch
from torch import nn


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


def soft_dice_loss(
    probability: torch.Tensor, target: torch.Tensor, eps: float = 1.0
) -> torch.Tensor:
    """1 - soft Dice of probabilities per sample and channel, averaged."""
    dims = tuple(range(2, probability.ndim))
    intersection = (probability * target).sum(dims)
    total = probability.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * intersection + eps) / (total + eps)).mean()
