"""Secondary Capture images: layers per joint and the overview, read back and validated."""

from __future__ import annotations

import copy
import io
from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
from dataset_comparison import assert_same_apart_from_clock
from dicom_factory import write_dataset
from dicom_validation import assert_passes_dciodvfy
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicom_node.derived.model import Layer, RadiographResult, Side
from dicom_node.derived.overview import (
    COLUMNS,
    LABEL_WIDTH,
    TITLE_HEIGHT,
    render_overview,
    space_text,
)
from dicom_node.derived.secondary_capture import (
    acquisition_equipment,
    build_joint_image,
    build_secondary_captures,
)
from dicom_node.derived.uids import OutputUids
from dicom_node.settings import OutputSettings


def test_joint_layers_round_trip(
    dx_left: Dataset,
    result_left: RadiographResult,
    outputs: OutputSettings,
    uids_left: OutputUids,
    tmp_path: Path,
) -> None:
    images = build_secondary_captures(dx_left, result_left, outputs, uids_left)
    assert len(images) == 1 + 5 * 3
    assert [image.InstanceNumber for image in images] == list(range(1, 17))
    assert len({image.SOPInstanceUID for image in images}) == 16
    for side, joint in result_left.joints():
        for layer in Layer:
            uid = uids_left.sc_instance(side, joint.joint, layer)
            image = next(i for i in images if i.SOPInstanceUID == uid)
            path = write_dataset(image, tmp_path / f"{joint.joint}-{layer}.dcm")
            read = hd.Image.from_file(path)
            assert read.StudyInstanceUID == dx_left.StudyInstanceUID
            assert read.SeriesInstanceUID == uids_left.sc_series
            assert read.SeriesNumber == outputs.sc_series_number
            assert read.SeriesDescription == outputs.sc_series_description
            assert read.ImageLaterality == "L"
            assert read.BurnedInAnnotation == "NO"
            assert list(read.PatientOrientation) == ["L", "H"]
            assert read.SourceImageSequence[0].ReferencedSOPInstanceUID == dx_left.SOPInstanceUID
            assert f"{joint.joint} L {layer}" in read.ImageComments
            stored = dcmread(path).pixel_array
            expected = np.rint(joint.layer(layer) * 255).astype(np.uint8)
            np.testing.assert_array_equal(stored, expected)


def test_every_joint_image_is_the_one_highdicom_builds(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings
) -> None:
    """The siblings of the first joint image equal highdicom's own build of each image."""
    source, result = radiograph
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    images = build_secondary_captures(source, result, outputs, uids)
    acquisition = acquisition_equipment(source)
    layers = [(side, joint, layer) for side, joint in result.joints() for layer in Layer]
    assert len(images) == 1 + len(layers)
    for number, (side, joint, layer) in enumerate(layers, start=2):
        expected = build_joint_image(
            source, result, outputs, uids, acquisition, side, joint, layer, number
        )
        assert_same_apart_from_clock(images[number - 1], expected)
        assert _written_meta(images[number - 1]) == _written_meta(expected)


def _written_meta(image: Dataset) -> Dataset:
    """The file meta information a file of ``image`` holds."""
    buffer = io.BytesIO()
    image.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue())).file_meta


def test_overview_shows_every_joint_with_its_layers(
    dx_both: Dataset, result_both: RadiographResult, outputs: OutputSettings, tmp_path: Path
) -> None:
    uids = OutputUids(dx_both.SOPInstanceUID, result_both.model.version)
    images = build_secondary_captures(dx_both, result_both, outputs, uids)
    assert len(images) == 1 + 10 * 3
    overview = images[0]
    assert overview.SOPInstanceUID == uids.sc_overview
    assert overview.ImageLaterality == "B"
    assert overview.PatientOrientation == ""  # a montage has no patient orientation
    read = dcmread(write_dataset(overview, tmp_path / "overview.dcm"))
    pixels = read.pixel_array
    tile = result_both.hands[0].joints[0].crop.shape[0]
    assert pixels.shape[0] > 10 * tile
    assert pixels.shape[1] > len(COLUMNS) * tile
    # The first joint's crop sits in the first tile, unchanged (right hand, MCP1).
    first = result_both.hands[0].joints[0]
    top = TITLE_HEIGHT + 30
    np.testing.assert_array_equal(
        pixels[top : top + tile, LABEL_WIDTH : LABEL_WIDTH + tile],
        np.rint(first.crop * 255).astype(np.uint8),
    )
    # Text is burned into the label column and the title: bright pixels there.
    assert pixels[top : top + 40, :LABEL_WIDTH].max() == 255
    assert pixels[:TITLE_HEIGHT].max() == 255
    per_joint = [image for image in images[1:] if image.ImageLaterality == Side.RIGHT]
    assert len(per_joint) == 15


def test_overview_falls_back_to_pixels_without_spacing(result_left: RadiographResult) -> None:
    with_spacing = render_overview(result_left, (0.3, 0.3))
    without = render_overview(result_left, None)
    assert with_spacing.shape == without.shape
    label_column = np.s_[:, :LABEL_WIDTH]
    assert not np.array_equal(with_spacing[label_column], without[label_column])
    tiles = np.s_[:, LABEL_WIDTH:]
    np.testing.assert_array_equal(with_spacing[tiles], without[tiles])


def test_secondary_captures_pass_dciodvfy(
    radiograph: tuple[Dataset, RadiographResult], outputs: OutputSettings, tmp_path: Path
) -> None:
    source, result = radiograph
    uids = OutputUids(source.SOPInstanceUID, result.model.version)
    images = build_secondary_captures(source, result, outputs, uids)
    # The overview and one image per layer kind; the rest differ only in pixels and UIDs.
    for image in images[:4]:
        path = write_dataset(image, tmp_path / f"{image.InstanceNumber}.dcm")
        assert_passes_dciodvfy(path, "SCImage")


def test_crop_orientation_follows_the_source(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings
) -> None:
    turned = dx_left.copy()
    turned.PatientOrientation = ["R", "F"]  # the same hand shown upside down
    uids = OutputUids(turned.SOPInstanceUID, result_left.model.version)
    images = build_secondary_captures(turned, result_left, outputs, uids)
    assert list(images[1].PatientOrientation) == ["L", "H"]  # crops are finger-up
    unknown = dx_left.copy()
    unknown.PatientOrientation = ""
    images = build_secondary_captures(unknown, result_left, outputs, uids)
    assert images[1].PatientOrientation == ""


def _acquisition_items(image: Dataset) -> list[Dataset]:
    acquisition = hd.sr.CodedConcept("109101", "DCM", "Acquisition Equipment")
    return [
        item
        for item in image.get("ContributingEquipmentSequence", [])
        if item.PurposeOfReferenceCodeSequence[0].CodeValue == acquisition.value
    ]


def test_every_image_names_the_acquisition_equipment_once_if_the_source_has_a_maker(
    dx_left: Dataset, result_left: RadiographResult, outputs: OutputSettings, uids_left: OutputUids
) -> None:
    assert dx_left.Manufacturer
    images = build_secondary_captures(dx_left, result_left, outputs, uids_left)
    for image in images:
        (item,) = _acquisition_items(image)
        assert item.Manufacturer == dx_left.Manufacturer
    # The item is built once but every image holds its own copy.
    assert len({id(_acquisition_items(image)[0]) for image in images}) == len(images)
    anonymous = copy.deepcopy(dx_left)
    anonymous.Manufacturer = ""
    assert acquisition_equipment(anonymous) == []
    images = build_secondary_captures(anonymous, result_left, outputs, uids_left)
    assert all(not _acquisition_items(image) for image in images)


def test_overview_lists_joint_space_width_and_its_scale(result_left: RadiographResult) -> None:
    thumb, index = result_left.hands[0].joints[:2]
    assert thumb.space is not None and index.space is not None
    width, depth = space_text(index)
    # Imager Pixel Spacing: mm at the detector, marked with an asterisk.
    assert width == f"JSW min {index.space.min_width:.2f} mean {index.space.mean_width:.2f} mm*"
    assert depth == f"overlap depth {index.space.overlap_depth:.2f} mm*"
    assert index.space.min_width < 0 < index.space.overlap_depth
    assert space_text(replace(thumb, space=None)) == ("JSW not measurable", "")
