"""Wrap a plain image (PNG, JPEG) of a hand as a DX radiograph, to try or feed the node.

Researchers and new users often hold hand radiographs as image files; the node receives
DICOM. ``dx_from_image`` builds a valid DX For Presentation instance (8 bits stored,
MONOCHROME2, a full-range VOI window, Imager Pixel Spacing when known) with new UIDs, so
``blsnode import-image FILE --out hand.dcm`` followed by any C-STORE client is the whole
way in. Pixel values are kept as they are: bright means absorbing, as in the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

_HAND = ("85562004", "SCT", "Hand")
_PA_VIEW = ("272479007", "SCT", "postero-anterior")
LATERALITIES = ("L", "R", "B")


@dataclass(frozen=True)
class ImportedPatient:
    """Who the imported image belongs to (DICOM PN and LO values)."""

    patient_id: str
    patient_name: str = ""
    laterality: str = "L"

    def __post_init__(self) -> None:
        if not self.patient_id or len(self.patient_id) > 64:
            raise ValueError(f"patient id must be 1-64 characters, got {self.patient_id!r}")
        if self.laterality not in LATERALITIES:
            raise ValueError(f"laterality must be one of {LATERALITIES}, got {self.laterality!r}")


def _code(value: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def read_grey8(path: Path) -> np.ndarray:
    """The image at ``path`` as 8-bit grey values; ``ValueError`` if Pillow cannot read it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path} is not an image file Pillow can read: {error}") from error


def dx_from_image(
    grey8: np.ndarray, patient: ImportedPatient, pixel_spacing_mm: float | None = None
) -> Dataset:
    """A DX For Presentation data set (with file meta) holding ``grey8`` as a hand PA view."""
    if grey8.ndim != 2 or grey8.dtype != np.uint8 or min(grey8.shape) < 16:
        raise ValueError(f"need a 2-D 8-bit grey image of at least 16x16, got {grey8.shape}")
    if pixel_spacing_mm is not None and not 0.01 <= pixel_spacing_mm <= 1.0:
        raise ValueError(f"pixel spacing must be 0.01-1.0 mm, got {pixel_spacing_mm}")
    now = datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = date, time
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "XR HAND PA (imported image)"
    ds.Modality = "DX"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Hand PA"
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = ""
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.ImageType = ["DERIVED", "SECONDARY", ""]
    ds.ContentDate, ds.ContentTime = date, time
    ds.AcquisitionDate, ds.AcquisitionTime = date, time
    ds.PatientOrientation = ["L", "H"] if patient.laterality != "R" else ["R", "H"]
    ds.ImageLaterality = patient.laterality
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.AnatomicRegionSequence = DicomSequence([_code(_HAND)])
    view = _code(_PA_VIEW)
    view.ViewModifierCodeSequence = DicomSequence()
    ds.ViewCodeSequence = DicomSequence([view])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in grey8.shape)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
    ds.WindowCenter, ds.WindowWidth = "128", "256"
    ds.VOILUTFunction = "LINEAR"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1  # bone (more attenuation) is stored high
    ds.DetectorType = "SCINTILLATOR"
    ds.AcquisitionContextSequence = DicomSequence()
    ds.PositionerType = "NONE"
    if pixel_spacing_mm is not None:
        ds.ImagerPixelSpacing = [f"{pixel_spacing_mm:.6g}"] * 2
    ds.PixelData = np.ascontiguousarray(grey8).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds
