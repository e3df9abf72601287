"""The Grayscale Softcopy Presentation State: outlines on the source grid, labels, dciodvfy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dicom_factory import write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicom_node.derived.model import RadiographResult
from dicom_node.derived.presentation_state import build_presentation_state
from dicom_node.derived.source import with_usable_copied_attributes
from dicom_node.derived.uids import OutputUids
from dicom_node.settings import OutputSettings


def _inside(mask: np.ndarray, points: np.ndarray) -> float:
    """Share of outline points that lie on or next to the mask (within one pixel)."""
    rows = np.clip(np.floor(points[:, 1]).astype(int), 0, mask.shape[0] - 1)
    columns = np.clip(np.floor(points[:, 0]).astype(int), 0, mask.shape[1] - 1)
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    return float(grown[rows, columns].mean())


def test_presentation_state_round_trip_and_dciodvfy(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
    tmp_path: Path,
) -> None:
    source = with_usable_copied_attributes(dx_left)  # as build_outputs hands it over
    path = write_dataset(
        build_presentation_state(source, result_left, outputs, uids_left), tmp_path / "pr.dcm"
    )
    assert_passes_dciodvfy(path)
    read = dcmread(path)
    assert read.SOPClassUID == "1.2.840.10008.5.1.4.1.1.11.1"
    assert read.SOPInstanceUID == uids_left.pr_instance
    assert read.SeriesInstanceUID == uids_left.pr_series
    assert read.StudyInstanceUID == dx_left.StudyInstanceUID
    assert read.SeriesNumber == outputs.pr_series_number
    assert read.SeriesDescription == outputs.pr_series_description
    referenced = read.ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    assert referenced.ReferencedSOPInstanceUID == dx_left.SOPInstanceUID
    layers = {item.GraphicLayer for item in read.GraphicLayerSequence}
    by_layer = {a.GraphicLayer: a for a in read.GraphicAnnotationSequence}
    assert set(by_layer) == layers
    assert {"PHALANX", "METACARPAL", "LABELS"} <= layers
    joints = {(joint.joint, side): joint for side, joint in result_left.joints()}
    labels = [t.UnformattedTextValue for t in by_layer["LABELS"].TextObjectSequence]
    assert sorted(label.split()[0] for label in labels) == sorted(str(j) for j, _ in joints)
    # Every phalanx outline runs along its joint's phalanx mask on the source grid.
    for item in by_layer["PHALANX"].GraphicObjectSequence:
        joint_name, side = item.TrackingID.split()[:2]
        joint = next(
            j for (name, s), j in joints.items() if str(name) == joint_name and str(s) == side
        )
        points = np.asarray(item.GraphicData, dtype=float).reshape(-1, 2)
        assert item.GraphicAnnotationUnits == "PIXEL" and item.GraphicType == "POLYLINE"
        assert _inside(joint.upper_mask, points) > 0.95
        assert not _inside(joint.lower_mask & ~joint.upper_mask, points) > 0.5
    overlaps = sum(joint.overlap_area_px > 0 for joint in joints.values())
    assert ("OVERLAP" in layers) == (overlaps > 0)
