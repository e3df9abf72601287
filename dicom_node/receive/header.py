"""Read what routing and bookkeeping need from a received data set, and validate it.

The data set is never decoded beyond its header: pixel data stays as received. A
deflated data set is inflated at most to the largest size the node accepts
(``storage.max_dataset_bytes``): a megabyte of zeros on the wire can claim gigabytes.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pynetdicom.dsutils import split_dataset

from dicom_node.receive.wire import DatasetTooLargeError, MalformedDatasetError, walk

logger = logging.getLogger(__name__)

# UIDs become file names, so only digits and dots pass (PS3.5 9.1), 64 characters at most;
# a component with a leading zero ("1.02") is not a UID either: "1.02" and "1.2" would name
# one instance to a reader that compares numbers, two to one that compares text.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(value: object) -> bool:
    """True for a syntactically valid UID (and so a safe file name)."""
    return isinstance(value, str) and len(value) <= 64 and bool(_UID.match(value))


@dataclass(frozen=True)
class InstanceIdentity:
    """The UIDs an instance is booked under; the worker checks its file against them."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str

    def differences(self, other: InstanceIdentity) -> list[str]:
        """Names of the UIDs that differ between the two (empty when they agree)."""
        return [
            field.name
            for field in fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        ]


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

    @property
    def identity(self) -> InstanceIdentity:
        """The UIDs the instance is booked under."""
        return InstanceIdentity(
            self.sop_class_uid,
            self.sop_instance_uid,
            self.study_instance_uid,
            self.series_instance_uid,
        )


# Inflation is counted in steps of this many bytes before any of it is kept.
_INFLATE_STEP = 16 << 20


def _too_large(max_bytes: int) -> DatasetTooLargeError:
    return DatasetTooLargeError(
        f"the deflated data set inflates beyond {max_bytes} bytes (storage.max_dataset_bytes)"
    )


def _inflated_size(body: bytes | memoryview, max_bytes: int) -> int:
    """Bytes the deflated ``body`` inflates to, counted step by step and not kept.

    Refused as soon as the count passes ``max_bytes``: a bomb costs one step of memory.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0
    pending: bytes | memoryview = body
    try:
        while pending:
            size += len(inflater.decompress(pending, _INFLATE_STEP))
            if size > max_bytes:
                raise _too_large(max_bytes)
            pending = inflater.unconsumed_tail
        size += len(inflater.flush())
    except zlib.error as error:
        raise MalformedDatasetError(f"deflated data set does not inflate: {error}") from error
    if size > max_bytes:
        raise _too_large(max_bytes)
    if not inflater.eof:
        raise MalformedDatasetError("deflated data set is truncated")
    return size


def _inflate(body: bytes | memoryview, max_bytes: int) -> bytes:
    """The inflated data set, once its size is known to be within ``max_bytes``."""
    _inflated_size(body, max_bytes)
    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)


def _ignored(keyword: str, error: Exception) -> None:
    """Log an undecodable attribute by name; the error quotes the value: DEBUG only."""
    logger.warning("ignoring undecodable %s", keyword)
    logger.debug("undecodable %s: %s", keyword, error)


def _text(dataset: Dataset, keyword: str, limit: int) -> str | None:
    """An optional string attribute; a value that does not decode counts as absent."""
    try:
        value: Any = dataset.get(keyword)
    except (ValueError, TypeError, UnicodeError, KeyError, OverflowError) as error:
        _ignored(keyword, error)
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
        _ignored(keyword, error)
        return None


def _check_pixel_encoding(syntax: UID, encapsulated: bool | None) -> None:
    """Pixel Data must be encapsulated exactly when the transfer syntax says so.

    Stored as received, a JPEG-LS data set with native pixels is a file every decoder
    downstream refuses, or misreads.
    """
    if encapsulated is None or encapsulated == syntax.is_encapsulated:
        return
    raise MalformedDatasetError(
        f"Pixel Data is {'encapsulated' if encapsulated else 'native'} but the transfer "
        f"syntax {syntax.name} is {'encapsulated' if syntax.is_encapsulated else 'native'}"
    )


def read_header(
    body: bytes | memoryview, transfer_syntax_uid: str, max_bytes: int
) -> InstanceHeader:
    """Validate the encoded data set ``body`` and return its header.

    Raises
    ------
    DatasetTooLargeError
        If the data set, inflated where deflated, is longer than ``max_bytes``.
    MalformedDatasetError
        If the data set is truncated, its tags repeat or fall out of order, it cannot be
        parsed, or it lacks valid SOP Class, SOP Instance, Study Instance or Series
        Instance UIDs.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, not {max_bytes}")
    syntax = UID(transfer_syntax_uid)
    if not syntax.is_transfer_syntax:
        raise MalformedDatasetError(f"unknown transfer syntax {transfer_syntax_uid!r}")
    if len(body) > max_bytes:
        raise DatasetTooLargeError(
            f"the data set has {len(body)} bytes, more than {max_bytes} (storage.max_dataset_bytes)"
        )
    data: bytes | memoryview = body
    if syntax == DeflatedExplicitVRLittleEndian:
        data = _inflate(body, max_bytes)
    implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
    structure = walk(data, implicit, little)
    _check_pixel_encoding(syntax, structure.pixel_data_encapsulated)
    header_length = structure.header_end
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


@dataclass(frozen=True)
class FileHeader:
    """A Part 10 file validated as a received data set: its file meta and header."""

    file_meta: Dataset
    header: InstanceHeader
    size_bytes: int


def read_file_header(path: Path, max_bytes: int) -> FileHeader:
    """Validate the Part 10 file at ``path`` exactly as the listener validates a data set.

    What passes parses the same way in every reader: the tags rise strictly, so no
    attribute has a second value a later parse could pick.

    Raises
    ------
    DatasetTooLargeError, MalformedDatasetError
        As ``read_header``; also for a file without a usable file meta.
    OSError
        The file cannot be read.
    """
    try:
        file_meta, offset = split_dataset(path)
        syntax = str(file_meta.TransferSyntaxUID)
    except (ValueError, AttributeError, KeyError, EOFError, InvalidDicomError) as error:
        raise MalformedDatasetError(f"{path.name}: no usable file meta: {error}") from error
    data = path.read_bytes()
    return FileHeader(
        file_meta, read_header(memoryview(data)[offset:], syntax, max_bytes), len(data)
    )
