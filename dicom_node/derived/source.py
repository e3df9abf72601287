"""What the derived images take over from the source radiograph beyond what highdicom copies.

A DX or CR has no Frame of Reference, so an image derived from it needs the source's
Patient Orientation (General Image, Type 2C) to say which way is which, and a hand is a
paired body part, so it needs its laterality (Image Laterality, or the series Laterality
when only that is known) for ``dciodvfy`` and for a reader who wants to know which hand
is shown.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from dicom_node.derived.uids import OutputUids

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


def with_type_2_present(source: Dataset) -> Dataset:
    """``source``, or a copy of it with the absent copied Type 2 attributes set empty.

    Modalities in the wild leave out Type 2 attributes such as Patient's Birth Date; an
    absent Type 2 attribute means what an empty one means (unknown), and the derived
    objects then carry it empty, as their own Type 2 rules ask. The source is not changed.
    """
    missing = [keyword for keyword in _COPIED_TYPE_2 if keyword not in source]
    if not missing:
        return source
    # pydicom's shallow copies share the element mapping; only a deep copy leaves
    # ``source`` untouched (a few milliseconds even with the pixel data).
    completed = copy.deepcopy(source)
    for keyword in missing:
        setattr(completed, keyword, "")
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
