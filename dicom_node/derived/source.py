"""What the derived images take over from the source radiograph beyond what highdicom copies.

A DX or CR has no Frame of Reference, so an image derived from it needs the source's
Patient Orientation (General Image, Type 2C) to say which way is which, and a hand is a
paired body part, so it needs its laterality (Image Laterality, or the series Laterality
when only that is known) for ``dciodvfy`` and for a reader who wants to know which hand
is shown.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.valuerep import validate_value

from dicom_node.derived.uids import OutputUids

logger = logging.getLogger(__name__)

_IMAGE_LATERALITIES = {"L", "R", "B", "U"}
# Type 2 attributes of the Patient and General Study modules that highdicom copies from
# the source into every derived object (and fails on when one is absent).
_COPIED_TYPE_2 = (
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
# Optional attributes the derived objects take over from the source (Type 3, or Type 2C
# read by the builders): a malformed one is left out.
_COPIED_OPTIONAL = (
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientOrientation",
    "BodyPartExamined",
    "ImageLaterality",
    "Laterality",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "Manufacturer",
)
# Patient directions of PS3.3 C.7.6.1.1.1 as LPH vectors.
_DIRECTIONS = {
    "L": (1.0, 0.0, 0.0),
    "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0),
    "A": (0.0, -1.0, 0.0),
    "H": (0.0, 0.0, 1.0),
    "F": (0.0, 0.0, -1.0),
}
# In the anatomical position the fingers point to the feet, so from the finger tip
# towards the wrist, the "down" of every joint crop, is towards the head.
_CROP_COLUMN_DIRECTION = "H"


# Attributes whose values highdicom checks against the standard's enumeration.
_ENUMERATED = {"PatientSex": frozenset({"M", "F", "O"})}


def _malformed(source: Dataset, keyword: str) -> bool:
    """True if the attribute is present but its value does not fit its VR (or enumeration)."""
    if keyword not in source:
        return False
    try:
        element = source[keyword]
        values = element.value if element.VM > 1 else [element.value]
        # The dictionary's VR: the one the derived objects will carry the value in.
        vr = dictionary_VR(keyword)
        for value in values:
            # pydicom's validator refuses its own number types (DSfloat, IS) read from a
            # file; their text is what the VR constrains.
            text = value if isinstance(value, str | bytes) else str(value)
            validate_value(vr, "" if value is None else text, config.RAISE)
            if value and keyword in _ENUMERATED and str(value) not in _ENUMERATED[keyword]:
                return True
    except (ValueError, TypeError, KeyError, OverflowError, UnicodeError):
        return True
    return False


def with_usable_copied_attributes(source: Dataset) -> Dataset:
    """``source``, or a copy whose copied attributes all fit their VRs.

    Modalities in the wild leave out Type 2 attributes such as Patient's Birth Date; an
    absent Type 2 attribute means what an empty one means (unknown), and the derived
    objects then carry it empty, as their own Type 2 rules ask. A malformed value (a
    birth date "PHI-19700101") means no more than an absent one: a Type 2 attribute is
    blanked, an optional one left out, and the job goes on. Only the keyword is logged,
    never the value (it may identify the patient). The source is not changed.
    """
    missing = [keyword for keyword in _COPIED_TYPE_2 if keyword not in source]
    blanked = [keyword for keyword in _COPIED_TYPE_2 if _malformed(source, keyword)]
    dropped = [keyword for keyword in _COPIED_OPTIONAL if _malformed(source, keyword)]
    if not (missing or blanked or dropped):
        return source
    if blanked or dropped:
        logger.warning(
            "malformed values left out of the derived objects: %s",
            ", ".join(blanked + dropped),
            extra={"sop_instance_uid": str(source.get("SOPInstanceUID", ""))},
        )
    # pydicom's shallow copies share the element mapping; only a deep copy leaves
    # ``source`` untouched (a few milliseconds even with the pixel data).
    completed = copy.deepcopy(source)
    for keyword in missing + blanked:
        setattr(completed, keyword, "")
    for keyword in dropped:
        delattr(completed, keyword)
    return completed


def check_source_grid(source: Dataset, grid_shape: tuple[int, int], uids: OutputUids) -> None:
    """Raise ``ValueError`` unless results and UIDs belong to this single-frame source."""
    if uids.source_sop_instance_uid != source.SOPInstanceUID:
        raise ValueError(
            f"UIDs derive from {uids.source_sop_instance_uid}, the source is "
            f"{source.SOPInstanceUID}"
        )
    if int(source.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError(f"source {source.SOPInstanceUID} is not a single-frame image")
    source_shape = (int(source.Rows), int(source.Columns))
    if tuple(grid_shape) != source_shape:
        raise ValueError(f"masks are {grid_shape}, the source image is {source_shape}")


def source_laterality(source: Dataset) -> str | None:
    """Image Laterality of the source, else its series Laterality, else ``None``."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(source.get(keyword, "") or "").upper()
        if value in _IMAGE_LATERALITIES:
            return value
    return None


def set_patient_orientation(target: Dataset, orientation: Sequence[str] | None) -> None:
    """Write Patient Orientation (Type 2C without a Frame of Reference): empty if unknown."""
    if "FrameOfReferenceUID" in target:
        return
    target.PatientOrientation = list(orientation) if orientation else ""


def copy_body_part_and_laterality(
    source: Dataset, target: Dataset, laterality: str | None = None
) -> None:
    """Give ``target`` the source's Body Part Examined and laterality.

    ``laterality`` overrides the source's, e.g. ``L`` for an image of one hand cut from
    a radiograph of both.
    """
    if source.get("BodyPartExamined"):
        target.BodyPartExamined = source.BodyPartExamined
    value = laterality if laterality is not None else source_laterality(source)
    if value is None:
        return
    if value not in _IMAGE_LATERALITIES:
        raise ValueError(f"laterality must be one of {sorted(_IMAGE_LATERALITIES)}, got {value!r}")
    # Image Laterality (General Image) satisfies the series Laterality condition (2C) and,
    # unlike it, can say "B" for both hands.
    target.ImageLaterality = value


def crop_orientation(source: Dataset) -> tuple[str, str] | None:
    """Patient Orientation of a joint crop cut from ``source``, or ``None`` if unknown.

    A crop is the source rotated (never mirrored) so that the finger points up: its
    columns run towards the head (``H``) and its rows keep the source's handedness.
    Known only when the source's Patient Orientation spans a plane that contains the
    head-foot axis, as the coronal plane of a PA hand radiograph does.
    """
    value = source.get("PatientOrientation")
    if not value or len(value) != 2:
        return None
    vectors = [_direction(str(label)) for label in value]
    if vectors[0] is None or vectors[1] is None:
        return None
    normal = np.cross(vectors[0], vectors[1])
    column = np.array(_DIRECTIONS[_CROP_COLUMN_DIRECTION])
    if np.linalg.norm(normal) < 1e-6 or abs(float(normal @ column)) > 0.5:
        return None
    row = np.cross(column, normal / np.linalg.norm(normal))
    return _label(row), _CROP_COLUMN_DIRECTION


def _direction(label: str) -> np.ndarray | None:
    if not label or any(letter not in _DIRECTIONS for letter in label):
        return None
    vector = np.sum([_DIRECTIONS[letter] for letter in label], axis=0)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


def _label(vector: np.ndarray) -> str:
    """Letters of the main components, largest first (``L``, ``LA``, ...)."""
    letters = []
    for axis in np.argsort(-np.abs(vector)):
        component = float(vector[axis])
        if abs(component) >= 0.3:
            positive, negative = (("L", "R"), ("P", "A"), ("H", "F"))[axis]
            letters.append(positive if component > 0 else negative)
    return "".join(letters)
