"""Encoding the Part 10 preamble and File Meta Information of a received data set.

Done by hand because it runs once per C-STORE: building a pydicom ``FileMetaDataset`` and
writing it costs more than the rest of the bookkeeping. The result is byte for byte what
pydicom writes (a test compares them).
"""

from __future__ import annotations

import struct

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from dicom_node.receive.header import is_valid_uid
from dicom_node.settings import is_ae_title

PREAMBLE = b"\x00" * 128 + b"DICM"


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2s2xL", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


def encode_file_meta(
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    source_ae_title: str | None = None,
) -> bytes:
    """Preamble, ``DICM`` and group 0002 (explicit VR little endian) for one instance."""
    for name, uid in (
        ("SOP Class UID", sop_class_uid),
        ("SOP Instance UID", sop_instance_uid),
        ("Transfer Syntax UID", transfer_syntax_uid),
    ):
        if not is_valid_uid(uid):
            raise ValueError(f"invalid {name} {uid!r}")
    body = b"".join(
        [
            _element(0x0001, b"OB", b"\x00\x01"),
            _element(0x0002, b"UI", _padded(sop_class_uid, b"\x00")),
            _element(0x0003, b"UI", _padded(sop_instance_uid, b"\x00")),
            _element(0x0010, b"UI", _padded(transfer_syntax_uid, b"\x00")),
            _element(0x0012, b"UI", _padded(PYNETDICOM_IMPLEMENTATION_UID, b"\x00")),
            _element(0x0013, b"SH", _padded(PYNETDICOM_IMPLEMENTATION_VERSION, b" ")),
        ]
    )
    title = (source_ae_title or "").strip()
    # A peer's AE title that is not a legal one is left out rather than failing the store.
    if title and is_ae_title(title):
        body += _element(0x0016, b"AE", _padded(title, b" "))
    group_length = struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(body))
    return PREAMBLE + group_length + body
