"""The hand-encoded File Meta Information is exactly what pydicom writes."""

from __future__ import annotations

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from dicom_node.receive.filemeta import encode_file_meta


def pydicom_meta(sop_class: str, sop_instance: str, syntax: str, source: str | None) -> bytes:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    if source:
        meta.SourceApplicationEntityTitle = source
    stream = DicomBytesIO()
    stream.is_little_endian, stream.is_implicit_VR = True, False
    stream.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(stream, meta, enforce_standard=True)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("sop_instance", "source"),
    [("1.2.3.4", "STORESCU"), ("1.2.3.45", "ODD"), ("1.2.826.0.1.3680043.8.498.1", None)],
)
def test_same_bytes_as_pydicom(sop_instance: str, source: str | None) -> None:
    args = ("1.2.840.10008.5.1.4.1.1.1.1", sop_instance, "1.2.840.10008.1.2.4.90")
    assert encode_file_meta(*args, source) == pydicom_meta(*args, source)


def test_bad_uids_are_refused_and_bad_titles_left_out() -> None:
    with pytest.raises(ValueError, match="SOP Instance UID"):
        encode_file_meta("1.2.3", "1.2.x", "1.2.840.10008.1.2")
    with_bad_title = encode_file_meta("1.2.3", "1.2.4", "1.2.840.10008.1.2", "BAD\\TITLE")
    assert with_bad_title == encode_file_meta("1.2.3", "1.2.4", "1.2.840.10008.1.2")
