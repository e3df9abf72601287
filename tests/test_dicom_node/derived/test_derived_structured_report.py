"""The TID 1500 Measurement Report: numbers, references and codes survive a round trip."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pytest
from derived_fixtures import AtlasHand, synthetic_result
from dicom_factory import make_cr, write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom.dataset import Dataset

from dicom_node.derived import codes
from dicom_node.derived.model import Joint, RadiographResult
from dicom_node.derived.segmentation import build_segmentation
from dicom_node.derived.structured_report import build_structured_report
from dicom_node.derived.uids import OutputUids
from dicom_node.pixels import load_radiograph
from dicom_node.settings import OutputSettings


def _report(
    source: Dataset, result: RadiographResult, outputs: OutputSettings, path: Path
) -> tuple[hd.sr.ComprehensiveSR, hd.seg.Segmentation, Path]:
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    segmentation = build_segmentation(source, result, outputs, uids)
    report = build_structured_report(source, segmentation, result, outputs, uids)
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
    spacing = (0.3, 0.3)  # Imager Pixel Spacing of the half-scale fixture
    for group, (side, joint) in zip(groups, result_left.joints(), strict=True):
        assert group.tracking_uid == uids_left.tracking(side, joint.joint, "overlap")
        frame = group.referenced_segmentation_frame
        assert frame is not None
        assert frame[0].referenced_sop_instance_uid == segmentation.SOPInstanceUID
        frame_number = frame[0].referenced_frame_numbers[0]
        description = segmentation.get_segment_description(frame_number)
        assert description.segment_label == f"{joint.joint} {side} overlap"
        assert frame[1].referenced_sop_instance_uid == dx_left.SOPInstanceUID
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
    assert_passes_dciodvfy(path)


def test_report_passes_dciodvfy(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, tmp_path: Path
) -> None:
    source, result = radiograph
    _, _, path = _report(source, result, outputs, tmp_path / "sr.dcm")
    assert_passes_dciodvfy(path, "ComprehensiveSR")


def test_report_refuses_a_foreign_segmentation(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
) -> None:
    other = OutputUids(dx_left.SOPInstanceUID, "another-version")
    segmentation = build_segmentation(dx_left, result_left, outputs, other)
    with pytest.raises(ValueError, match="is not this result's"):
        build_structured_report(dx_left, segmentation, result_left, outputs, uids_left)
