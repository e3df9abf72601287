"""Radiograph decoding: every transfer syntax, bit depth and photometric gives the same image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_factory import (
    SUPPORTED_TRANSFER_SYNTAXES,
    hand_image,
    make_cr,
    make_dx,
    write_dataset,
)
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import JPEG2000, MPEG2MPML, generate_uid

from dicom_node.pixels import RadiographError, RejectReason, load_radiograph

SCALE = 0.25


@pytest.fixture(scope="module")
def atlas_jpeg(hand_radiographs_dir: Path) -> Path:
    return hand_radiographs_dir / "images" / "3144.jpg"


@pytest.fixture(scope="module")
def expected(atlas_jpeg: Path) -> np.ndarray:
    """The atlas grey values as the node should see them: [0, 1], bright = bone."""
    return hand_image(atlas_jpeg, scale=SCALE).astype(np.float32) / 255.0


@pytest.mark.parametrize("transfer_syntax", SUPPORTED_TRANSFER_SYNTAXES, ids=lambda ts: ts.name)
def test_every_transfer_syntax_decodes_to_the_atlas_image(
    atlas_jpeg: Path, expected: np.ndarray, tmp_path: Path, transfer_syntax: str
) -> None:
    dataset = make_dx(atlas_jpeg, scale=SCALE, bits_stored=12, transfer_syntax=transfer_syntax)
    radiograph = load_radiograph(write_dataset(dataset, tmp_path / "dx.dcm"))
    assert radiograph.pixels.dtype == np.float32
    assert radiograph.shape == expected.shape
    assert radiograph.transfer_syntax_uid == transfer_syntax
    error = np.abs(radiograph.pixels - expected)
    if transfer_syntax == JPEG2000:
        assert error.mean() < 0.01
    else:
        # 8-bit values scaled to 12 bits and back: within half a 12-bit step.
        assert error.max() <= 0.5 / 4095 + 1e-6


@pytest.mark.parametrize("bits_stored", [8, 10, 12, 14, 16])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_bit_depths_and_photometrics_agree(
    atlas_jpeg: Path, expected: np.ndarray, bits_stored: int, photometric: str
) -> None:
    dataset = make_dx(atlas_jpeg, scale=SCALE, bits_stored=bits_stored, photometric=photometric)
    radiograph = load_radiograph(dataset)
    assert radiograph.photometric == photometric
    assert radiograph.bits_stored == bits_stored
    np.testing.assert_allclose(radiograph.pixels, expected, atol=0.5 / 255 + 1e-6)


def test_bone_is_bright_for_monochrome1(atlas_jpeg: Path) -> None:
    mono1 = load_radiograph(make_dx(atlas_jpeg, scale=SCALE, photometric="MONOCHROME1"))
    # The atlas background (air) is dark; the hand, bone brightest, sits in the middle.
    centre = mono1.pixels[mono1.shape[0] // 3 : 2 * mono1.shape[0] // 3, :]
    corner = mono1.pixels[:20, :20]
    assert float(np.percentile(centre, 99)) > float(corner.mean()) + 0.4


def test_rescale_and_window_of_a_cr(atlas_jpeg: Path, expected: np.ndarray) -> None:
    dataset = make_cr(atlas_jpeg, scale=SCALE, bits_stored=10, rescale=(2.0, -1000.0))
    radiograph = load_radiograph(dataset)
    assert radiograph.modality == "CR"
    assert radiograph.pixel_spacing_mm is None
    np.testing.assert_allclose(radiograph.pixels, expected, atol=0.5 / 255 + 1e-6)


def test_a_narrow_window_clips(atlas_jpeg: Path) -> None:
    dataset = make_dx(atlas_jpeg, scale=SCALE, bits_stored=12)
    dataset.WindowCenter, dataset.WindowWidth = 3000, 1000
    pixels = load_radiograph(dataset).pixels
    stored = dataset.pixel_array.astype(np.float64)
    assert np.all(pixels[stored <= 2500] == 0.0)
    assert np.all(pixels[stored > 3500] == 1.0)
    assert pixels.min() == 0.0 and pixels.max() == 1.0


def test_voi_lut_sequence_is_preferred_over_the_window(atlas_jpeg: Path) -> None:
    dataset = make_dx(atlas_jpeg, scale=SCALE, bits_stored=12)
    gamma = np.rint(4095 * (np.arange(4096) / 4095) ** 0.5).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.LUTData = gamma.tolist()
    dataset.VOILUTSequence = DicomSequence([item])
    pixels = load_radiograph(dataset).pixels
    want = gamma[dataset.pixel_array].astype(np.float32) / 4095
    np.testing.assert_allclose(pixels, want, atol=1e-6)


def test_without_voi_the_values_present_span_zero_to_one(atlas_jpeg: Path) -> None:
    dataset = make_dx(
        atlas_jpeg, scale=SCALE, for_processing=True, window=False, photometric="MONOCHROME1"
    )
    pixels = load_radiograph(dataset).pixels
    stored = dataset.pixel_array.astype(np.float64)
    want = 1.0 - (stored - stored.min()) / (stored.max() - stored.min())
    np.testing.assert_allclose(pixels, want, atol=1e-6)


def test_inverse_presentation_lut_on_monochrome2_inverts(atlas_jpeg: Path) -> None:
    plain = load_radiograph(make_dx(atlas_jpeg, scale=SCALE)).pixels
    dataset = make_dx(atlas_jpeg, scale=SCALE)
    dataset.PresentationLUTShape = "INVERSE"
    np.testing.assert_allclose(load_radiograph(dataset).pixels, 1.0 - plain, atol=1e-6)


def test_spacing_laterality_and_identity(atlas_jpeg: Path) -> None:
    dataset = make_dx(atlas_jpeg, scale=0.5, right=True, calibrated_spacing=True)
    radiograph = load_radiograph(dataset)
    assert radiograph.pixel_spacing_mm == pytest.approx((0.294, 0.294))
    assert radiograph.spacing_attribute == "PixelSpacing"
    assert radiograph.laterality == "R"
    assert radiograph.sop_instance_uid == dataset.SOPInstanceUID
    assert radiograph.study_instance_uid == dataset.StudyInstanceUID
    del dataset.PixelSpacing
    del dataset.ImageLaterality
    dataset.Laterality = "L"
    radiograph = load_radiograph(dataset)
    assert radiograph.pixel_spacing_mm == pytest.approx((0.3, 0.3))
    assert radiograph.spacing_attribute == "ImagerPixelSpacing"
    assert radiograph.laterality == "L"


def test_pixels_are_read_only(atlas_jpeg: Path) -> None:
    radiograph = load_radiograph(make_dx(atlas_jpeg, scale=SCALE))
    with pytest.raises(ValueError, match="read-only"):
        radiograph.pixels[0, 0] = 1.0


def test_png_and_jpeg_files(atlas_jpeg: Path, expected: np.ndarray, tmp_path: Path) -> None:
    grey8 = hand_image(atlas_jpeg, scale=SCALE)
    png8 = tmp_path / "hand8.png"
    Image.fromarray(grey8).save(png8)
    png16 = tmp_path / "hand16.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(png16)
    rgb = tmp_path / "hand-rgb.png"
    Image.fromarray(np.repeat(grey8[..., None], 3, axis=2)).save(rgb)
    for path in (png8, png16, rgb):
        radiograph = load_radiograph(path)
        assert radiograph.pixel_spacing_mm is None and radiograph.sop_instance_uid is None
        np.testing.assert_allclose(radiograph.pixels, expected, atol=1e-6, err_msg=path.name)
    assert load_radiograph(png16).bits_stored == 16
    jpeg = load_radiograph(atlas_jpeg)
    assert jpeg.bits_stored == 8
    assert jpeg.shape == hand_image(atlas_jpeg).shape


def _reason(source: Path | Dataset) -> RejectReason:
    with pytest.raises(RadiographError) as caught:
        load_radiograph(source)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason.value in str(caught.value)
    return caught.value.reason


def test_rejections_name_their_reason(atlas_jpeg: Path, tmp_path: Path) -> None:
    base = make_dx(atlas_jpeg, scale=SCALE)

    rgb = make_dx(atlas_jpeg, scale=SCALE)
    rgb.PhotometricInterpretation, rgb.SamplesPerPixel = "RGB", 3
    assert _reason(rgb) == RejectReason.NOT_GREYSCALE

    frames = make_dx(atlas_jpeg, scale=SCALE)
    frames.NumberOfFrames = 2
    assert _reason(frames) == RejectReason.MULTI_FRAME

    no_pixels = make_dx(atlas_jpeg, scale=SCALE)
    del no_pixels.PixelData
    assert _reason(no_pixels) == RejectReason.NO_PIXEL_DATA

    video = make_dx(atlas_jpeg, scale=SCALE)
    video.file_meta.TransferSyntaxUID = MPEG2MPML
    assert _reason(video) == RejectReason.UNSUPPORTED_TRANSFER_SYNTAX

    unknown = make_dx(atlas_jpeg, scale=SCALE)
    unknown.file_meta.TransferSyntaxUID = generate_uid()
    assert _reason(unknown) == RejectReason.UNSUPPORTED_TRANSFER_SYNTAX

    wide = make_dx(atlas_jpeg, scale=SCALE)
    wide.BitsAllocated, wide.BitsStored, wide.HighBit = 32, 32, 31
    assert _reason(wide) == RejectReason.UNSUPPORTED_BIT_DEPTH

    truncated = make_dx(atlas_jpeg, scale=SCALE)
    truncated.PixelData = base.PixelData[: len(base.PixelData) // 2]
    assert _reason(truncated) == RejectReason.UNREADABLE_PIXEL_DATA

    blank = make_dx(atlas_jpeg, scale=SCALE, for_processing=True, window=False)
    blank.PixelData = np.zeros(base.pixel_array.shape, np.uint16).tobytes()
    assert _reason(blank) == RejectReason.BLANK_IMAGE

    text = tmp_path / "notes.dcm"
    text.write_text("not an image at all, just text", encoding="utf-8")
    assert _reason(text) == RejectReason.NOT_AN_IMAGE

    colour = tmp_path / "colour.png"
    Image.fromarray(
        np.dstack(
            [hand_image(atlas_jpeg, scale=SCALE)] * 2
            + [np.zeros_like(hand_image(atlas_jpeg, scale=SCALE))]
        )
    ).save(colour)
    assert _reason(colour) == RejectReason.NOT_GREYSCALE


def test_bad_argument_types() -> None:
    with pytest.raises(TypeError, match="path or a pydicom Dataset"):
        load_radiograph(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load_radiograph(Path("/nonexistent/radiograph.dcm"))
