"""Where the joint space of an MCP crop is, and a square window around it.

Presets that train on windows smaller than the joint crop (the ``cpu`` ones: 128 of 256
px) cut them around the joint space; the model cuts the same window for its k at
inference (:attr:`blsgan_core.model.BLSGANConfig.reconstructor_window`). One definition
of the joint space serves both, so the reconstructor sees at inference what it saw in
training.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def joint_space_centre(masks: NDArray[np.bool_]) -> tuple[float, float]:
    """Row and column of the joint space: the overlap's centroid, else the narrowest gap.

    The pixels where the summed distances to the two bones are (within a pixel) smallest
    lie inside the overlap when there is one, else across the gap between the bones.
    Masks ``(2, H, W)``, both non-empty.
    """
    if masks.ndim != 3 or not all(mask.any() for mask in masks):
        raise ValueError(f"need non-empty masks (n, H, W), got shape {masks.shape}")
    distance = sum(ndimage.distance_transform_edt(~mask) for mask in masks)
    rows, cols = np.nonzero(distance <= distance.min() + 1.0)
    return float(rows.mean()), float(cols.mean())


def window_around(
    centre: tuple[float, float],
    size: int,
    shape: tuple[int, int],
    offset: tuple[int, int] = (0, 0),
) -> tuple[slice, slice]:
    """A ``size`` square centred on ``centre`` moved by ``offset``, kept inside ``shape``.

    The whole image where ``size`` does not fit in it.
    """
    height, width = shape
    if size >= min(height, width):
        return slice(0, height), slice(0, width)
    top = min(max(round(centre[0] - size / 2) + offset[0], 0), height - size)
    left = min(max(round(centre[1] - size / 2) + offset[1], 0), width - size)
    return slice(top, top + size), slice(left, left + size)


def joint_window(masks: NDArray[np.bool_], size: int) -> tuple[slice, slice]:
    """The ``size`` window around the joint space of ``masks`` ``(n, H, W)``; around the
    image centre where a mask is empty (no joint space to find)."""
    shape = (int(masks.shape[-2]), int(masks.shape[-1]))
    if all(mask.any() for mask in masks):
        centre = joint_space_centre(masks)
    else:
        centre = (shape[0] / 2, shape[1] / 2)
    return window_around(centre, size, shape)
