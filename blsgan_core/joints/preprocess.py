"""Image preparation shared by the localiser's training and inference."""

from __future__ import annotations

import numpy as np

from blsgan_core.crops import similarity
from blsgan_core.intensity import normalise_intensity

__all__ = ["fit_square", "normalise_intensity"]


def fit_square(shape: tuple[int, int], size: int) -> np.ndarray:
    """Affine from a ``size`` x ``size`` canvas to an image of ``shape``: whole image, centred.

    The long side fills the canvas; the short side is padded equally on both sides.
    """
    height, width = shape
    if height < 1 or width < 1:
        raise ValueError(f"image shape must be positive, got {shape!r}")
    scale = max(height, width) / size
    middle = (size - 1) / 2.0
    return similarity((middle, middle), ((width - 1) / 2.0, (height - 1) / 2.0), scale, 0.0)
