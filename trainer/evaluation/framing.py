"""Where the joint space sits in a joint crop, and how much of the crop the bones fill.

The localiser learned on children's hands (open growth plates) and cuts crops by a rule
(joint centre = MCP landmark moved 0.1 x MCP2-MCP3 towards the wrist, side 1.2 x
MCP2-MCP3); the segmenter and BLS-GAN learned on published crops of adults with RA. This
check measures both kinds of crop the same way, from their bone masks:

- the **joint-space centre**: over the middle half of the columns both bones span, the
  midpoint between the upper bone's proximal rim (its lowest row) and the lower bone's
  distal rim (its highest row), median over those columns; reported as the offset from
  the crop centre, in pixels of a 256 crop and as a fraction of the crop side. Where the
  bones overlap the midpoint lies inside the overlap band, still the joint's centre.
- the **bone widths**: the widest row of each mask, as a fraction of the crop side (how
  far the crop is zoomed onto the joint).

Adult crops are measured on their annotated masks; the localiser's crops of the atlas
on the shipped segmenter's masks (no annotated masks exist there), which is itself a
domain transfer and is stated with the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

# The joint space counts as centred within this fraction of the crop side (13 px of 256).
CENTRED_WITHIN = 0.05


def joint_space_centre(upper: np.ndarray, lower: np.ndarray) -> tuple[float, float] | None:
    """``(x, y)`` of the joint space in a finger-up crop, or None if the bones share no column."""
    if upper.shape != lower.shape or upper.ndim != 2:
        raise ValueError(f"masks must be 2-D of one shape, got {upper.shape} and {lower.shape}")
    columns = np.nonzero(upper.any(axis=0) & lower.any(axis=0))[0]
    if columns.size == 0:
        return None
    quarter = columns.size // 4
    middle = columns[quarter : columns.size - quarter]
    rows = np.arange(upper.shape[0])[:, None]
    upper_rim = np.where(upper[:, middle], rows, -1).max(axis=0)
    lower_rim = np.where(lower[:, middle], rows, upper.shape[0]).min(axis=0)
    return float(middle.mean()), float(np.median((upper_rim + lower_rim) / 2.0))


def widest_row(mask: np.ndarray) -> int:
    """Pixels across the widest row of a mask (outermost pixels, gaps included)."""
    widths = [
        int(cols[-1] - cols[0] + 1) for cols in (np.nonzero(row)[0] for row in mask) if cols.size
    ]
    return max(widths, default=0)


def measure_crop(masks: np.ndarray) -> dict[str, float] | None:
    """Joint-space offset and bone widths of one crop's masks ``(2, S, S)``, relative to S."""
    upper, lower = np.asarray(masks[0], bool), np.asarray(masks[1], bool)
    centre = joint_space_centre(upper, lower)
    if centre is None:
        return None
    side = upper.shape[1]
    middle = (side - 1) / 2.0
    return {
        "dx": (centre[0] - middle) / side,
        "dy": (centre[1] - middle) / side,
        "upper_width": widest_row(upper) / side,
        "lower_width": widest_row(lower) / side,
    }


def summarise_framing(masks: Iterable[np.ndarray], label: str) -> dict[str, Any]:
    """Mean, sd and percentiles of ``measure_crop`` over crops; offsets also in 256-px pixels."""
    rows = [m for m in (measure_crop(masks_) for masks_ in masks) if m is not None]
    n_crops = len(rows)
    report: dict[str, Any] = {"crops": label, "n_measured": n_crops}
    if not rows:
        return report
    for key in ("dx", "dy", "upper_width", "lower_width"):
        values = np.array([row[key] for row in rows])
        report[key] = {
            "mean": float(values.mean()),
            "sd": float(values.std()),
            "p5": float(np.percentile(values, 5)),
            "p95": float(np.percentile(values, 95)),
        }
    offsets = np.hypot([r["dx"] for r in rows], [r["dy"] for r in rows])
    report["offset_px_256_median"] = float(np.median(offsets) * 256)
    report["centred_fraction"] = float((offsets <= CENTRED_WITHIN).mean())
    return report
