"""What the derived images take over from the source radiograph beyond what highdicom copies.

A DX or CR has no Frame of Reference, so an image derived from it needs the source's
Patient Orientation (General Image, Type 2C) to say which way is which, and a hand is a
paired body part, so it needs its laterality (Image Laterality, or the series Laterality
when only that is known) for ``dciodvfy`` and for a reader who wants to know which hand
is shown.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicom_node.derived.uids import OutputUids

_IMAGE_LATERALITIES = {"L", "R", "B", "U"}


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


def copy_orientation_and_laterality(
    source: Dataset, target: Dataset, laterality: str | None = None
) -> None:
    """Give ``target`` the source's orientation, body part and laterality.

    ``laterality`` overrides the source's, e.g. ``L`` for an image of one hand cut from
    a radiograph of both.
    """
    if "FrameOfReferenceUID" not in target:
        orientation = source.get("PatientOrientation")
        target.PatientOrientation = list(orientation) if orientation else ""
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
