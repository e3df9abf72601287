"""Joint space width (JSW) of an MCP joint crop, from the two bones' amodal masks.

The crop has the finger pointing up (``blsgan_core.crops``): the **upper** mask is the
base of the proximal phalanx, the **lower** mask the metacarpal head, and the finger axis
is the crop's column direction. For every column the width is the number of pixels
between the phalanx's lowest pixel and the metacarpal's highest pixel::

    width(x) = top_lower(x) - bottom_upper(x) - 1

Touching bones give 0; where the amodal masks overlap the same formula gives minus the
overlap depth along the axis (rows inside both bones), so an overlapping joint reads as
a negative width rather than a meaningless zero.

Choices, and why:

- Masks, not layer intensities: the separated layers are ``G(J, M) * M_i``, so each
  layer's support is its mask; the masks are the bone outlines the separation works on.
- Each mask keeps its largest 8-connected region, holes filled: a speck of a
  neighbouring finger or a sesamoid must not become the "nearest bone".
- Only the central ``central_fraction`` (default 0.6) of the columns where both bones
  are present are measured: at the joint's margins the articular surfaces curve away and
  the column-wise gap measures the bones' flanks, not the joint space. Radiographic JSW
  methods measure the central part of the joint for the same reason.
- Pixels of the crop; :func:`crop_mm_per_pixel` converts with the crop's affine and the
  source's pixel spacing along the axis.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from blsgan_core.segment.predict import largest_component

DEFAULT_CENTRAL_FRACTION = 0.6


@dataclass(frozen=True)
class JointSpaceWidth:
    """One joint's widths along the finger axis, in crop pixels (negative = overlap).

    Attributes
    ----------
    min_px, mean_px
        Smallest and mean width over the measured columns.
    overlap_depth_px
        Deepest overlap along the axis (``max(0, -min_px)``).
    overlap_area_px
        Crop pixels inside both (cleaned) masks.
    columns
        How many columns were measured.
    """

    min_px: float
    mean_px: float
    overlap_depth_px: float
    overlap_area_px: int
    columns: int

    def scaled(self, mm_per_px: float) -> dict[str, float]:
        """Widths and overlap depth in mm, for ``mm_per_px`` along the axis."""
        if not mm_per_px > 0 or not math.isfinite(mm_per_px):
            raise ValueError(f"mm_per_px must be positive and finite, got {mm_per_px!r}")
        return {
            "min_mm": self.min_px * mm_per_px,
            "mean_mm": self.mean_px * mm_per_px,
            "overlap_depth_mm": self.overlap_depth_px * mm_per_px,
        }

    def as_dict(self) -> dict[str, float | int]:
        """Plain data for JSON."""
        return asdict(self)


class NoJointSpaceError(ValueError):
    """The two masks share no column: there is no joint space to measure along the axis."""


def column_widths(
    upper: NDArray[np.bool_], lower: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Columns where both masks are present and the width in each (pixels, signed)."""
    upper, lower = np.asarray(upper, dtype=bool), np.asarray(lower, dtype=bool)
    if upper.ndim != 2 or upper.shape != lower.shape:
        raise ValueError(f"masks must be 2-D of one shape, got {upper.shape}, {lower.shape}")
    rows = np.arange(upper.shape[0])[:, None]
    shared = np.flatnonzero(upper.any(axis=0) & lower.any(axis=0))
    bottom_upper = np.where(upper, rows, -1).max(axis=0)[shared]
    top_lower = np.where(lower, rows, upper.shape[0]).min(axis=0)[shared]
    return shared, (top_lower - bottom_upper - 1).astype(np.float64)


def measure_jsw(
    upper: NDArray[np.bool_],
    lower: NDArray[np.bool_],
    *,
    central_fraction: float = DEFAULT_CENTRAL_FRACTION,
    one_region_each: bool = False,
) -> JointSpaceWidth:
    """Minimum and mean JSW of one crop (finger up) from its upper and lower bone masks.

    ``one_region_each``: each mask is already its largest region with holes filled
    (``segment_masks``' masks), so that step, which would give the same masks again, is
    skipped.

    Raises
    ------
    NoJointSpaceError
        A mask is empty or the bones share no column.
    ValueError
        Masks of different shapes, or ``central_fraction`` outside (0, 1].
    """
    if not 0.0 < central_fraction <= 1.0:
        raise ValueError(f"central_fraction must be in (0, 1], got {central_fraction!r}")
    upper, lower = np.asarray(upper, dtype=bool), np.asarray(lower, dtype=bool)
    if not one_region_each:
        upper, lower = largest_component(upper), largest_component(lower)
    columns, widths = column_widths(upper, lower)
    if columns.size == 0:
        raise NoJointSpaceError("the phalanx and metacarpal masks share no column")
    # Central part of the shared span (by position, so gaps in it are not re-centred).
    first, last = int(columns[0]), int(columns[-1])
    margin = (last - first + 1) * (1.0 - central_fraction) / 2.0
    keep = (columns >= first + margin - 1e-9) & (columns <= last - margin + 1e-9)
    if not keep.any():
        keep = columns == columns[len(columns) // 2]
    central = widths[keep]
    minimum = float(central.min())
    return JointSpaceWidth(
        min_px=minimum,
        mean_px=float(central.mean()),
        overlap_depth_px=max(0.0, -minimum),
        overlap_area_px=int(np.count_nonzero(upper & lower)),
        columns=int(keep.sum()),
    )


def crop_mm_per_pixel(
    crop_to_source: NDArray[np.floating], spacing_mm: tuple[float, float]
) -> float:
    """Millimetres per crop pixel along the crop's column (finger) axis.

    ``crop_to_source`` is a crop's 3x3 affine (``CropGeometry.matrix``), ``spacing_mm`` the
    source's (row, column) spacing. A crop step of one row maps to a source displacement
    ``(dx, dy)``; its length in mm is ``hypot(dx * column_spacing, dy * row_spacing)``, so
    a rotated crop of a source with non-square pixels gets the right scale along the axis.
    """
    matrix = np.asarray(crop_to_source, dtype=float)
    if matrix.shape != (3, 3):
        raise ValueError(f"crop_to_source must be 3x3, got {matrix.shape}")
    row, column = spacing_mm
    if not (row > 0 and column > 0):
        raise ValueError(f"pixel spacing must be positive, got {spacing_mm!r}")
    dx, dy = matrix[:2, :2] @ np.array([0.0, 1.0])
    return float(math.hypot(dx * column, dy * row))
