"""Bone masks of joint crops: probabilities for both bones, in one batched pass."""

from __future__ import annotations

import numpy as np
import torch

from blsgan_core.intensity import normalise_intensity
from blsgan_core.segment.model import Segmenter


def prepare(crops: np.ndarray) -> torch.Tensor:
    """Per-crop percentile normalisation, so crops of any exposure look alike."""
    array = np.asarray(crops)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"crops must be (N, H, W) or (H, W), got shape {array.shape}")
    return torch.from_numpy(np.stack([normalise_intensity(c) for c in array]))[:, None]


def segment(crops: np.ndarray, model: Segmenter) -> np.ndarray:
    """Probabilities ``(N, 2, H, W)``: channel 0 upper bone, 1 lower bone (may overlap).

    ``crops`` are joint crops with the finger pointing up, ``(N, H, W)`` or one
    ``(H, W)``, bright = bone; H = W = the model's crop size.
    """
    batch = prepare(crops)
    size = model.config.crop_size
    if batch.shape[-2:] != (size, size):
        raise ValueError(f"crops must be {size}x{size}, got {tuple(batch.shape[-2:])}")
    with torch.inference_mode():
        return torch.sigmoid(model(batch)).numpy()


def segment_masks(crops: np.ndarray, model: Segmenter, threshold: float = 0.5) -> np.ndarray:
    """Boolean masks ``(N, 2, H, W)`` (upper, lower) at ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    return segment(crops, model) >= threshold
