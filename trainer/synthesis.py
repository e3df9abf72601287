"""Synthetic overlaps for pre-training, made from joints whose bones do not overlap.

Stand-in for ``blsgan_core.synthetic`` (owned by the core package, not yet available on
this branch): same recipe as DESIGN.md states it, kept small so it can be swapped for
the core function without touching the datasets.

Recipe: the layers of a non-overlapping joint are known exactly, ``L_i = J * M_i``.
Move the upper bone (with its mask) down and the lower bone up, vertically, until they
overlap by ``depth`` rows at the columns where they come closest (plus a small random
sideways shift of the upper bone), then compose the image with Eq. 1: where the shifted
masks overlap, ``1 - (1 - L1)(1 - L2) / k``; inside one mask, that layer; outside both,
the soft-tissue background ``B``. ``k = 1 - mean(B over the overlap)`` (the background's
grey value converted to a transmittance, :func:`transmittance_from_background`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from blsgan_core.reconstruction import reconstruct, transmittance_from_background


@dataclass(frozen=True)
class SyntheticOptions:
    """Overlap depth in rows and the sideways jitter of the upper bone, both in pixels."""

    min_depth: int = 1
    max_depth: int = 8
    max_sideways: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.min_depth <= self.max_depth:
            raise ValueError(
                f"need 1 <= min_depth <= max_depth, got {self.min_depth}, {self.max_depth}"
            )
        if self.max_sideways < 0:
            raise ValueError(f"max_sideways must be >= 0, got {self.max_sideways}")


@dataclass(frozen=True)
class SyntheticOverlap:
    """A composed image ``(H, W)``, shifted masks and true layers ``(2, H, W)``, and k."""

    image: NDArray[np.float32]
    masks: NDArray[np.bool_]
    layers: NDArray[np.float32]
    k: float

    @property
    def overlap_px(self) -> int:
        """Pixels inside both shifted masks."""
        return int(np.count_nonzero(self.masks[0] & self.masks[1]))


def shift_array(array: NDArray, rows: int, cols: int) -> NDArray:
    """``array`` moved by ``rows`` down and ``cols`` right; vacated pixels are zero."""
    result = np.zeros_like(array)
    height, width = array.shape[-2:]
    if abs(rows) >= height or abs(cols) >= width:
        return result
    source_rows = slice(max(0, -rows), height - max(0, rows))
    target_rows = slice(max(0, rows), height - max(0, -rows))
    source_cols = slice(max(0, -cols), width - max(0, cols))
    target_cols = slice(max(0, cols), width - max(0, -cols))
    result[..., target_rows, target_cols] = array[..., source_rows, source_cols]
    return result


def vertical_gap(upper: NDArray[np.bool_], lower: NDArray[np.bool_]) -> int:
    """Smallest number of rows between the upper bone's bottom and the lower bone's top.

    Measured per column where both bones are present; negative if they already overlap.
    Raises ``ValueError`` when no column holds both bones (they cannot be pushed together
    vertically).
    """
    rows = np.arange(upper.shape[0])[:, None]
    both = upper.any(axis=0) & lower.any(axis=0)
    if not both.any():
        raise ValueError("the two bones share no column: no vertical overlap can be made")
    upper_bottom = np.where(upper, rows, -1).max(axis=0)[both]
    lower_top = np.where(lower, rows, upper.shape[0]).min(axis=0)[both]
    return int((lower_top - upper_bottom - 1).min())


def synthesize_overlap(
    image: NDArray[np.float32],
    upper: NDArray[np.bool_],
    lower: NDArray[np.bool_],
    background: NDArray[np.float32],
    rng: np.random.Generator,
    options: SyntheticOptions | None = None,
) -> SyntheticOverlap:
    """One synthetic overlap of a joint whose masks do not intersect (see module docstring)."""
    options = options or SyntheticOptions()
    if np.any(upper & lower):
        raise ValueError("synthetic overlaps need a joint whose bone masks do not intersect")
    sideways = int(rng.integers(-options.max_sideways, options.max_sideways + 1))
    depth = int(rng.integers(options.min_depth, options.max_depth + 1))
    moved_upper = shift_array(upper, 0, sideways)
    gap = vertical_gap(moved_upper, lower)
    total = max(gap + depth, 0)
    down = int(rng.integers(0, total + 1))
    masks = np.stack([shift_array(upper, down, sideways), shift_array(lower, down - total, 0)])
    layers = np.stack(
        [
            shift_array(image * upper, down, sideways),
            shift_array(image * lower, down - total, 0),
        ]
    ).astype(np.float32)
    overlap = masks[0] & masks[1]
    region = overlap if overlap.any() else masks.any(axis=0)
    k = float(transmittance_from_background(float(background[region].mean())))
    composed = reconstruct(
        torch.from_numpy(layers)[None], torch.from_numpy(masks.astype(np.float32))[None], k
    )[0, 0].numpy()
    union = masks.any(axis=0)
    synthetic = np.where(union, composed, background).astype(np.float32)
    return SyntheticOverlap(synthetic, masks, layers, k)
