"""A joint's space width in the units the derived objects report (glue: jsw -> JointSpace).

:func:`blsgan_core.jsw.measure_jsw` measures in crop pixels; the crop's affine turns a
crop pixel along the finger axis into source pixels, and the source's spacing into mm.
Pixel Spacing (at the patient) wins over Imager Pixel Spacing (at the detector, so
magnified by the source-to-detector over source-to-object distance ratio, a few percent
for a hand lying on the detector); without either the widths stay in source pixels.
"""

from __future__ import annotations

import math

import numpy as np

from blsgan_core.crops import CropGeometry
from blsgan_core.jsw import NoJointSpaceError, crop_mm_per_pixel, measure_jsw
from dicom_node.derived.model import JointSpace, LengthUnit, SpacingSource


def joint_space(
    upper: np.ndarray,
    lower: np.ndarray,
    geometry: CropGeometry,
    spacing_mm: tuple[float, float] | None,
    spacing_attribute: str | None,
) -> JointSpace | None:
    """JSW min/mean and overlap depth of one crop's masks; ``None`` if not measurable."""
    try:
        width = measure_jsw(upper, lower)
    except NoJointSpaceError:
        return None
    if spacing_mm is None:
        # Source pixels per crop pixel along the axis: the spacing of a unit-pixel grid.
        scale = crop_mm_per_pixel(geometry.matrix, (1.0, 1.0))
        unit, source = LengthUnit.PIXELS, SpacingSource.NONE
    else:
        scale = crop_mm_per_pixel(geometry.matrix, spacing_mm)
        if spacing_attribute is None:
            raise ValueError("a pixel spacing needs the attribute it came from")
        unit, source = LengthUnit.MILLIMETER, SpacingSource(spacing_attribute)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"crop scale {scale!r} is not a positive length")
    return JointSpace(
        min_width=width.min_px * scale,
        mean_width=width.mean_px * scale,
        overlap_depth=width.overlap_depth_px * scale,
        unit=unit,
        spacing=source,
    )
