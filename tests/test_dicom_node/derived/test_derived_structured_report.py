"""The TID 1500 Measurement Report: numbers, references and codes survive a round trip."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from dataset_comparison import assert_same_apart_from_clock, comparable
from derived_fixtures import AtlasHand, synthetic_result
from dicom_factory import make_cr, write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes
from skimage.draw import polygon2mask

from dicom_node.derived import codes
from dicom_node.derived.model import HandResult, Joint, JointSpaceChange, RadiographResult
from dicom_node.derived.segmentation import build_segmentation
from dicom_node.derived.structured_report import (
    build_structured_report,
    document_arguments,
    measurement_report,
)
from dicom_node.derived.uids import OutputUids
from dicom_node.pixels import load_radiograph
from dicom_node.settings import OutputSettings


def _report(
    source: Dataset, result: RadiographResult, outputs: OutputSettings, path: Path
) -> tuple[hd.sr.ComprehensiveSR, hd.seg.Segmentation, Path]:
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    segmentation = build_segmentation(source, result, outputs, uids)
    report = build_structured_report(source, result, outputs, uids)
    return report, segmentation, write_dataset(report, path)


def _measurements(
    group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations,
) -> dict[str, tuple[float, str]]:
    return {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}


def test_report_round_trip(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
    tmp_path: Path,
) -> None:
    _, segmentation, path = _report(dx_left, result_left, outputs, tmp_path / "sr.dcm")
    read = hd.sr.srread(path)
    assert read.SOPInstanceUID == uids_left.sr_instance
    assert read.SeriesInstanceUID == uids_left.sr_series
    assert read.StudyInstanceUID == dx_left.StudyInstanceUID
    assert read.SeriesNumber == outputs.sr_series_number
    assert read.SeriesDescription == outputs.sr_series_description
    assert read.CompletionFlag == "COMPLETE"
    evidence = {
        item.ReferencedSOPInstanceUID
        for series in read.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert evidence == {dx_left.SOPInstanceUID, segmentation.SOPInstanceUID}

    groups = read.content.get_planar_roi_measurement_groups()
    assert len(groups) == 5
    # Every group has an image region: what OHIF needs to draw it on the radiograph.
    assert groups == read.content.get_planar_roi_measurement_groups(
        reference_type=dicom_codes.DCM.ImageRegion, graphic_type=hd.sr.GraphicTypeValues.POLYLINE
    )
    spacing = (0.3, 0.3)  # Imager Pixel Spacing of the half-scale fixture
    for group, (side, joint) in zip(groups, result_left.joints(), strict=True):
        assert group.tracking_uid == uids_left.tracking(side, joint.joint, "joint")
        assert group.tracking_identifier == f"{joint.joint} {side} joint"
        _check_region(group, dx_left, joint.upper_mask | joint.lower_mask)
        assert [site.value for site in group.finding_sites] == [
            codes.METACARPOPHALANGEAL_JOINT,
            codes.DIGITS[joint.joint],
        ]
        values = _measurements(group)
        area, unit = values["Area"]
        assert unit == "mm2"
        assert area == pytest.approx(joint.overlap_area_px * spacing[0] * spacing[1])
        assert values["Soft tissue transmittance k"] == (pytest.approx(joint.k), "1")
        assert values["Reconstruction mean squared error"][0] == pytest.approx(joint.error.mse)
        assert values["Reconstruction structural similarity"][0] == pytest.approx(joint.error.ssim)
        assert values["Reconstruction peak signal-to-noise ratio"] == (
            pytest.approx(joint.error.psnr),
            "dB",
        )
    thumb = _measurements(groups[0])
    assert thumb["Area"][0] == 0.0 and result_left.hands[0].joints[0].joint == Joint.MCP1


def test_document_is_the_one_highdicoms_constructor_builds(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings
) -> None:
    """The tree attached after the constructor and the SEG named by its UIDs change nothing
    of what the constructor builds from the whole tree and the SEG itself."""
    source, result = radiograph
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    segmentation = build_segmentation(source, result, outputs, uids)
    built = build_structured_report(source, result, outputs, uids)
    expected = hd.sr.ComprehensiveSR(
        evidence=[source, segmentation],
        content=measurement_report(source, result, outputs, uids),
        **document_arguments(result, outputs, uids),
    )
    assert_same_apart_from_clock(built, expected)
    assert len(built.ContentSequence) == len(expected.ContentSequence) > len(result.hands)
    # The document's parsed content is the whole tree too, not the root it was built with.
    assert comparable(built.content[0]) == comparable(expected.content[0])


def _check_region(
    group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations, source: Dataset, bones: np.ndarray
) -> None:
    """The group's region is a closed polygon on ``source`` around (nearly) all ``bones``."""
    region = group.roi
    assert region is not None and region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    (reference,) = region.ContentSequence
    assert reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    points = region.value
    np.testing.assert_array_equal(points[0], points[-1])
    assert points[:, 0].min() >= 0 and points[:, 0].max() <= source.Columns
    assert points[:, 1].min() >= 0 and points[:, 1].max() <= source.Rows
    # (column, row) with pixel centres at index + 0.5 -> (row, column) indices.
    inside = polygon2mask(bones.shape, points[:, ::-1] - 0.5)
    assert np.count_nonzero(inside & bones) >= 0.98 * np.count_nonzero(bones)
    rows, columns = np.nonzero(bones)
    box = (np.ptp(rows) + 1) * (np.ptp(columns) + 1)
    assert np.count_nonzero(bones) <= np.count_nonzero(inside) <= box


def _space(
    group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations,
) -> dict[str, tuple[float, str, str]]:
    """JSW min/mean and overlap depth: value, unit and method of each."""
    found = {}
    for item in group.get_measurements():
        if item.name.value not in (codes.JOINT_SPACE_WIDTH.value, codes.OVERLAP_DEPTH.value):
            continue
        derivation = item.derivation.meaning if item.derivation is not None else "depth"
        assert item.method is not None
        found[derivation] = (item.value, item.unit.value, item.method.value)
    return found


def test_joint_space_width_is_coded_per_joint_and_found_by_mcp_query(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, tmp_path: Path
) -> None:
    source, result = radiograph
    _, _, path = _report(source, result, outputs, tmp_path / "sr.dcm")
    read = hd.sr.srread(path)
    # A query for MCP joints (finding site SCT 70420003) finds every joint's group.
    found = read.content.get_planar_roi_measurement_groups(
        finding_site=codes.METACARPOPHALANGEAL_JOINT
    )
    assert len(found) == len(list(result.joints()))
    schemes = {item.CodingSchemeDesignator for item in read.CodingSchemeIdentificationSequence}
    assert codes.PRIVATE_SCHEME in schemes
    for group, (_, joint) in zip(found, result.joints(), strict=True):
        space = joint.space
        assert space is not None
        values = _space(group)
        method = codes.SCALE_METHODS[space.spacing].value
        assert values == {
            "Minimum": (pytest.approx(space.min_width), "mm", method),
            "Mean": (pytest.approx(space.mean_width), "mm", method),
            "depth": (pytest.approx(space.overlap_depth), "mm", method),
        }
        name = next(m.name for m in group.get_measurements() if m.derivation is not None)
        assert name.meaning == "Joint space width" and name.scheme_designator == "99BLSGAN"
    thumb, index = found[0], found[1]
    assert _space(thumb)["Minimum"][0] > 0  # the thumb's discs are apart
    assert _space(index)["Minimum"][0] < 0 and _space(index)["depth"][0] > 0


def test_follow_up_change_is_reported_and_passes_dciodvfy(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    hand = result_left.hands[0]
    changed = []
    for number, joint in enumerate(hand.joints):
        assert joint.space is not None
        change = JointSpaceChange(
            -0.1 * number, 0.05, joint.space.unit, 730, "1.2.3.4.5", registered_change=-0.2
        )
        changed.append(replace(joint, change=change))
    result = RadiographResult(result_left.model, (HandResult(hand.side, tuple(changed)),))
    _, _, path = _report(dx_left, result, outputs, tmp_path / "sr-followup.dcm")
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    for number, group in enumerate(groups):
        found: dict[tuple[str, str | None], tuple[float, str]] = {
            (m.name.value, m.method.value if m.method else None): (m.value, m.unit.value)
            for m in group.get_measurements()
        }
        assert found[(codes.JSW_CHANGE.value, None)] == (pytest.approx(-0.1 * number), "mm")
        assert found[(codes.JSW_CHANGE_RATE.value, None)] == (
            pytest.approx(-0.1 * number * 365.25 / 730),
            "mm/a",
        )
        registered = codes.LAYER_REGISTRATION.value
        assert found[(codes.JSW_CHANGE.value, registered)] == (pytest.approx(-0.2), "mm")
        assert found[(codes.JSW_CHANGE_RATE.value, registered)] == (
            pytest.approx(-0.2 * 365.25 / 730),
            "mm/a",
        )
    assert_passes_dciodvfy(path, "ComprehensiveSR")


def test_area_in_pixels_without_spacing(
    atlas: AtlasHand, outputs: OutputSettings, tmp_path: Path
) -> None:
    source = make_cr(atlas.image, scale=0.5)
    assert "ImagerPixelSpacing" not in source and "PixelSpacing" not in source
    result = synthetic_result(atlas, load_radiograph(source).pixels, scale=0.5)
    _, _, path = _report(source, result, outputs, tmp_path / "sr-cr.dcm")
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    for group, (_, joint) in zip(groups, result.joints(), strict=True):
        assert _measurements(group)["Area"] == (float(joint.overlap_area_px), "{pixels}")
        units = {unit for _, unit, _ in _space(group).values()}
        assert units == {"{pixels}"}
    assert_passes_dciodvfy(path)


def test_report_passes_dciodvfy(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, tmp_path: Path
) -> None:
    source, result = radiograph
    _, _, path = _report(source, result, outputs, tmp_path / "sr.dcm")
    assert_passes_dciodvfy(path, "ComprehensiveSR")


def test_joint_without_bones_is_placed_by_its_crop(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
    tmp_path: Path,
) -> None:
    hand = result_left.hands[0]
    empty = np.zeros_like(hand.joints[2].upper_mask)
    corners = np.array([[100.5, 200.0], [180.0, 190.5], [190.0, 270.0], [-5.0, 280.0]])
    blank = replace(hand.joints[2], upper_mask=empty, lower_mask=empty, crop_corners=corners)
    joints = (*hand.joints[:2], blank, *hand.joints[3:])
    result = RadiographResult(result_left.model, (HandResult(hand.side, joints),))
    _, _, path = _report(dx_left, result, outputs, tmp_path / "sr-blank.dcm")
    assert_passes_dciodvfy(path, "ComprehensiveSR")
    group = hd.sr.srread(path).content.get_planar_roi_measurement_groups()[2]
    region = group.roi
    assert region is not None
    # The crop's square, clipped to the image, closed.
    np.testing.assert_allclose(region.value, [*np.clip(corners, 0, None), corners[0]])
    without = replace(blank, crop_corners=None)
    result = RadiographResult(result_left.model, (HandResult(hand.side, (without,)),))
    with pytest.raises(ValueError, match="no image region"):
        build_structured_report(dx_left, result, outputs, uids_left)
