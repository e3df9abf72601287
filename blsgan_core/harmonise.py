"""Grey-value harmonisation of joint crops: one grey scale for the segmenter and BLS-GAN.

A crop's grey values depend on the source: bit depth, window or VOI LUT, exposure,
MONOCHROME1/2 handled or not. Any increasing grey transform (a window, a gamma, a
sigmoid VOI LUT, a rescale) keeps the order of the pixels, so mapping the crop's own
percentiles piecewise-linearly onto fixed reference percentiles undoes it: the result
has the reference's grey statistics whatever transform the source applied. The
reference is the mean percentile curve of the ``mcp_joints`` training crops (what both
networks learned from), so a crop that already looks like the training data changes
little.

A decreasing transform (an inverted image: MONOCHROME1 shown as MONOCHROME2, or a
negative export) is recognised from the crop itself: the finger points up, so the
bones run through the crop's central columns, and the median of that band is brighter
than the median of the outer columns on every one of the 1190 valid ``mcp_joints``
crops (smallest margin 0.13 of the grey range, see ``bone_contrast``). Medians keep
their order under any increasing transform, so the check does not depend on the window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Percentiles at which each crop is matched to the reference (the knots of the map).
PERCENTILES = (0.5, 2.0, 10.0, 25.0, 50.0, 75.0, 90.0, 98.0, 99.5)
# Mean of each percentile over the 1009 valid training crops of ../shared/data/mcp_joints
# (split by case, seed 0, val_fraction 0.15; grey values / 255), measured by
# ``trainer.frontend.intensity_reference`` (``python -m trainer.frontend.intensity_reference``).
REFERENCE = (0.0988, 0.1349, 0.2142, 0.3015, 0.4239, 0.5455, 0.6384, 0.7482, 0.8119)
# Equal knots (flat stretches, e.g. a window that clips) are spread apart by this, so
# the map stays a function.
MIN_KNOT_GAP = 1e-6


def bone_contrast(crop: np.ndarray) -> float:
    """Median of the central column band minus the median of the outer columns.

    Positive for a crop with bright bone (finger up), negative for an inverted one.
    """
    _check(crop)
    width = crop.shape[1]
    centre = crop[:, 3 * width // 8 : 5 * width // 8]
    outer = np.concatenate([crop[:, : width // 8], crop[:, width - width // 8 :]], axis=1)
    return float(np.median(centre) - np.median(outer))


def harmonise(crop: np.ndarray) -> np.ndarray:
    """The crop mapped onto the reference grey statistics, bright = bone, float32 [0, 1].

    Inverted crops (``bone_contrast`` < 0) are turned back first. A crop without any
    contrast (all one value) becomes the reference median everywhere.
    """
    return grey_map(crop)(crop)


def grey_map(crop: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The grey transform :func:`harmonise` applies to ``crop``, to apply to other arrays.

    An image derived from the crop's grey values (its soft-tissue background) goes
    through the same map, so it stays on the crop's new grey scale.
    """
    _check(crop)
    array = np.asarray(crop, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    inverted = bone_contrast(array) < 0
    if inverted:
        array = high + low - array
    knots = np.percentile(array, PERCENTILES).astype(np.float64)
    reference = np.asarray(REFERENCE, dtype=np.float64)
    flat = knots[-1] - knots[0] < MIN_KNOT_GAP
    # Percentiles never decrease; equal ones (flat stretches) are spread apart.
    knots = knots + MIN_KNOT_GAP * np.arange(len(knots))
    # Beyond the outer knots, continue with the slope of the outer segments.
    low_slope = (reference[1] - reference[0]) / (knots[1] - knots[0])
    high_slope = (reference[-1] - reference[-2]) / (knots[-1] - knots[-2])

    def apply(values: np.ndarray) -> np.ndarray:
        grey = np.asarray(values, dtype=np.float32)
        if flat:
            return np.full(grey.shape, reference[len(reference) // 2], dtype=np.float32)
        if inverted:
            grey = high + low - grey
        mapped = np.interp(grey, knots, reference)
        mapped = np.where(grey < knots[0], reference[0] + (grey - knots[0]) * low_slope, mapped)
        mapped = np.where(grey > knots[-1], reference[-1] + (grey - knots[-1]) * high_slope, mapped)
        return np.clip(mapped, 0.0, 1.0).astype(np.float32)

    return apply


def harmonise_batch(crops: np.ndarray) -> np.ndarray:
    """``harmonise`` of each crop of ``(N, H, W)``."""
    array = np.asarray(crops)
    if array.ndim != 3:
        raise ValueError(f"crops must be (N, H, W), got shape {array.shape}")
    return np.stack([harmonise(crop) for crop in array]) if len(array) else array.astype(np.float32)


def _check(crop: np.ndarray) -> None:
    if crop.ndim != 2:
        raise ValueError(f"expected a 2-D crop, got shape {crop.shape}")
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        raise ValueError(f"crop {crop.shape} is too small to harmonise (at least 8 x 8)")
    if not np.all(np.isfinite(crop)):
        raise ValueError("crop contains NaN or infinite values")
