"""Builders of hostile data sets, byte by byte: what a careless or malicious sender sends.

pydicom refuses to write most of these (repeated tags, tags out of order, lengths that
lie), so a case is assembled from encoded pieces: the encoded data set of a valid hand
radiograph, single elements encoded on their own, raw element headers. ``part10`` wraps
any body in a file meta so that pynetdicom (with ``STORE_SEND_CHUNKED_DATASET``) or
dcmtk's ``storescu`` sends the body exactly as built.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from node_testing import hand_dataset
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

PIXEL_DATA_TAG = (0x7FE0, 0x0010)


def encoding(syntax: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of a native transfer syntax (deflated: explicit LE)."""
    if syntax == ImplicitVRLittleEndian:
        return True, True
    if syntax == ExplicitVRBigEndian:
        return False, False
    return False, True


def encode(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """The data set ``ds`` encoded in ``syntax`` (deflated syntaxes get the raw encoding)."""
    implicit, little = encoding(syntax)
    stream = DicomBytesIO()
    stream.is_implicit_VR, stream.is_little_endian = implicit, little
    write_dataset(stream, ds)
    return stream.getvalue()


def element(keyword: str, value: object, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """One element encoded on its own, to be spliced anywhere."""
    ds = Dataset()
    setattr(ds, keyword, value)
    return encode(ds, syntax)


def deflate(raw: bytes) -> bytes:
    """Raw deflate (no zlib header), as Deflated Explicit VR Little Endian wants."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(raw) + compressor.flush()


def split_at_pixel_data(body: bytes, syntax: str = ExplicitVRLittleEndian) -> tuple[bytes, bytes]:
    """(header, Pixel Data element and what follows) of an encoded hand radiograph."""
    _, little = encoding(syntax)
    marker = struct.pack("<HH" if little else ">HH", *PIXEL_DATA_TAG)
    at = body.rindex(marker)
    return body[:at], body[at:]


def part10(
    path: Path,
    body: bytes,
    sop_class_uid: str,
    sop_instance_uid: str,
    syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """Write ``body`` after a preamble and a file meta naming these UIDs and syntax."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    stream = DicomBytesIO()
    stream.is_little_endian, stream.is_implicit_VR = True, False
    write_file_meta_info(stream, meta, enforce_standard=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 128 + b"DICM" + stream.getvalue() + body)
    return path


def hand_file(
    path: Path,
    seed: int,
    syntax: str = ExplicitVRLittleEndian,
    before_pixels: bytes = b"",
    after_pixels: bytes = b"",
    insert: tuple[int, bytes] | None = None,
    **attributes: object,
) -> Path:
    """A small hand radiograph, with raw bytes spliced before and/or after Pixel Data.

    ``insert`` is (tag, bytes): spliced into the header where that tag belongs.
    """
    ds = hand_dataset(seed=seed, **attributes)
    native = ExplicitVRLittleEndian if syntax == DeflatedExplicitVRLittleEndian else syntax
    header, pixels = split_at_pixel_data(encode(ds, native), native)
    if insert is not None:
        header = insert_in_order(header, insert[0], insert[1], native)
    body = header + before_pixels + pixels + after_pixels
    if syntax == DeflatedExplicitVRLittleEndian:
        body = deflate(body)
    return part10(path, body, ds.SOPClassUID, ds.SOPInstanceUID, syntax)


_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}


def element_offsets(header: bytes, syntax: str = ExplicitVRLittleEndian) -> list[tuple[int, int]]:
    """(tag as one integer, offset) of each top-level element of a header without sequences."""
    implicit, little = encoding(syntax)
    prefix = "<" if little else ">"
    found, pos = [], 0
    while pos < len(header):
        group, number = struct.unpack_from(prefix + "HH", header, pos)
        found.append(((group << 16) | number, pos))
        if implicit:
            pos += 8 + struct.unpack_from(prefix + "L", header, pos + 4)[0]
        elif header[pos + 4 : pos + 6] in _LONG_VRS:
            pos += 12 + struct.unpack_from(prefix + "L", header, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from(prefix + "H", header, pos + 6)[0]
    return found


def insert_in_order(
    header: bytes, tag: int, extra: bytes, syntax: str = ExplicitVRLittleEndian
) -> bytes:
    """``header`` with ``extra`` spliced before the first element whose tag is >= ``tag``."""
    at = next((pos for found, pos in element_offsets(header, syntax) if found >= tag), len(header))
    return header[:at] + extra + header[at:]


def long_element_header(tag: tuple[int, int], vr: bytes, length: int) -> bytes:
    """An explicit VR little endian header of an element with a 4-byte length."""
    return struct.pack("<HH2sHL", tag[0], tag[1], vr, 0, length)


def deflate_bomb(path: Path, seed: int, zeros: int) -> Path:
    """A deflated data set whose Pixel Data (OB) inflates to ``zeros`` zero bytes.

    Compressed in 1 MiB steps, so the builder never holds what the bomb claims.
    """
    ds = hand_dataset(seed=seed)
    header, _ = split_at_pixel_data(encode(ds))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(header + long_element_header(PIXEL_DATA_TAG, b"OB", zeros))]
    step = bytes(1 << 20)
    left = zeros
    while left:
        chunk = step if left >= len(step) else bytes(left)
        parts.append(compressor.compress(chunk))
        left -= len(chunk)
    parts.append(compressor.flush())
    body = b"".join(parts)
    return part10(path, body, ds.SOPClassUID, ds.SOPInstanceUID, DeflatedExplicitVRLittleEndian)


def nested_sequences(depth: int, defined_length: bool) -> bytes:
    """Explicit VR LE Referenced Image Sequences nested ``depth`` deep, one item each."""
    inner = b""
    tag = (0x0008, 0x1140)  # Referenced Image Sequence
    for _ in range(depth):
        if defined_length:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner
            inner = long_element_header(tag, b"SQ", len(item)) + item
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner
            item += struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            inner = long_element_header(tag, b"SQ", 0xFFFFFFFF) + item
            inner += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    return inner


def item_of(elements: bytes, defined_length: bool = True) -> bytes:
    """One sequence item holding ``elements`` (already encoded, explicit VR LE)."""
    if defined_length:
        return struct.pack("<HHL", 0xFFFE, 0xE000, len(elements)) + elements
    return (
        struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + elements
        + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
    )


def sequence(tag: tuple[int, int], items: bytes) -> bytes:
    """A defined-length sequence of encoded ``items`` (explicit VR LE)."""
    return long_element_header(tag, b"SQ", len(items)) + items


def request_uids(path: Path) -> tuple[str, str, str]:
    """(SOP Class, SOP Instance, transfer syntax) of a file, from its file meta alone.

    ``dcmread`` would inflate a deflated body whole: a bomb must only be sent, never read.
    """
    meta = read_file_meta_info(path)
    return (
        str(meta.MediaStorageSOPClassUID),
        str(meta.MediaStorageSOPInstanceUID),
        str(meta.TransferSyntaxUID),
    )


def send_files(port: int, paths: list[Path], calling: str = "TESTSCU") -> list[int]:
    """C-STORE each file's bytes unchanged over one association; the statuses (-1: none).

    Needs ``pynetdicom._config.STORE_SEND_CHUNKED_DATASET`` set, as the tests' fixture does.
    """
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    contexts = {request_uids(path)[::2] for path in paths}
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="BLSNODE")
    if not assoc.is_established:
        raise ConnectionError(f"association refused (rejected={assoc.is_rejected})")
    try:
        statuses = []
        for path in paths:
            response = assoc.send_c_store(path)
            statuses.append(int(response.Status) if "Status" in response else -1)
        return statuses
    finally:
        assoc.release()
