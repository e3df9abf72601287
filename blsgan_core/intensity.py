"""Grey-value normalisation shared by the localiser and the segmenter."""

from __future__ import annotations

import numpy as np


def normalise_intensity(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Stretch grey values so that the ``low``..``high`` percentiles span [0, 1].

    Radiographs and crops differ in exposure, window and bit depth; percentiles (not
    min/max) keep burned-in labels and collimator edges from setting the range. Bright =
    bone is kept. Large images are subsampled for the percentiles (speed only).
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image, got shape {image.shape}")
    array = np.asarray(image, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("image contains NaN or infinite values")
    step_y, step_x = max(1, array.shape[0] // 512), max(1, array.shape[1] // 512)
    lo, hi = np.percentile(array[::step_y, ::step_x], (low, high))
    if hi - lo < 1e-6:
        return np.zeros_like(array)
    return np.clip((array - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)
