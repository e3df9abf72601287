"""Realistic DX and CR radiographs built from the real hand radiographs of the shared data.

Provenance
----------
The pixels are real posteroanterior radiographs of left hands from the **Digital Hand
Atlas** (Image Processing and Informatics Lab, University of Southern California; offered
for research use), as kept in ``../shared/data/hand_radiographs/images`` (8-bit greyscale
JPEG, re-encoded at quality 95 from the published files; children and adolescents). This
module **re-encodes** them; nothing here comes from a modality:

- the 8-bit grey values (bright = bone) are scaled linearly to 8-16 bits stored and, for
  MONOCHROME1, inverted, so that every variant displays as the atlas image does;
- a right hand is the left hand mirrored; "two hands" puts the mirrored copy (the patient's
  right hand, on the viewer's left) beside the original;
- the DICOM header is synthetic: invented patient, study and series identities, a pixel
  spacing of 0.15 mm (the atlas has none; its spacing is roughly 0.1-0.17 mm), DX or CR
  attributes a digital radiography system would write;
- compressed transfer syntaxes are produced here: RLE, JPEG 2000 and JPEG-LS with pydicom's
  encoders (pylibjpeg-rle / pylibjpeg-openjpeg / pyjpegls), JPEG Lossless (process 14,
  selection value 1) with dcmtk's ``dcmcjpeg``.

Tests import it as ``from dicom_factory import make_dx`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    UID,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DEFAULT_SPACING_MM = 0.15
# Transfer syntaxes the factory can write; JPEG 2000 (lossy) is the only lossy one.
SUPPORTED_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLSLossless,
    JPEGLosslessSV1,
)
_PYDICOM_ENCODED = {RLELossless, JPEG2000Lossless, JPEG2000, JPEGLSLossless}
_DCMTK_ENCODED = {JPEGLosslessSV1: ["dcmcjpeg", "+e1", "+un"]}
_HAND_CODE = ("85562004", "SCT", "Hand")
_PA_VIEW_CODE = ("272479007", "SCT", "postero-anterior")


def hand_image(
    path: Path | str,
    *,
    right: bool = False,
    two_hands: bool = False,
    scale: float = 1.0,
) -> np.ndarray:
    """The 8-bit atlas image (bright = bone) as a left or right hand, or both side by side.

    Two hands are laid out as a viewer sees a PA image of both hands: the patient's right
    hand (the mirrored atlas hand) on the viewer's left.
    """
    if scale <= 0 or scale > 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    with Image.open(path) as image:
        grey = image.convert("L")
        if scale != 1.0:
            size = (round(grey.width * scale), round(grey.height * scale))
            grey = grey.resize(size, Image.Resampling.LANCZOS)
        left = np.asarray(grey, dtype=np.uint8)
    if two_hands:
        return np.ascontiguousarray(np.concatenate([left[:, ::-1], left], axis=1))
    return np.ascontiguousarray(left[:, ::-1] if right else left)


def stored_values(grey8: np.ndarray, bits_stored: int, photometric: str) -> np.ndarray:
    """Scale 8-bit display grey values to ``bits_stored`` bits, inverted for MONOCHROME1."""
    if not 8 <= bits_stored <= 16:
        raise ValueError(f"bits_stored must be 8..16, got {bits_stored}")
    if photometric not in {"MONOCHROME1", "MONOCHROME2"}:
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    top = (1 << bits_stored) - 1
    values = np.rint(grey8.astype(np.float64) * (top / 255.0))
    if photometric == "MONOCHROME1":
        values = top - values
    return values.astype(np.uint8 if bits_stored == 8 else np.uint16)


def make_dx(
    image: Path | str,
    *,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    for_processing: bool = False,
    right: bool = False,
    two_hands: bool = False,
    scale: float = 1.0,
    spacing_mm: float | None = DEFAULT_SPACING_MM,
    calibrated_spacing: bool = False,
    window: bool = True,
    patient_id: str = "BLSNODE-TEST-0001",
    study_instance_uid: str | None = None,
    uid_seed: str = "",
) -> Dataset:
    """A DX image (for presentation or for processing) of one or two hands.

    Parameters
    ----------
    image
        An atlas JPEG (``hand_radiographs/images/<id>.jpg``).
    bits_stored
        8 to 16; 8 bits are stored in 8-bit words, more in 16-bit words.
    photometric
        ``MONOCHROME1`` (stored values inverted) or ``MONOCHROME2``.
    transfer_syntax
        One of ``SUPPORTED_TRANSFER_SYNTAXES``.
    for_processing
        DX For Processing (no VOI window unless ``window``) instead of For Presentation.
    right, two_hands
        Mirror the atlas' left hand, or show both hands (ImageLaterality ``B``).
    scale
        Down-sampling factor in (0, 1] (keeps tests quick); the spacing grows to match.
    spacing_mm
        Imager Pixel Spacing at full scale (Type 1 in DX, so never ``None`` here).
    calibrated_spacing
        Also write Pixel Spacing (calibrated at the patient, 2 % smaller) with its
        calibration type, as systems with a magnification correction do.
    window
        Write a VOI window covering the stored range (required For Presentation).
    uid_seed
        Extra entropy for the deterministic UIDs, to tell otherwise equal images apart.
    """
    if spacing_mm is None:
        raise ValueError("DX requires Imager Pixel Spacing; use make_cr for no spacing")
    if not for_processing and not window:
        raise ValueError("DX For Presentation requires a VOI window")
    return _make(
        image,
        modality="DX",
        bits_stored=bits_stored,
        photometric=photometric,
        transfer_syntax=transfer_syntax,
        for_processing=for_processing,
        right=right,
        two_hands=two_hands,
        scale=scale,
        spacing_mm=spacing_mm,
        calibrated_spacing=calibrated_spacing,
        window=window,
        rescale=(1.0, 0.0),
        patient_id=patient_id,
        study_instance_uid=study_instance_uid,
        uid_seed=uid_seed,
    )


def make_cr(
    image: Path | str,
    *,
    bits_stored: int = 10,
    photometric: str = "MONOCHROME1",
    transfer_syntax: str = ExplicitVRLittleEndian,
    right: bool = False,
    two_hands: bool = False,
    scale: float = 1.0,
    spacing_mm: float | None = None,
    window: bool = True,
    rescale: tuple[float, float] = (1.0, 0.0),
    patient_id: str = "BLSNODE-TEST-0002",
    study_instance_uid: str | None = None,
    uid_seed: str = "",
) -> Dataset:
    """A CR image: no spacing by default (older readers omit it), any rescale.

    ``rescale`` is (slope, intercept) of the Modality LUT; the window is written in the
    rescaled units so the display matches the atlas image.
    """
    if rescale[0] == 0:
        raise ValueError("rescale slope must not be 0")
    return _make(
        image,
        modality="CR",
        bits_stored=bits_stored,
        photometric=photometric,
        transfer_syntax=transfer_syntax,
        for_processing=False,
        right=right,
        two_hands=two_hands,
        scale=scale,
        spacing_mm=spacing_mm,
        calibrated_spacing=False,
        window=window,
        rescale=rescale,
        patient_id=patient_id,
        study_instance_uid=study_instance_uid,
        uid_seed=uid_seed,
    )


def write_dataset(dataset: Dataset, path: Path | str) -> Path:
    """Write ``dataset`` as a DICOM file (preamble and file meta) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(target, enforce_file_format=True)
    return target


def _make(
    image: Path | str,
    *,
    modality: str,
    bits_stored: int,
    photometric: str,
    transfer_syntax: str,
    for_processing: bool,
    right: bool,
    two_hands: bool,
    scale: float,
    spacing_mm: float | None,
    calibrated_spacing: bool,
    window: bool,
    rescale: tuple[float, float],
    patient_id: str,
    study_instance_uid: str | None,
    uid_seed: str,
) -> Dataset:
    if UID(transfer_syntax) not in SUPPORTED_TRANSFER_SYNTAXES:
        raise ValueError(f"unsupported transfer syntax {transfer_syntax}")
    if right and two_hands:
        raise ValueError("choose right or two_hands, not both")
    grey8 = hand_image(image, right=right, two_hands=two_hands, scale=scale)
    pixels = stored_values(grey8, bits_stored, photometric)
    laterality = "B" if two_hands else ("R" if right else "L")
    seed = [
        str(Path(image).name),
        modality,
        str(bits_stored),
        photometric,
        str(transfer_syntax),
        str(for_processing),
        laterality,
        str(scale),
        uid_seed,
    ]

    ds = Dataset()
    _patient(ds, patient_id)
    _study(ds, study_instance_uid or generate_uid(entropy_srcs=[patient_id, "study", uid_seed]))
    _series(ds, modality, for_processing, laterality, seed)
    _equipment(ds)
    _image(ds, modality, for_processing, laterality, seed)
    _pixels(ds, pixels, bits_stored, photometric, window, rescale, modality)
    _geometry(ds, modality, spacing_mm, scale, calibrated_spacing)
    if modality == "DX":
        _dx_specific(ds, photometric)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return _encode(ds, UID(transfer_syntax))


def _patient(ds: Dataset, patient_id: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Atlas^Hand"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "20100314"
    ds.PatientSex = "F"
    ds.PatientAge = "013Y"


def _study(ds: Dataset, study_instance_uid: str) -> None:
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = "20240117"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "XR HAND PA"


def _series(
    ds: Dataset, modality: str, for_processing: bool, laterality: str, seed: list[str]
) -> None:
    ds.Modality = modality
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*seed, "series"])
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Hand PA" if laterality != "B" else "Both hands PA"
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    if modality == "DX":
        ds.PresentationIntentType = "FOR PROCESSING" if for_processing else "FOR PRESENTATION"


def _equipment(ds: Dataset) -> None:
    ds.Manufacturer = "Atlas Re-Encoding"
    ds.InstitutionName = "blsgan-node test suite"
    ds.ManufacturerModelName = "dicom_factory"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "1"
    ds.StationName = "FACTORY"


def _image(
    ds: Dataset, modality: str, for_processing: bool, laterality: str, seed: list[str]
) -> None:
    if modality == "CR":
        ds.SOPClassUID = CR_IMAGE_STORAGE
    elif for_processing:
        ds.SOPClassUID = DigitalXRayImageStorageForProcessing
    else:
        ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[*seed, "instance"])
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"] if modality == "CR" else ["ORIGINAL", "PRIMARY", ""]
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AcquisitionDate = ds.StudyDate
    ds.AcquisitionTime = ds.StudyTime
    ds.InstanceCreationDate = datetime.date(2024, 1, 17).strftime("%Y%m%d")
    # Fingers up, thumb of the left hand on the viewer's right: rows run towards the
    # patient's left, columns from the finger tips towards the head (anatomical position).
    ds.PatientOrientation = ["L", "H"]
    ds.ImageLaterality = laterality
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = _HAND_CODE
    ds.AnatomicRegionSequence = DicomSequence([region])


def _pixels(
    ds: Dataset,
    pixels: np.ndarray,
    bits_stored: int,
    photometric: str,
    window: bool,
    rescale: tuple[float, float],
    modality: str,
) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.BitsAllocated = 8 if bits_stored == 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    slope, intercept = rescale
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleType = "US"
    if window:
        top = (1 << bits_stored) - 1
        ends = sorted((intercept, top * slope + intercept))
        ds.WindowCenter = f"{(ends[0] + ends[1] + abs(slope)) / 2:g}"
        ds.WindowWidth = f"{ends[1] - ends[0] + abs(slope):g}"
        ds.WindowCenterWidthExplanation = "FULL RANGE"
        ds.VOILUTFunction = "LINEAR"
    ds.PixelData = pixels.tobytes()
    if modality == "DX":
        ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"


def _geometry(
    ds: Dataset,
    modality: str,
    spacing_mm: float | None,
    scale: float,
    calibrated_spacing: bool,
) -> None:
    if spacing_mm is None:
        return
    spacing = f"{spacing_mm / scale:.6g}"
    ds.ImagerPixelSpacing = [spacing, spacing]
    if calibrated_spacing:
        calibrated = f"{spacing_mm / scale * 0.98:.6g}"
        ds.PixelSpacing = [calibrated, calibrated]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "magnification-corrected at the hand"
        ds.EstimatedRadiographicMagnificationFactor = "1.02"
    if modality == "DX":
        ds.DistanceSourceToDetector = "1000"
        ds.DistanceSourceToPatient = "980.4"  # 1000 / 980.4 = the 1.02 magnification


def _dx_specific(ds: Dataset, photometric: str) -> None:
    view = Dataset()
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = _PA_VIEW_CODE
    view.ViewModifierCodeSequence = DicomSequence()
    ds.ViewCodeSequence = DicomSequence([view])
    ds.PixelIntensityRelationship = "LOG"
    # +1: lower stored values mean less beam intensity (bright bone in MONOCHROME1 ...
    # as stored); -1 for MONOCHROME2 where bone is stored high.
    ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME1" else -1
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.DetectorID = "DET01"
    ds.KVP = "50"
    ds.ExposureInuAs = 2000
    ds.AcquisitionContextSequence = DicomSequence()
    ds.PositionerType = "NONE"


def _encode(ds: Dataset, transfer_syntax: UID) -> Dataset:
    if transfer_syntax == ExplicitVRLittleEndian:
        return ds
    if transfer_syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        return ds
    if transfer_syntax in _PYDICOM_ENCODED:
        options: dict[str, object] = {"generate_instance_uid": False}
        if transfer_syntax == JPEG2000:
            options["j2k_cr"] = [10]
            ds.LossyImageCompression = "01"
            ds.LossyImageCompressionRatio = "10"
            ds.LossyImageCompressionMethod = "ISO_15444_1"
        ds.compress(transfer_syntax, **options)  # type: ignore[arg-type]
        return ds
    return _dcmtk_encode(ds, _DCMTK_ENCODED[transfer_syntax])


def _dcmtk_encode(ds: Dataset, command: Sequence[str]) -> Dataset:
    """Encode with a dcmtk program (pydicom has no encoder for that syntax)."""
    program = shutil.which(command[0])
    if program is None:
        raise RuntimeError(f"{command[0]} (dcmtk) is not installed; see scripts/")
    with tempfile.TemporaryDirectory(prefix="dicom-factory-") as folder:
        source = Path(folder) / "in.dcm"
        target = Path(folder) / "out.dcm"
        ds.save_as(source, enforce_file_format=True)
        subprocess.run(
            [program, *command[1:], str(source), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return dcmread(target)
