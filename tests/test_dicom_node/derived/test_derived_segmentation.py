"""The Segmentation: written, read back with highdicom, compared, and validated by dciodvfy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from dataset_comparison import assert_same_apart_from_clock
from dicom_factory import write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom.dataset import Dataset

from dicom_node.derived import codes
from dicom_node.derived.model import HandResult, Joint, RadiographResult, Side
from dicom_node.derived.segmentation import (
    BonePart,
    build_segmentation,
    highdicom_segmentation,
    segment_layout,
)
from dicom_node.derived.uids import OutputUids
from dicom_node.settings import OutputSettings


def _write_and_read(segmentation: hd.seg.Segmentation, path: Path) -> hd.seg.Segmentation:
    write_dataset(segmentation, path)
    return hd.seg.segread(path)


def test_segmentation_round_trip(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
    tmp_path: Path,
) -> None:
    read = _write_and_read(
        build_segmentation(dx_left, result_left, outputs, uids_left), tmp_path / "seg.dcm"
    )
    assert read.SOPInstanceUID == uids_left.seg_instance
    assert read.SeriesInstanceUID == uids_left.seg_series
    assert read.StudyInstanceUID == dx_left.StudyInstanceUID
    assert read.PatientID == dx_left.PatientID
    assert read.SeriesNumber == outputs.seg_series_number
    assert read.SeriesDescription == outputs.seg_series_description
    assert read.Manufacturer == outputs.manufacturer
    assert (read.Rows, read.Columns) == (dx_left.Rows, dx_left.Columns)
    assert list(read.PatientOrientation) == list(dx_left.PatientOrientation)
    assert read.ImageLaterality == "L"
    assert read.number_of_segments == 15

    masks = read.get_pixels_by_source_instance(
        source_sop_instance_uids=[dx_left.SOPInstanceUID], segment_numbers=read.segment_numbers
    )[0]
    by_joint = {joint.joint: joint for _, joint in result_left.joints()}
    for spec in segment_layout(result_left):
        joint = by_joint[spec.joint]
        want = {
            BonePart.UPPER: joint.upper_mask,
            BonePart.LOWER: joint.lower_mask,
            BonePart.OVERLAP: joint.overlap_mask,
        }[spec.part]
        np.testing.assert_array_equal(masks[..., spec.number - 1].astype(bool), want)
        description = read.get_segment_description(spec.number)
        assert description.segment_label == f"{spec.joint} L {spec.part}"
        assert description.algorithm_identification[0].AlgorithmName == result_left.model.name
        assert description.algorithm_identification[0].AlgorithmVersion == "0.0.1-test"
        regions = description.anatomic_regions
        assert regions[0] == codes.METACARPOPHALANGEAL_JOINT
        assert regions[1] == codes.DIGITS[spec.joint]
        modifier = description.AnatomicRegionSequence[0].AnatomicRegionModifierSequence[0]
        assert (modifier.CodeValue, modifier.CodingSchemeDesignator) == ("7771000", "SCT")
        expected_type = {
            BonePart.UPPER: codes.PROXIMAL_PHALANX_BASE,
            BonePart.LOWER: codes.METACARPAL,
            BonePart.OVERLAP: codes.BONE_OVERLAP,
        }[spec.part]
        assert description.segmented_property_type == expected_type
        assert description.tracking_uid == uids_left.tracking(Side.LEFT, spec.joint, spec.part)
    # The thumb's bones do not meet: its overlap segment is stored, as an empty frame.
    assert by_joint[Joint.MCP1].overlap_area_px == 0
    assert read.NumberOfFrames == 15
    assert read.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99BLSGAN"


def _full_frames(result: RadiographResult) -> np.ndarray:
    """Every segment's whole mask, in segment order, as highdicom takes them."""
    by_joint = {(side, joint.joint): joint for side, joint in result.joints()}
    parts = {
        BonePart.UPPER: lambda joint: joint.upper_mask,
        BonePart.LOWER: lambda joint: joint.lower_mask,
        BonePart.OVERLAP: lambda joint: joint.overlap_mask,
    }
    return np.stack(
        [parts[spec.part](by_joint[(spec.side, spec.joint)]) for spec in segment_layout(result)]
    ).astype(np.uint8)


def _with_masks(result: RadiographResult, change: dict[str, np.ndarray]) -> RadiographResult:
    """``result`` with the second joint's masks replaced by ``change``."""
    first, second, *rest = result.hands[0].joints
    hand = HandResult(result.hands[0].side, (first, replace(second, **change), *rest))
    return RadiographResult(result.model, (hand, *result.hands[1:]))


def _apart(result: RadiographResult) -> RadiographResult:
    """No pixel in two segments: the lower bones left out."""
    hands = tuple(
        HandResult(
            hand.side,
            tuple(
                replace(joint, lower_mask=np.zeros_like(joint.lower_mask)) for joint in hand.joints
            ),
        )
        for hand in result.hands
    )
    return RadiographResult(result.model, hands)


def _at_the_corners(result: RadiographResult) -> RadiographResult:
    """The second joint's bones (and overlap) in the grid's first and last pixels: its
    windows span every row, and its frames' first and last bits share bytes with the
    frames of other joints beside them."""
    upper = np.zeros(result.grid_shape, dtype=np.bool_)
    lower = np.zeros(result.grid_shape, dtype=np.bool_)
    upper[0, :3] = upper[-1, -1] = True
    lower[0, 0] = lower[-1, -2:] = True
    return _with_masks(result, {"upper_mask": upper, "lower_mask": lower})


@pytest.mark.parametrize("variant", ["as is", "apart", "at the corners"])
def test_segmentation_is_the_one_highdicom_builds(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, variant: str
) -> None:
    """The frames packed inside the joints' windows and the overlap found there equal
    highdicom's own build from the whole masks, in every element and every bit."""
    source, result = radiograph
    result = {"as is": result, "apart": _apart(result), "at the corners": _at_the_corners(result)}[
        variant
    ]
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    built = build_segmentation(source, result, outputs, uids)
    expected = highdicom_segmentation(source, result, outputs, uids, _full_frames(result))
    assert_same_apart_from_clock(built, expected)
    assert built.SegmentsOverlap == ("NO" if variant == "apart" else "YES")


def test_segmentation_of_two_hands(
    dx_both: Dataset, result_both: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    uids = OutputUids(dx_both.SOPInstanceUID, result_both.model.version)
    read = _write_and_read(
        build_segmentation(dx_both, result_both, outputs, uids), tmp_path / "seg2.dcm"
    )
    assert read.number_of_segments == 30
    assert read.ImageLaterality == "B"
    labels = [read.get_segment_description(n).segment_label for n in read.segment_numbers]
    assert labels[:3] == ["MCP1 R upper", "MCP1 R lower", "MCP1 R overlap"]
    assert labels[15] == "MCP1 L upper"
    modifier = read.get_segment_description(1).AnatomicRegionSequence[0]
    assert modifier.AnatomicRegionModifierSequence[0].CodeValue == "24028007"  # right


def test_segmentation_passes_dciodvfy(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, tmp_path: Path
) -> None:
    source, result = radiograph
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    path = write_dataset(build_segmentation(source, result, outputs, uids), tmp_path / "s.dcm")
    assert_passes_dciodvfy(path, "Segmentation")


def test_segmentation_is_reproducible(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
) -> None:
    first = build_segmentation(dx_left, result_left, outputs, uids_left)
    again = build_segmentation(dx_left, result_left, outputs, uids_left)
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.PixelData == again.PixelData


def test_segmentation_refuses_a_foreign_grid_or_source(
    dx_left: Dataset,
    dx_both: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
) -> None:
    with pytest.raises(ValueError, match="UIDs derive from"):
        build_segmentation(dx_both, result_left, outputs, uids_left)
    foreign = OutputUids(dx_both.SOPInstanceUID, result_left.model.version)
    with pytest.raises(ValueError, match="masks are"):
        build_segmentation(dx_both, result_left, outputs, foreign)
