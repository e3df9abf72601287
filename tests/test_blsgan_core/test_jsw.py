"""Joint space width: signed per-column gaps, exact under known shifts, scaled by the crop."""

import math

import numpy as np
import pytest

from blsgan_core.crops import CropGeometry
from blsgan_core.data import JointRecord, load_sample
from blsgan_core.jsw import NoJointSpaceError, column_widths, crop_mm_per_pixel, measure_jsw
from blsgan_core.segment.predict import largest_component
from blsgan_core.synthetic import Shifts, synthesize_with_shifts


def _bones(gap_rows: tuple[int, int], width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A phalanx ending at row ``gap_rows[0] - 1`` and a metacarpal starting at ``gap_rows[1]``."""
    upper = np.zeros((64, 64), bool)
    lower = np.zeros((64, 64), bool)
    upper[: gap_rows[0], 10 : 10 + width] = True
    lower[gap_rows[1] :, 12 : 12 + width] = True
    return upper, lower


def test_gap_touching_and_overlap_have_one_signed_formula() -> None:
    assert measure_jsw(*_bones((30, 35))).min_px == 5  # rows 30-34 empty
    touching = measure_jsw(*_bones((30, 30)))
    assert (touching.min_px, touching.overlap_depth_px, touching.overlap_area_px) == (0, 0, 0)
    overlap = measure_jsw(*_bones((30, 26)))  # rows 26-29 in both bones
    assert overlap.min_px == -4 and overlap.mean_px == -4
    assert overlap.overlap_depth_px == 4
    assert overlap.overlap_area_px == 4 * 38


def test_only_the_central_columns_are_measured() -> None:
    upper, lower = _bones((30, 40))
    lower[36:40, 12:16] = True  # a spur at the joint's margin, outside the central 60 %
    assert measure_jsw(upper, lower).min_px == 10
    assert measure_jsw(upper, lower, central_fraction=1.0).min_px == 6
    columns, widths = column_widths(upper, lower)
    assert columns[0] == 12 and columns[-1] == 49 and widths.min() == 6


def test_specks_do_not_count_as_bone() -> None:
    upper, lower = _bones((30, 36))
    lower[31, 30] = True  # one stray pixel right under the phalanx
    assert measure_jsw(upper, lower).min_px == 6


def test_bad_masks_are_refused() -> None:
    upper, lower = _bones((30, 36))
    with pytest.raises(NoJointSpaceError):
        measure_jsw(upper, np.zeros_like(lower))
    with pytest.raises(ValueError, match="one shape"):
        measure_jsw(upper, lower[:10])
    with pytest.raises(ValueError, match="central_fraction"):
        measure_jsw(upper, lower, central_fraction=0.0)


@pytest.mark.parametrize("total", [3, 8, 14])
def test_known_shift_moves_the_width_by_exactly_the_shift(
    separate_joints: list[JointRecord], total: int
) -> None:
    """Real joints moved into each other along the axis: width falls by the shift, exactly."""
    for record in separate_joints:
        sample = load_sample(record)
        before = measure_jsw(sample.upper & ~sample.lower, sample.lower)
        shifts = Shifts(upper_down=total // 2, lower_up=total - total // 2)
        moved = synthesize_with_shifts(
            sample.image, sample.upper, sample.lower, shifts, sample.background
        )
        after = measure_jsw(moved.upper, moved.lower)
        assert after.min_px == before.min_px - total
        assert after.mean_px == pytest.approx(before.mean_px - total)
        assert after.overlap_depth_px == max(0.0, total - before.min_px)


def test_real_overlaps_read_negative_and_separate_bones_non_negative(
    overlapping_joints: list[JointRecord], separate_joints: list[JointRecord]
) -> None:
    for record in overlapping_joints:
        sample = load_sample(record)
        width = measure_jsw(sample.upper, sample.lower, central_fraction=1.0)
        assert width.min_px < 0 and width.overlap_depth_px == -width.min_px
    for record in separate_joints:
        sample = load_sample(record)
        assert measure_jsw(sample.upper, sample.lower).min_px >= 0


def test_masks_already_one_region_each_measure_the_same_without_reducing_them_again() -> None:
    """A speck in the joint space and holes: reduced once by the caller (as
    ``segment_masks`` does), measured without the reduction, the masks give what the
    reduction gives."""
    upper, lower = _bones((30, 40))
    lower[33, 30] = True  # a speck in the gap, in the central columns
    upper[10, 20] = lower[50, 30] = False  # holes
    reduced = largest_component(upper), largest_component(lower)
    assert measure_jsw(*reduced, one_region_each=True) == measure_jsw(upper, lower)
    # Without the reduction a speck would be measured: the flag must not be set for them.
    assert measure_jsw(upper, lower, one_region_each=True) != measure_jsw(upper, lower)


def test_mm_per_crop_pixel_follows_the_affine_and_the_spacing() -> None:
    geometry = CropGeometry(500.0, 400.0, side_px=512.0, angle_deg=0.0, size=256)
    assert crop_mm_per_pixel(geometry.matrix, (0.15, 0.15)) == pytest.approx(0.30)
    # Finger along +x: a crop row step walks source columns, so the column spacing counts.
    turned = CropGeometry(500.0, 400.0, side_px=512.0, angle_deg=90.0, size=256)
    assert crop_mm_per_pixel(turned.matrix, (0.1, 0.2)) == pytest.approx(0.4)
    diagonal = CropGeometry(500.0, 400.0, side_px=256.0, angle_deg=45.0, size=256)
    assert crop_mm_per_pixel(diagonal.matrix, (0.1, 0.2)) == pytest.approx(
        math.hypot(0.1, 0.2) / math.sqrt(2)
    )
    with pytest.raises(ValueError, match="spacing"):
        crop_mm_per_pixel(geometry.matrix, (0.0, 0.1))
    width = measure_jsw(*_bones((30, 36)))
    assert width.scaled(0.3)["min_mm"] == pytest.approx(1.8)
