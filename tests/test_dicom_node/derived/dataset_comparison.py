"""Compare two built datasets element by element, apart from the moment they were built."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

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
_CLOCK_TAGS = {f"{tag_for_keyword(keyword):08X}" for keyword in _CLOCK_KEYWORDS}


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_clock(item) for key, item in value.items() if key not in _CLOCK_TAGS}
    if isinstance(value, list):
        return [_without_clock(item) for item in value]
    return value


def comparable(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as DICOM JSON (pixel data inline) without the clock's attributes."""
    return _without_clock(dataset.to_json_dict(bulk_data_threshold=2**62))


def assert_same_apart_from_clock(actual: Dataset, expected: Dataset) -> None:
    """Equal in every element (VR and value, nested items too) but the build time's."""
    got, wanted = comparable(actual), comparable(expected)
    assert got.keys() == wanted.keys()
    for tag in wanted:
        assert got[tag] == wanted[tag], f"element {tag} differs"
