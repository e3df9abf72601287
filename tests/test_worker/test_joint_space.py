"""Joint space in report units: crop pixels -> source pixels -> mm, per spacing source."""

from __future__ import annotations

from pathlib import Path

import pytest

from blsgan_core.crops import CropGeometry
from blsgan_core.data import load_sample, read_manifests
from blsgan_core.jsw import measure_jsw
from dicom_node.db.measurements import PriorJoint
from dicom_node.derived.model import JointSpace, LengthUnit, SpacingSource
from worker.joint_space import joint_change, joint_space


def test_real_joint_in_mm_and_pixels(mcp_joints_dir: Path) -> None:
    record = next(
        r for r in read_manifests(mcp_joints_dir / "manifest.json").records if r.overlap_px > 50
    )
    sample = load_sample(record)
    crop_px = measure_jsw(sample.upper, sample.lower)
    # A crop of 512 source pixels at 256: two source pixels per crop pixel, turned 30 deg.
    geometry = CropGeometry(900.0, 700.0, side_px=512.0, angle_deg=30.0, size=256)
    in_mm = joint_space(sample.upper, sample.lower, geometry, (0.15, 0.15), "PixelSpacing")
    assert in_mm is not None
    assert in_mm.unit is LengthUnit.MILLIMETER and in_mm.spacing is SpacingSource.PIXEL_SPACING
    assert in_mm.min_width == pytest.approx(crop_px.min_px * 2 * 0.15)
    assert in_mm.mean_width == pytest.approx(crop_px.mean_px * 2 * 0.15)
    assert in_mm.min_width < 0 and in_mm.overlap_depth == pytest.approx(-in_mm.min_width)
    in_px = joint_space(sample.upper, sample.lower, geometry, None, None)
    assert in_px is not None and in_px.unit is LengthUnit.PIXELS
    assert in_px.min_width == pytest.approx(crop_px.min_px * 2)
    detector = joint_space(sample.upper, sample.lower, geometry, (0.1, 0.1), "ImagerPixelSpacing")
    assert detector is not None and detector.spacing.caveat is not None
    empty = sample.lower & False
    assert joint_space(sample.upper, empty, geometry, None, None) is None
    with pytest.raises(ValueError, match="attribute"):
        joint_space(sample.upper, sample.lower, geometry, (0.1, 0.1), None)


def test_change_only_between_widths_on_one_scale() -> None:
    space = JointSpace(1.1, 1.4, 0.0, LengthUnit.MILLIMETER, SpacingSource.PIXEL_SPACING)
    prior = PriorJoint("1.2.3", "20230101", 1.5, 1.6, "mm", "PixelSpacing")
    change = joint_change(space, prior, "20240101")
    assert change is not None and change.interval_days == 365
    assert change.min_change == pytest.approx(-0.4) and change.mean_change == pytest.approx(-0.2)
    assert change.min_change_per_year == pytest.approx(-0.4 * 365.25 / 365)
    undated = joint_change(space, prior, None)
    assert undated is not None and undated.min_change_per_year is None
    detector = PriorJoint("1.2.3", "20230101", 1.5, 1.6, "mm", "ImagerPixelSpacing")
    assert joint_change(space, detector, "20240101") is None
    unmeasured = PriorJoint("1.2.3", "20230101", None, None, "mm", "PixelSpacing")
    assert joint_change(space, unmeasured, "20240101") is None
    assert joint_change(None, prior, "20240101") is None
