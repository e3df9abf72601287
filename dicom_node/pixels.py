"""Decode a radiograph into display grey values in [0, 1] where bright means bone.

Everything downstream (MCP localisation, crops, BLS-GAN) sees one convention: a float32
image as a radiologist's viewer would show it, absorbing structures bright. This module
gets there from what modalities send: any transfer syntax pydicom can decode (with the
pylibjpeg plugins: JPEG lossless, JPEG-LS, JPEG 2000, RLE), 8-16 bits stored, the Modality
LUT or rescale, then the VOI LUT or window, then the MONOCHROME1 inversion. PNG and JPEG
files (8 or 16 bit, already displayable) are accepted for the command line.

What is not a single-frame greyscale radiograph is refused with ``RadiographError`` whose
``reason`` names why, so a job can fail with a clear message instead of producing garbage.
An image whose header claims more than ``max_image_bytes`` is refused before any pixel
is decoded: a 1 KB RLE file can claim 65535 x 65535 pixels, and the decoder would
allocate all of them.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian

logger = logging.getLogger(__name__)

GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# What a broken or unsupported codestream raises inside pydicom and its plugins.
_DECODE_ERRORS = (ValueError, RuntimeError, NotImplementedError, OSError, KeyError)


class RejectReason(StrEnum):
    """Why an input is not something the pipeline can process."""

    NOT_AN_IMAGE = "not a DICOM, PNG or JPEG image"
    NO_PIXEL_DATA = "no pixel data"
    NOT_GREYSCALE = "not a greyscale image"
    MULTI_FRAME = "multi-frame image"
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported transfer syntax"
    UNSUPPORTED_BIT_DEPTH = "unsupported bit depth"
    UNREADABLE_PIXEL_DATA = "pixel data cannot be decoded"
    BLANK_IMAGE = "blank image"
    TOO_LARGE = "image too large"
    INVALID_GREYSCALE_TRANSFORM = "invalid modality LUT, VOI LUT or window"


class RadiographError(ValueError):
    """The input is not a single-frame greyscale radiograph this node can process."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, eq=False)
class Radiograph:
    """A decoded radiograph and the source attributes the derived objects need.

    Attributes
    ----------
    pixels
        float32, shape (rows, columns), values in [0, 1], bright = bone; read-only.
    pixel_spacing_mm
        (row spacing, column spacing) in mm: Pixel Spacing, else Imager Pixel Spacing,
        else ``None`` (PNG/JPEG, or a CR without spacing).
    spacing_attribute
        Which attribute the spacing came from, ``None`` without spacing.
    photometric
        The source's Photometric Interpretation (PNG/JPEG count as MONOCHROME2).
    bits_stored
        Bits per stored value of the source.
    sop_instance_uid, sop_class_uid, study_instance_uid, series_instance_uid, modality
        Identity of a DICOM source; ``None`` for PNG/JPEG.
    laterality
        Image Laterality, else series Laterality (``L``, ``R``, ``B``, ``U``), else ``None``.
    transfer_syntax_uid
        How the pixel data were encoded; ``None`` for PNG/JPEG.
    """

    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None
    spacing_attribute: str | None
    photometric: str
    bits_stored: int
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    modality: str | None = None
    laterality: str | None = None
    transfer_syntax_uid: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the image."""
        rows, columns = self.pixels.shape
        return int(rows), int(columns)


def load_radiograph(source: str | Path | Dataset, max_image_bytes: int | None = None) -> Radiograph:
    """Decode a DICOM file or dataset, or a PNG/JPEG file, into a ``Radiograph``.

    ``max_image_bytes`` bounds Rows x Columns x frames x Bits Allocated / 8 of a DICOM
    image, checked before decoding (``None``: no bound).

    Raises
    ------
    RadiographError
        The input is not a single-frame greyscale image that can be decoded; ``reason``
        says why.
    TypeError
        ``source`` is neither a path nor a pydicom ``Dataset``.
    """
    if max_image_bytes is not None and max_image_bytes < 1:
        raise ValueError(f"max_image_bytes must be positive, not {max_image_bytes}")
    if isinstance(source, Dataset):
        return _from_dataset(source, max_image_bytes)
    if not isinstance(source, str | Path):
        raise TypeError(f"expected a path or a pydicom Dataset, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(_PNG_MAGIC) or head.startswith(_JPEG_MAGIC):
        return _from_raster(path)
    try:
        dataset = dcmread(path)
    except InvalidDicomError as error:
        raise RadiographError(RejectReason.NOT_AN_IMAGE, f"{path.name}: {error}") from error
    return _from_dataset(dataset, max_image_bytes)


def _from_dataset(ds: Dataset, max_image_bytes: int | None) -> Radiograph:
    _check_size(ds, max_image_bytes)
    _check_image(ds)
    try:
        stored = ds.pixel_array
    except BaseException as error:
        if not _is_decoder_failure(error):
            raise
        raise RadiographError(
            RejectReason.UNREADABLE_PIXEL_DATA, f"{type(error).__name__}: {error}"
        ) from error
    if stored.ndim != 2:
        raise RadiographError(RejectReason.MULTI_FRAME, f"decoded shape {stored.shape}")
    try:
        grey = _display_values(stored, ds)
    except (
        ValueError,
        IndexError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
        struct.error,
    ) as error:
        if isinstance(error, RadiographError):
            raise
        # A LUT shorter than its descriptor says, a window width of 0, a rescale that
        # is not a number: the sender's data, not our bug.
        raise RadiographError(
            RejectReason.INVALID_GREYSCALE_TRANSFORM, f"{type(error).__name__}: {error}"
        ) from error
    if _inverted(ds):
        grey = 1.0 - grey
    spacing, spacing_attribute = pixel_spacing(ds)
    return Radiograph(
        pixels=_read_only(grey),
        pixel_spacing_mm=spacing,
        spacing_attribute=spacing_attribute,
        photometric=str(ds.PhotometricInterpretation),
        bits_stored=int(ds.BitsStored),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality"),
        laterality=_text(ds, "ImageLaterality") or _text(ds, "Laterality"),
        transfer_syntax_uid=str(_transfer_syntax(ds)),
    )


def _is_decoder_failure(error: BaseException) -> bool:
    """True for what a broken codestream raises, including a Rust decoder's panic.

    pylibjpeg-rle panics on runs that overflow the frame; PyO3 raises that as
    ``pyo3_runtime.PanicException``, a ``BaseException`` no ``except Exception`` stops:
    it ended the worker's task loop. The class cannot be imported, only recognised.
    """
    return isinstance(error, _DECODE_ERRORS) or type(error).__name__ == "PanicException"


def _header_integer(ds: Dataset, keyword: str, default: int) -> int:
    """An integer attribute of the image header, ``default`` if absent or empty."""
    try:
        value: Any = ds.get(keyword)
        return default if value is None or value == "" else int(value)
    except (ValueError, TypeError, OverflowError) as error:
        raise RadiographError(
            RejectReason.UNREADABLE_PIXEL_DATA, f"{keyword} is not an integer"
        ) from error


def _check_size(ds: Dataset, max_image_bytes: int | None) -> None:
    """Refuse an image whose header claims more than ``max_image_bytes`` of pixels."""
    if max_image_bytes is None or "PixelData" not in ds:
        return
    rows, columns = _header_integer(ds, "Rows", 0), _header_integer(ds, "Columns", 0)
    frames = _header_integer(ds, "NumberOfFrames", 1) or 1
    samples = _header_integer(ds, "SamplesPerPixel", 1)
    bits = _header_integer(ds, "BitsAllocated", 0)
    claimed = rows * columns * frames * samples * max(bits, 8) // 8
    if claimed > max_image_bytes:
        raise RadiographError(
            RejectReason.TOO_LARGE,
            f"{rows} x {columns} x {frames} frame(s) x {samples} sample(s) at {bits} bits is "
            f"{claimed} bytes, more than {max_image_bytes} (worker.max_image_bytes)",
        )


def _check_image(ds: Dataset) -> None:
    """Refuse, with the reason, whatever is not one greyscale frame we can decode."""
    if "PixelData" not in ds:
        other = next((k for k in ("FloatPixelData", "DoubleFloatPixelData") if k in ds), None)
        detail = f"{other} is not supported" if other else f"SOP Class {ds.get('SOPClassUID')}"
        raise RadiographError(RejectReason.NO_PIXEL_DATA, detail)
    samples = int(ds.get("SamplesPerPixel", 1))
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if samples != 1 or photometric not in GREYSCALE:
        raise RadiographError(
            RejectReason.NOT_GREYSCALE,
            f"Photometric Interpretation {photometric or 'missing'}, {samples} samples/pixel",
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise RadiographError(RejectReason.MULTI_FRAME, f"{frames} frames")
    allocated, stored = int(ds.get("BitsAllocated", 0)), int(ds.get("BitsStored", 0))
    if allocated not in (8, 16) or not 1 <= stored <= allocated:
        raise RadiographError(
            RejectReason.UNSUPPORTED_BIT_DEPTH,
            f"Bits Allocated {allocated}, Bits Stored {stored} (8 or 16 allocated supported)",
        )
    syntax = _transfer_syntax(ds)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        raise RadiographError(
            RejectReason.UNSUPPORTED_TRANSFER_SYNTAX, f"{syntax.name} ({syntax})"
        ) from error
    if not decoder.is_available:
        raise RadiographError(
            RejectReason.UNSUPPORTED_TRANSFER_SYNTAX,
            f"{syntax.name} ({syntax}): no decoder plugin installed",
        )


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID)
    # A dataset built in memory has no file meta: pixel data are native.
    return ExplicitVRLittleEndian


def _display_values(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    """Modality LUT, then VOI LUT or window, scaled to [0, 1] by the VOI's output range."""
    modality = apply_modality_lut(stored, ds)
    if ds.get("VOILUTSequence"):
        if np.issubdtype(modality.dtype, np.floating):
            # A VOI LUT is indexed by integers; a rescale with integral values is exact.
            modality = np.rint(modality).astype(np.int64)
        shown = apply_voi_lut(modality, ds, index=0, prefer_lut=True)
        low, high = _voi_lut_range(ds)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        shown = apply_voi_lut(modality, ds, index=0, prefer_lut=False)
        low, high = _window_range(ds)
    else:
        # No VOI: show the values present, as a viewer's automatic window does.
        shown = modality
        low, high = float(np.min(shown)), float(np.max(shown))
    if high == low:
        raise RadiographError(RejectReason.BLANK_IMAGE, f"all pixels display as {low:g}")
    scaled = (np.asarray(shown, dtype=np.float64) - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _voi_lut_range(ds: Dataset) -> tuple[float, float]:
    """The values the first VOI LUT can produce (its entries' minimum and maximum)."""
    item = ds.VOILUTSequence[0]
    entries, first, _ = (int(v) for v in item.LUTDescriptor)
    inputs = np.arange(first, first + (entries or 1 << 16), dtype=np.int64)
    outputs = apply_voi_lut(inputs, ds, index=0, prefer_lut=True)
    return float(np.min(outputs)), float(np.max(outputs))


def _window_range(ds: Dataset) -> tuple[float, float]:
    """What a window maps "below" and "above" to, as PS3.3 C.11.2.1.2 and pydicom define it.

    With a negative rescale slope the first value is the larger one; keeping that order
    keeps "below the window" dark.
    """
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = low * slope + intercept, high * slope + intercept
    return low, high


def _inverted(ds: Dataset) -> bool:
    """Whether low values display bright: MONOCHROME1, or an INVERSE Presentation LUT.

    In DX the INVERSE shape accompanies MONOCHROME1 and names the same inversion, so it
    is applied once.
    """
    if ds.PhotometricInterpretation == "MONOCHROME1":
        return True
    return str(ds.get("PresentationLUTShape", "")).upper() == "INVERSE"


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm and the attribute it came from, or ``(None, None)``.

    Pixel Spacing (calibrated at the patient) wins over Imager Pixel Spacing (at the
    detector); non-positive values are ignored with a warning.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            if value is None or len(value) != 2:
                continue
            row, column = float(value[0]), float(value[1])
        except (ValueError, TypeError, OverflowError):
            # The value is not logged: a malformed attribute may hold anything.
            logger.warning("ignoring %s: not two decimal numbers", keyword)
            continue
        if row > 0 and column > 0:
            return (row, column), keyword
        logger.warning("ignoring %s %s: not positive", keyword, list(value))
    return None, None


def _text(ds: Dataset, keyword: str) -> str | None:
    value: Any = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def _from_raster(path: Path) -> Radiograph:
    """A PNG or JPEG as displayed: 8-bit by 255, 16-bit by 65535; colour only if grey."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            array = _grey_array(image, path)
    except (UnidentifiedImageError, OSError) as error:
        raise RadiographError(RejectReason.NOT_AN_IMAGE, f"{path.name}: {error}") from error
    bits = 8 if array.dtype == np.uint8 else 16
    grey = array.astype(np.float32) / float((1 << bits) - 1)
    if float(grey.max()) <= float(grey.min()):
        raise RadiographError(RejectReason.BLANK_IMAGE, f"{path.name}: constant image")
    return Radiograph(
        pixels=_read_only(grey),
        pixel_spacing_mm=None,
        spacing_attribute=None,
        photometric="MONOCHROME2",
        bits_stored=bits,
    )


def _grey_array(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in {"L", "LA", "1"}:
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode.startswith("I"):
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise RadiographError(
                RejectReason.UNSUPPORTED_BIT_DEPTH, f"{path.name}: values beyond 16 bits"
            )
        return values.astype(np.uint16)
    if mode in {"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr"}:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        if np.abs(rgb - rgb[..., :1]).max() > 1:
            raise RadiographError(RejectReason.NOT_GREYSCALE, f"{path.name}: colour {mode} image")
        return rgb[..., 0].astype(np.uint8)
    raise RadiographError(RejectReason.UNSUPPORTED_BIT_DEPTH, f"{path.name}: image mode {mode}")


def _read_only(array: np.ndarray) -> np.ndarray:
    result = np.ascontiguousarray(array, dtype=np.float32)
    result.flags.writeable = False
    return result
