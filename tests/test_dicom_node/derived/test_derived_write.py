"""All outputs of a radiograph to a folder: complete, idempotent, and every file valid."""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from dicom_factory import write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicom_node.derived.model import HandResult, RadiographResult
from dicom_node.derived.write import OutputKind, write_outputs
from dicom_node.settings import OutputSettings


def test_every_output_of_two_hands_is_written_and_passes_dciodvfy(
    dx_both: Dataset, result_both: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    written = write_outputs(dx_both, result_both, outputs, tmp_path / "out")
    kinds = [item.kind for item in written]
    assert kinds.count(OutputKind.SEGMENTATION) == 1
    assert kinds.count(OutputKind.SECONDARY_CAPTURE) == 1 + 10 * 3
    assert kinds.count(OutputKind.STRUCTURED_REPORT) == 1
    assert kinds.count(OutputKind.PRESENTATION_STATE) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        item.path.name for item in written
    )
    assert {item.study_instance_uid for item in written} == {dx_both.StudyInstanceUID}
    assert len({item.series_instance_uid for item in written}) == 4
    labels = {item.label for item in written}
    assert {"segmentation", "overview", "measurements", "outlines", "MCP3 R lower"} <= labels
    for item in written:
        assert_passes_dciodvfy(item.path)
        assert dcmread(item.path, stop_before_pixels=True).SOPInstanceUID == item.sop_instance_uid


def test_a_rerun_replaces_instead_of_duplicating(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    source = write_dataset(dx_left, tmp_path / "source.dcm")
    first = write_outputs(source, result_left, outputs, tmp_path / "out")
    second = write_outputs(source, result_left, outputs, tmp_path / "out")
    assert [item.as_dict() for item in first] == [item.as_dict() for item in second]
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == len(first) == 1 + 16 + 1 + 1
    assert not [f for f in files if f.name.startswith(".partial-")]


def test_a_failed_write_is_raised_after_the_others_and_leaves_no_partial_file(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    names = sorted(item.path.name for item in write_outputs(dx_left, result_left, outputs, folder))
    for path in folder.iterdir():
        path.unlink()
    # A directory where the SR belongs: its rename fails, while other threads write.
    blocked = next(name for name in names if name.startswith("SR_"))
    (folder / blocked).mkdir()
    with pytest.raises(OSError):
        write_outputs(dx_left, result_left, outputs, folder)
    left = sorted(path.name for path in folder.iterdir())
    assert not [name for name in left if name.startswith(".partial-")]
    assert left == names  # every other object was written completely
    assert (folder / blocked).is_dir()


def test_an_object_that_cannot_be_built_leaves_no_file(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    """The SC images are on disk before the SR fails; none of them keeps a name."""
    hand = result_left.hands[0]
    empty = np.zeros_like(hand.joints[2].upper_mask)
    # No bones and no crop: the SR has no region to give the joint's group.
    lost = replace(hand.joints[2], upper_mask=empty, lower_mask=empty, crop_corners=None)
    joints = (*hand.joints[:2], lost, *hand.joints[3:])
    result = RadiographResult(result_left.model, (HandResult(hand.side, joints),))
    folder = tmp_path / "out"
    with pytest.raises(ValueError, match="no image region"):
        write_outputs(dx_left, result, outputs, folder)
    assert list(folder.iterdir()) == []


def test_another_uid_prefix_gives_other_uids(
    dx_left: Dataset, result_left: RadiographResult, tmp_path: Path
) -> None:
    prefixed = OutputSettings(uid_prefix="1.2.826.0.1.3680043.10.999.")
    written = write_outputs(dx_left, result_left, prefixed, tmp_path)
    assert all(item.sop_instance_uid.startswith("1.2.826.0.1.3680043.10.999.") for item in written)


def test_write_refuses_results_of_another_image(
    dx_left: Dataset, result_both: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="masks are"):
        write_outputs(dx_left, result_both, outputs, tmp_path)
    assert list(tmp_path.iterdir()) == []


# Type 2 in the source's Patient and General Study modules: present, possibly empty.
# Modalities in the wild leave some out; highdicom reads every one of them.
PATIENT_AND_STUDY_TYPE_2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def test_a_source_missing_type_2_attributes_still_gets_valid_outputs(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    sloppy = dx_left.copy()
    for keyword in PATIENT_AND_STUDY_TYPE_2:
        if keyword in sloppy:
            delattr(sloppy, keyword)
    written = write_outputs(sloppy, result_left, outputs, tmp_path / "out")
    assert len(written) == 1 + 16 + 1 + 1
    assert all(keyword not in sloppy for keyword in PATIENT_AND_STUDY_TYPE_2)  # not altered
    for kind in OutputKind:
        item = next(item for item in written if item.kind == kind)
        assert_passes_dciodvfy(item.path)
        header = dcmread(item.path, stop_before_pixels=True)
        for keyword in ("PatientID", "PatientBirthDate", "StudyDate"):
            assert keyword in header and not header[keyword].value, (kind, keyword)


def test_every_output_names_this_node_and_this_model_as_its_equipment(
    dx_left: Dataset, result_left: RadiographResult, tmp_path: Path
) -> None:
    outputs = OutputSettings(manufacturer="Test Hospital AI", device_serial_number="node-7")
    written = write_outputs(dx_left, result_left, outputs, tmp_path / "out")
    assert {item.kind for item in written} == set(OutputKind)
    for item in written:
        header = dcmread(item.path, stop_before_pixels=True)
        equipment = (
            header.Manufacturer,
            header.ManufacturerModelName,
            header.SoftwareVersions,
            header.DeviceSerialNumber,
        )
        assert equipment == (
            "Test Hospital AI",
            result_left.model.name,
            result_left.model.version,
            "node-7",
        ), item.label


def test_numbers_read_from_a_file_are_kept(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Decimal strings read back from a file (pydicom's DSfloat) are well-formed values."""
    read = dcmread(write_dataset(dx_left, tmp_path / "source.dcm"))
    with caplog.at_level("WARNING"):
        written = write_outputs(read, result_left, outputs, tmp_path / "out")
    assert not [r for r in caplog.records if "malformed" in r.getMessage()]
    report = next(item for item in written if item.kind == OutputKind.STRUCTURED_REPORT)
    group = hd.sr.srread(report.path).content.get_planar_roi_measurement_groups()[1]
    area = next(m for m in group.get_measurements() if m.name.meaning == "Area")
    assert area.unit.value == "mm2"  # the source's Imager Pixel Spacing was used


MALFORMED = {
    "PatientBirthDate": "PHI-19700101",
    "StudyTime": "PHI-1234",
    "PatientSex": "PHI-XX",
    "PatientAge": "PHI-42",
}


def test_malformed_optional_values_are_left_out_and_never_logged(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sloppy = copy.deepcopy(dx_left)  # a shallow copy shares the session fixture's elements
    sloppy.PatientID = "PID-7"
    for keyword, value in MALFORMED.items():
        setattr(sloppy, keyword, value)
    with caplog.at_level("INFO"):
        written = write_outputs(sloppy, result_left, outputs, tmp_path / "out")
    assert len(written) == 1 + 16 + 1 + 1
    assert sloppy.PatientBirthDate == "PHI-19700101"  # the source is not altered
    for kind in OutputKind:
        item = next(item for item in written if item.kind == kind)
        assert_passes_dciodvfy(item.path)
        header = dcmread(item.path, stop_before_pixels=True)
        assert not header.get("PatientBirthDate") and not header.get("StudyTime")
        assert "PatientAge" not in header
        assert header.PatientID == "PID-7"  # the well-formed values stay
    # pydicom's own warnings quote values; configure_logging keeps them for DEBUG
    # (tests/test_dicom_node/test_logging.py), so only the node's records count here.
    logged = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "pydicom"]
    assert any("PatientBirthDate" in r.getMessage() for r in logged)
    assert not any("PHI-" in r.getMessage() for r in logged)
