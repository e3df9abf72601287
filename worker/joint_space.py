"""A joint's space width in the units the derived objects report (glue: jsw -> JointSpace).

:func:`blsgan_core.jsw.measure_jsw` measures in crop pixels; the crop's affine turns a
crop pixel along the finger axis into source pixels, and the source's spacing into mm.
Pixel Spacing (at the patient) wins over Imager Pixel Spacing (at the detector, so
magnified by the source-to-detector over source-to-object distance ratio, a few percent
for a hand lying on the detector); without either the widths stay in source pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from blsgan_core.crops import CropGeometry
from blsgan_core.jsw import NoJointSpaceError, crop_mm_per_pixel, measure_jsw
from blsgan_core.progression import registered_width_change
from dicom_node.db.measurements import JointRow, PriorJoint
from dicom_node.derived.model import (
    JointSpace,
    JointSpaceChange,
    LengthUnit,
    RadiographResult,
    SpacingSource,
)
from worker.joint_layers import StoredJoint


@dataclass(frozen=True)
class FollowUp:
    """The patient behind a radiograph (keyed pseudonym) and its earlier joints, if any.

    ``prior_layers`` are the stored layers of those joints (``worker.joint_layers``),
    keyed like ``priors``; a prior processed before layers were kept has none.
    """

    pseudonym: str | None = None
    study_date: str | None = None
    priors: dict[tuple[str, str], PriorJoint] = field(default_factory=dict)
    prior_layers: dict[tuple[str, str], StoredJoint] = field(default_factory=dict)


def _day(value: str | None) -> date | None:
    """A DICOM DA (``YYYYMMDD``) as a date, ``None`` if absent or malformed."""
    if value is None or len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def registered_change(prior: StoredJoint | None, now: StoredJoint) -> float | None:
    """JSW change (in the joints' length unit) by registering the prior's layers onto now's.

    ``None`` without prior layers or when the bones now share no column.
    """
    if prior is None:
        return None
    try:
        found = registered_width_change(
            prior.layers, prior.masks, now.layers, now.masks, zoom=prior.scale / now.scale
        )
    except NoJointSpaceError:
        return None
    return found.change_px * now.scale


def joint_change(
    space: JointSpace | None,
    prior: PriorJoint | None,
    study_date: str | None,
    registered: float | None = None,
) -> JointSpaceChange | None:
    """JSW now minus on the prior, when both were measured on the same scale.

    ``registered`` is the change found by registering the prior's layers
    (:func:`registered_change`), on the same scale.
    """
    if space is None or prior is None or prior.jsw_min is None or prior.jsw_mean is None:
        return None
    if (prior.length_unit, prior.spacing_source) != (space.unit.value, space.spacing.value):
        return None  # mm at the detector and at the patient, or pixels, do not subtract
    now, before = _day(study_date), _day(prior.study_date)
    days = (now - before).days if now is not None and before is not None else None
    return JointSpaceChange(
        min_change=space.min_width - prior.jsw_min,
        mean_change=space.mean_width - prior.jsw_mean,
        unit=space.unit,
        interval_days=days if days is not None and days > 0 else None,
        prior_sop_instance_uid=prior.sop_instance_uid,
        registered_change=registered,
    )


def crop_scale(
    geometry: CropGeometry, spacing_mm: tuple[float, float] | None, spacing_attribute: str | None
) -> tuple[float, LengthUnit, SpacingSource]:
    """Length per crop pixel along the finger axis, its unit and the spacing it rests on."""
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
    return scale, unit, source


def joint_space(
    upper: np.ndarray,
    lower: np.ndarray,
    geometry: CropGeometry,
    spacing_mm: tuple[float, float] | None,
    spacing_attribute: str | None,
    *,
    one_region_each: bool = False,
) -> JointSpace | None:
    """JSW min/mean and overlap depth of one crop's masks; ``None`` if not measurable.

    ``one_region_each``: as ``measure_jsw``'s (the masks of ``segment_masks``).
    """
    try:
        width = measure_jsw(upper, lower, one_region_each=one_region_each)
    except NoJointSpaceError:
        return None
    scale, unit, source = crop_scale(geometry, spacing_mm, spacing_attribute)
    return JointSpace(
        min_width=width.min_px * scale,
        mean_width=width.mean_px * scale,
        overlap_depth=width.overlap_depth_px * scale,
        unit=unit,
        spacing=source,
    )


def spacing_source(spacing_attribute: str | None) -> SpacingSource:
    """The scale of a radiograph's measurements from the attribute its spacing came from."""
    return SpacingSource.NONE if spacing_attribute is None else SpacingSource(spacing_attribute)


def joint_rows(
    result: RadiographResult,
    spacing_mm: tuple[float, float] | None,
    source: SpacingSource,
    pseudonym: str | None = None,
) -> list[JointRow]:
    """One bookkeeping row per joint of ``result``: JSW, overlap depth and area, k."""
    unit = LengthUnit.PIXELS if source is SpacingSource.NONE else LengthUnit.MILLIMETER
    rows = []
    for side, joint in result.joints():
        space, change = joint.space, joint.change
        if spacing_mm is None:
            area, area_unit = float(joint.overlap_area_px), LengthUnit.PIXELS.value
        else:
            area, area_unit = joint.overlap_area_mm2(spacing_mm), "mm2"
        rows.append(
            JointRow(
                side=side.value,
                joint=joint.joint.value,
                model_name=result.model.name,
                model_version=result.model.version,
                jsw_min=space.min_width if space else None,
                jsw_mean=space.mean_width if space else None,
                overlap_depth=space.overlap_depth if space else None,
                length_unit=unit.value,
                spacing_source=source.value,
                overlap_area=area,
                area_unit=area_unit,
                k=float(joint.k),
                patient_pseudonym=pseudonym,
                prior_sop_instance_uid=change.prior_sop_instance_uid if change else None,
                interval_days=change.interval_days if change else None,
                jsw_min_change=change.min_change if change else None,
                jsw_mean_change=change.mean_change if change else None,
                jsw_registered_change=change.registered_change if change else None,
            )
        )
    return rows
