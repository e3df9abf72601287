"""Compare two built datasets element by element as they are written, apart from the
moment they were built and the UIDs highdicom draws at random for each build."""

from __future__ import annotations

import io
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

# Set from the clock by highdicom, at any depth (Contribution DateTime sits in the
# Contributing Equipment items).
_CLOCK_KEYWORDS = (
    "InstanceCreationDate",
    "InstanceCreationTime",
    "ContentDate",
    "ContentTime",
    "PresentationCreationDate",
    "PresentationCreationTime",
    "ContributionDateTime",
    "DateOfSecondaryCapture",
    "TimeOfSecondaryCapture",
)
# Drawn at random by highdicom on every build (the SEG's dimension organisation, named in
# the Dimension Organization and Dimension Index items).
_RANDOM_KEYWORDS = ("DimensionOrganizationUID",)
_IGNORED_TAGS = {
    f"{tag_for_keyword(keyword):08X}" for keyword in (*_CLOCK_KEYWORDS, *_RANDOM_KEYWORDS)
}


def _without_ignored(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_ignored(item) for key, item in value.items() if key not in _IGNORED_TAGS
        }
    if isinstance(value, list):
        return [_without_ignored(item) for item in value]
    return value


def comparable(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as written (Explicit VR Little Endian, as every derived object) and read
    back, as DICOM JSON (pixel data inline) without the clock's attributes and highdicom's
    random UIDs.

    Read back, a value is what the file holds: a date highdicom set as a ``DA`` and the
    same date decoded from a file as a string are one value.
    """
    written = DicomBytesIO()
    written.is_little_endian, written.is_implicit_VR = True, False
    write_dataset(written, dataset)
    read = read_dataset(io.BytesIO(written.getvalue()), is_implicit_VR=False, is_little_endian=True)
    return _without_ignored(read.to_json_dict(bulk_data_threshold=2**62))


def assert_same_apart_from_clock(actual: Dataset, expected: Dataset) -> None:
    """Equal in every element (VR and value, nested items too) but the build time's and
    highdicom's random UIDs."""
    got, wanted = comparable(actual), comparable(expected)
    assert got.keys() == wanted.keys()
    for tag in wanted:
        assert got[tag] == wanted[tag], f"element {tag} differs"
