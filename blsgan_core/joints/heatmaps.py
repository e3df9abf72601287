"""Gaussian heatmaps: targets for training, peaks with sub-pixel refinement for inference."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def render_gaussians(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """One channel per point ``(x, y)``, a Gaussian of peak 1; NaN points give empty channels."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    height, width = shape
    ys = np.arange(height, dtype=np.float32)[None, :, None]
    xs = np.arange(width, dtype=np.float32)[None, None, :]
    px = points[:, 0, None, None]
    py = points[:, 1, None, None]
    maps = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))
    return np.nan_to_num(maps, nan=0.0).astype(np.float32)


def render_max_gaussians(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A single channel: the pixel-wise maximum of one Gaussian per point (several objects)."""
    if len(points) == 0:
        return np.zeros(shape, np.float32)
    return render_gaussians(points, shape, sigma).max(axis=0)


def refine_peak(heatmap: np.ndarray, row: int, col: int, radius: int = 2) -> tuple[float, float]:
    """Sub-pixel ``(x, y)`` of a peak: centroid of the heatmap in a window around it.

    The window's minimum is subtracted first so that a flat background does not pull the
    centroid towards the window's centre.
    """
    height, width = heatmap.shape
    r0, r1 = max(row - radius, 0), min(row + radius + 1, height)
    c0, c1 = max(col - radius, 0), min(col + radius + 1, width)
    window = heatmap[r0:r1, c0:c1].astype(np.float64)
    window = window - window.min()
    total = window.sum()
    if total <= 0:
        return float(col), float(row)
    rows, cols = np.mgrid[r0:r1, c0:c1]
    return float((window * cols).sum() / total), float((window * rows).sum() / total)


def argmax_peak(heatmap: np.ndarray, radius: int = 2) -> tuple[float, float, float]:
    """The strongest peak of one channel: ``(x, y, value)`` with sub-pixel refinement."""
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heatmap.shape}")
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    x, y = refine_peak(heatmap, int(row), int(col), radius)
    return x, y, float(heatmap[row, col])


def find_peaks(
    heatmap: np.ndarray, threshold: float, min_distance: int, radius: int = 2
) -> list[tuple[float, float, float]]:
    """All local maxima above ``threshold`` at least ``min_distance`` apart, strongest first."""
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heatmap.shape}")
    size = 2 * min_distance + 1
    local_max = heatmap == ndimage.maximum_filter(heatmap, size=size, mode="constant")
    rows, cols = np.nonzero(local_max & (heatmap >= threshold))
    order = np.argsort(-heatmap[rows, cols])
    peaks = []
    for index in order:
        row, col = int(rows[index]), int(cols[index])
        x, y = refine_peak(heatmap, row, col, radius)
        peaks.append((x, y, float(heatmap[row, col])))
    return peaks


def distribution_peak(probability: np.ndarray, radius: int = 2) -> tuple[float, float, float]:
    """Peak of a map that sums to 1: ``(x, y, mass)``, mass = probability in the window.

    The mass near the peak is the confidence: close to 1 for one sharp peak, small when
    the map is spread over several places or over noise.
    """
    x, y, _ = argmax_peak(probability, radius)
    row, col = round(y), round(x)
    height, width = probability.shape
    window = probability[
        max(row - radius, 0) : min(row + radius + 1, height),
        max(col - radius, 0) : min(col + radius + 1, width),
    ]
    return x, y, float(min(window.sum(), 1.0))
