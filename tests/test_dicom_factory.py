"""The DX/CR factory builds valid, decodable radiographs from the real atlas images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_factory import (
    SUPPORTED_TRANSFER_SYNTAXES,
    hand_image,
    make_cr,
    make_dx,
    stored_values,
    write_dataset,
)
from dicom_validation import assert_passes_dciodvfy
from pydicom import dcmread
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian

ATLAS_ID = "3143"


@pytest.fixture(scope="module")
def atlas_jpeg(hand_radiographs_dir: Path) -> Path:
    return hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"for_processing": True, "photometric": "MONOCHROME1", "bits_stored": 14, "window": False},
        {"two_hands": True, "bits_stored": 16, "calibrated_spacing": True},
        {"right": True, "bits_stored": 8},
    ],
    ids=["presentation-mono2-12", "processing-mono1-14", "two-hands-16", "right-8"],
)
def test_uncompressed_dx_passes_dciodvfy(
    atlas_jpeg: Path, tmp_path: Path, options: dict[str, object]
) -> None:
    path = write_dataset(make_dx(atlas_jpeg, scale=0.5, **options), tmp_path / "dx.dcm")  # type: ignore[arg-type]
    assert assert_passes_dciodvfy(path).iod.startswith("DXImageFor")


def test_cr_passes_dciodvfy(atlas_jpeg: Path, tmp_path: Path) -> None:
    path = write_dataset(
        make_cr(atlas_jpeg, scale=0.5, rescale=(2.0, -1000.0)), tmp_path / "cr.dcm"
    )
    assert_passes_dciodvfy(path, "CRImage")


@pytest.mark.parametrize("transfer_syntax", SUPPORTED_TRANSFER_SYNTAXES, ids=lambda ts: ts.name)
def test_every_transfer_syntax_decodes_to_the_stored_values(
    atlas_jpeg: Path, tmp_path: Path, transfer_syntax: str
) -> None:
    reference = make_dx(atlas_jpeg, scale=0.25, bits_stored=12).pixel_array.astype(np.int32)
    built = make_dx(atlas_jpeg, scale=0.25, bits_stored=12, transfer_syntax=transfer_syntax)
    read = dcmread(write_dataset(built, tmp_path / "x.dcm"))
    assert read.file_meta.TransferSyntaxUID == transfer_syntax
    difference = np.abs(read.pixel_array.astype(np.int32) - reference)
    if transfer_syntax == JPEG2000:
        assert read.LossyImageCompression == "01"
        assert 0 < difference.mean() < 20  # lossy, but still the same radiograph
    else:
        assert difference.max() == 0


def test_monochrome1_stores_the_inverse_of_monochrome2(atlas_jpeg: Path) -> None:
    mono2 = make_dx(atlas_jpeg, scale=0.25, bits_stored=10).pixel_array.astype(np.int32)
    mono1 = make_dx(
        atlas_jpeg, scale=0.25, bits_stored=10, photometric="MONOCHROME1"
    ).pixel_array.astype(np.int32)
    np.testing.assert_array_equal(mono1, 1023 - mono2)


def test_scaling_uses_the_whole_stored_range(atlas_jpeg: Path) -> None:
    grey8 = hand_image(atlas_jpeg, scale=0.25)
    values = stored_values(grey8, 14, "MONOCHROME2")
    assert values.dtype == np.uint16
    assert values.max() == round(int(grey8.max()) * 16383 / 255)
    with pytest.raises(ValueError, match="bits_stored"):
        stored_values(grey8, 17, "MONOCHROME2")


def test_two_hands_are_mirror_images_side_by_side(atlas_jpeg: Path) -> None:
    both = hand_image(atlas_jpeg, two_hands=True, scale=0.25)
    left = hand_image(atlas_jpeg, scale=0.25)
    assert both.shape == (left.shape[0], 2 * left.shape[1])
    np.testing.assert_array_equal(both[:, left.shape[1] :], left)
    np.testing.assert_array_equal(both[:, : left.shape[1]], left[:, ::-1])
    dataset = make_dx(atlas_jpeg, scale=0.25, two_hands=True)
    assert dataset.ImageLaterality == "B"


def test_spacing_follows_the_scale(atlas_jpeg: Path) -> None:
    dataset = make_dx(atlas_jpeg, scale=0.5, calibrated_spacing=True)
    assert [float(v) for v in dataset.ImagerPixelSpacing] == [0.3, 0.3]
    assert float(dataset.PixelSpacing[0]) == pytest.approx(0.294)
    assert "PixelSpacing" not in make_cr(atlas_jpeg, scale=0.25)


def test_bad_arguments_are_rejected(atlas_jpeg: Path) -> None:
    with pytest.raises(ValueError, match="transfer syntax"):
        make_dx(atlas_jpeg, scale=0.25, transfer_syntax="1.2.3")
    with pytest.raises(ValueError, match="Imager Pixel Spacing"):
        make_dx(atlas_jpeg, scale=0.25, spacing_mm=None)
    with pytest.raises(ValueError, match="window"):
        make_dx(atlas_jpeg, scale=0.25, window=False)
    with pytest.raises(ValueError, match="scale"):
        hand_image(atlas_jpeg, scale=2.0)


def test_uids_are_deterministic_and_distinct(atlas_jpeg: Path) -> None:
    first = make_dx(atlas_jpeg, scale=0.25)
    again = make_dx(atlas_jpeg, scale=0.25)
    other = make_dx(atlas_jpeg, scale=0.25, uid_seed="b")
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SOPInstanceUID != other.SOPInstanceUID
    assert first.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
