"""Read what routing and bookkeeping need from a received data set, and validate it.

The data set is never decoded beyond its header: pixel data stays as received.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicom_node.receive.wire import MalformedDatasetError, check_complete

logger = logging.getLogger(__name__)

# UIDs become file names, so only digits and dots pass (PS3.5 9.1), 64 characters at most.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_valid_uid(value: object) -> bool:
    """True for a syntactically valid UID (and so a safe file name)."""
    return isinstance(value, str) and len(value) <= 64 and bool(_UID.match(value))


@dataclass(frozen=True)
class InstanceHeader:
    """The attributes of a received instance that the node routes and books on."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    modality: str | None = None
    body_part_examined: str | None = None
    view_position: str | None = None
    series_description: str | None = None
    study_description: str | None = None
    study_date: str | None = None
    series_number: int | None = None
    manufacturer: str | None = None


def _inflate(body: bytes | memoryview) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body) + inflater.flush()
    except zlib.error as error:
        raise MalformedDatasetError(f"deflated data set does not inflate: {error}") from error
    if not inflater.eof:
        raise MalformedDatasetError("deflated data set is truncated")
    return data


def _text(dataset: Dataset, keyword: str, limit: int) -> str | None:
    """An optional string attribute; a value that does not decode counts as absent."""
    try:
        value: Any = dataset.get(keyword)
    except (ValueError, TypeError, UnicodeError, KeyError, OverflowError) as error:
        logger.warning("ignoring undecodable %s: %s", keyword, error)
        return None
    if value is None or value == "":
        return None
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(item) for item in value)
    text = str(value).strip()
    return text[:limit] or None


def _integer(dataset: Dataset, keyword: str) -> int | None:
    try:
        value: Any = dataset.get(keyword)
        return None if value is None or value == "" else int(value)
    except (ValueError, TypeError, OverflowError) as error:
        logger.warning("ignoring undecodable %s: %s", keyword, error)
        return None


def read_header(body: bytes | memoryview, transfer_syntax_uid: str) -> InstanceHeader:
    """Validate the encoded data set ``body`` and return its header.

    Raises
    ------
    MalformedDatasetError
        If the data set is truncated, cannot be parsed, or lacks valid SOP Class, SOP
        Instance, Study Instance or Series Instance UIDs.
    """
    syntax = UID(transfer_syntax_uid)
    if not syntax.is_transfer_syntax:
        raise MalformedDatasetError(f"unknown transfer syntax {transfer_syntax_uid!r}")
    data: bytes | memoryview = body
    if syntax == DeflatedExplicitVRLittleEndian:
        data = _inflate(body)
    implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    header_length = check_complete(data, implicit, little)
    stream = DicomBytesIO(bytes(memoryview(data)[:header_length]))
    stream.is_little_endian = little
    stream.is_implicit_VR = implicit
    try:
        dataset = read_dataset(cast(BinaryIO, stream), implicit, little)
        uids = {
            keyword: dataset.get(keyword)
            for keyword in (
                "SOPClassUID",
                "SOPInstanceUID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
            )
        }
    except (ValueError, TypeError, KeyError, UnicodeError, EOFError, OverflowError) as error:
        raise MalformedDatasetError(f"data set cannot be parsed: {error}") from error
    for keyword, value in uids.items():
        if value is None or value == "":
            raise MalformedDatasetError(f"{keyword} is missing")
        if not is_valid_uid(value):
            raise MalformedDatasetError(f"{keyword} is not a valid UID: {str(value)[:80]!r}")
    modality = _text(dataset, "Modality", 16)
    return InstanceHeader(
        sop_class_uid=str(uids["SOPClassUID"]),
        sop_instance_uid=str(uids["SOPInstanceUID"]),
        study_instance_uid=str(uids["StudyInstanceUID"]),
        series_instance_uid=str(uids["SeriesInstanceUID"]),
        transfer_syntax_uid=str(syntax),
        modality=modality.upper() if modality else None,
        body_part_examined=_text(dataset, "BodyPartExamined", 16),
        view_position=_text(dataset, "ViewPosition", 16),
        series_description=_text(dataset, "SeriesDescription", 64),
        study_description=_text(dataset, "StudyDescription", 64),
        study_date=_text(dataset, "StudyDate", 8),
        series_number=_integer(dataset, "SeriesNumber"),
        manufacturer=_text(dataset, "Manufacturer", 64),
    )
