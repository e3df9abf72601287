"""JSW change of one joint by registering its bone layers baseline -> follow-up.

The JSN quantification the paper validates BLS-GAN on (partial image registration,
Wang et al. 2023; Ou et al. 2023) registers each bone of a joint on its own from the
baseline to the follow-up radiograph; the joint space changed by how far the metacarpal
moved relative to the phalanx along the finger axis. Registering the separated layers
uses each bone's whole appearance, also where the other bone overlaps it, and a motion
is found to a fraction of a pixel (``blsgan_core.registration``), finer than the
difference of two mask-based widths, each quantised to whole pixels.

Both crops have the finger pointing up (rows = finger axis, ``blsgan_core.crops``).
Crops of two radiographs differ in scale (the localiser sizes each crop to its hand), so
the baseline is first resampled about the crop centre by ``zoom`` (baseline length per
pixel over the follow-up's) onto the follow-up's pixel size. The change is read at the
joint centre of the follow-up: the middle of the joint space over the central columns
both bones share (``blsgan_core.jsw``). The crops cut the bones off at their borders, so
only differences more than ``BORDER_PX`` inside the crop count. Both layers are smoothed
by ``SMOOTHING_PX`` before they are registered: on the 819 follow-up pairs of
``mcp_joints``, smoothed separated layers gave the best motions of every condition tried
(``trainer.evaluation.jsn``, docs/measurements.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from blsgan_core.jsw import DEFAULT_CENTRAL_FRACTION, NoJointSpaceError, column_widths
from blsgan_core.registration import RigidRegistration, register_bone, smooth_inside
from blsgan_core.segment.predict import largest_component

# Crop pixels along each border left out of the registration: a bone the crop cuts off
# has an edge there that stays put whatever the bone does, and would pin the motion to
# zero. Wider than the motions between follow-ups of one joint in crop pixels.
BORDER_PX = 16
# Gaussian sigma (crop px) of the layers before registration; the JSN evaluation's sigma.
SMOOTHING_PX = 1.0


@dataclass(frozen=True)
class RegisteredChange:
    """Change of the joint space along the axis, in follow-up crop pixels (< 0: narrowed)."""

    change_px: float
    upper: RigidRegistration
    lower: RigidRegistration
    centre: tuple[float, float]


def _zoomed(image: NDArray[np.floating], zoom: float, order: int) -> NDArray[np.float32]:
    """``image`` scaled by ``zoom`` about its centre, on the same grid."""
    centre = (np.asarray(image.shape, dtype=float) - 1.0) / 2.0
    return ndimage.affine_transform(
        np.asarray(image, dtype=np.float32),
        np.full(2, 1.0 / zoom),
        centre - centre / zoom,
        order=order,
    )


def joint_centre(upper: NDArray[np.bool_], lower: NDArray[np.bool_]) -> tuple[float, float]:
    """(x, y) of the middle of the joint space over the central shared columns."""
    upper, lower = largest_component(upper), largest_component(lower)
    columns, widths = column_widths(upper, lower)
    if columns.size == 0:
        raise NoJointSpaceError("the phalanx and metacarpal masks share no column")
    first, last = int(columns[0]), int(columns[-1])
    margin = (last - first + 1) * (1.0 - DEFAULT_CENTRAL_FRACTION) / 2.0
    keep = (columns >= first + margin - 1e-9) & (columns <= last - margin + 1e-9)
    keep = keep if keep.any() else columns == columns[len(columns) // 2]
    rows = np.arange(upper.shape[0])[:, None]
    bottom = np.where(upper, rows, -1).max(axis=0)[columns[keep]]
    middle = bottom + (widths[keep] + 1.0) / 2.0
    return float(columns[keep].mean()), float(middle.mean())


def registered_width_change(
    baseline_layers: NDArray[np.floating],
    baseline_masks: NDArray[np.bool_],
    follow_up_layers: NDArray[np.floating],
    follow_up_masks: NDArray[np.bool_],
    *,
    zoom: float = 1.0,
) -> RegisteredChange:
    """JSW change from the baseline joint to the follow-up joint, by bone registration.

    Layers and masks are ``(2, H, W)``: upper (phalanx), lower (metacarpal); a layer's
    pixels outside its mask are not used (the node's layers may reach a little beyond the
    outline, towards the other bone: ``blsgan_core.segment.predict.separation_masks``).
    Raises ``NoJointSpaceError`` when the follow-up's bones share no column,
    ``ValueError`` for shapes that differ, an empty mask or a bad ``zoom``.
    """
    if not (zoom > 0 and math.isfinite(zoom)):
        raise ValueError(f"zoom must be positive and finite, got {zoom!r}")
    shapes = {np.shape(a) for a in (baseline_layers, baseline_masks)} | {
        np.shape(a) for a in (follow_up_layers, follow_up_masks)
    }
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[0] != 2:
        raise ValueError(f"layers and masks must all be (2, H, W), got {sorted(shapes)}")
    fixed_masks = np.asarray(follow_up_masks, dtype=bool)
    centre = joint_centre(fixed_masks[0], fixed_masks[1])
    inside = np.zeros(fixed_masks.shape[1:], bool)
    inside[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX] = True
    motions = []
    for bone in range(2):
        moving_mask = _zoomed(baseline_masks[bone].astype(np.float32), zoom, order=1) >= 0.5
        moving = _zoomed(baseline_layers[bone], zoom, order=3)
        moving = smooth_inside(moving, moving_mask, SMOOTHING_PX)
        fixed = smooth_inside(follow_up_layers[bone], fixed_masks[bone], SMOOTHING_PX)
        motions.append(register_bone(moving, moving_mask, fixed, fixed_masks[bone], region=inside))
    upper, lower = motions
    # The follow-up's joint centre, traced back onto the baseline by each bone's motion:
    # the baseline rows of the two bones' points that now sit at the same place.
    _, upper_y = upper.baseline_point(*centre)
    _, lower_y = lower.baseline_point(*centre)
    return RegisteredChange(change_px=upper_y - lower_y, upper=upper, lower=lower, centre=centre)
