"""A corpus of hostile inputs, each with the DIMSE status the node must answer.

One row per case: a name, a builder of the Part 10 file to send (generated here, byte by
byte where pydicom would refuse to write it), and the expected status. Every file goes
to one real node on a loopback port over its own association, exactly as built
(pynetdicom streams the data set unchanged); a refused file must leave nothing booked.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_inputs import (
    deflate,
    deflate_bomb,
    element,
    encode,
    hand_file,
    item_of,
    long_element_header,
    nested_sequences,
    part10,
    request_uids,
    send_files,
    sequence,
    split_at_pixel_data,
)
from node_testing import CT_IMAGE, DX_PRESENTATION, echo_status, hand_dataset, node_settings, save
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import _config
from sqlalchemy import select

from blsnode.node import Node
from dicom_node.db import Instance
from dicom_node.dimse_status import DicomStatus

SUCCESS = int(DicomStatus.SUCCESS)
CANNOT_UNDERSTAND = int(DicomStatus.CANNOT_UNDERSTAND)
OUT_OF_RESOURCES = int(DicomStatus.OUT_OF_RESOURCES)
# No status: the node aborted the association (send_files answers -1).
ABORTED = -1
# The node of this module refuses data sets larger than this (a bomb need not be big).
MAX_DATASET_BYTES = 8 << 20
REFERENCED_IMAGE_SEQUENCE = (0x0008, 0x1140)
ANATOMIC_REGION_SEQUENCE = (0x0008, 0x2218)


@dataclass(frozen=True)
class Case:
    """One hostile input: how to build it (in a folder, with a seed) and what to answer."""

    name: str
    build: Callable[[Path, int], Path]
    status: int


def _after_pixels(keyword: str, value: object, syntax: str = ExplicitVRLittleEndian) -> Case:
    """An identity attribute repeated after Pixel Data with another value."""

    def build(folder: Path, seed: int) -> Path:
        return hand_file(
            folder / "f.dcm", seed, syntax, after_pixels=element(keyword, value, syntax)
        )

    short = syntax.name.replace(" ", "")
    return Case(f"{keyword} repeated after Pixel Data ({short})", build, CANNOT_UNDERSTAND)


def _repeated_in_header(folder: Path, seed: int) -> Path:
    # A second Patient ID right after the first: equal tags next to each other.
    return hand_file(folder / "f.dcm", seed, insert=(0x00100021, element("PatientID", "OTHER")))


def _out_of_order_in_header(folder: Path, seed: int) -> Path:
    # Modality (0008,0060) after the Patient module: tag order broken, no tag repeated.
    ds = hand_dataset(seed=seed, Modality=None)
    header, pixels = split_at_pixel_data(encode(ds))
    body = header + element("Modality", "DX") + pixels
    return part10(folder / "f.dcm", body, ds.SOPClassUID, ds.SOPInstanceUID)


def _in_item(elements: bytes, defined_length: bool = True) -> Callable[[Path, int], Path]:
    def build(folder: Path, seed: int) -> Path:
        item = item_of(elements, defined_length)
        return hand_file(
            folder / "f.dcm",
            seed,
            insert=(0x00082218, sequence(ANATOMIC_REGION_SEQUENCE, item)),
        )

    return build


_CODE = element("CodeValue", "T-D8700") + element("CodingSchemeDesignator", "SRT")
_CODE_SWAPPED = element("CodingSchemeDesignator", "SRT") + element("CodeValue", "T-D8700")
_CODE_TWICE = element("CodeValue", "T-D8700") + element("CodeValue", "T-D8701")


def _trailing_padding(folder: Path, seed: int) -> Path:
    padding = long_element_header((0xFFFC, 0xFFFC), b"OB", 16) + bytes(16)
    return hand_file(folder / "f.dcm", seed, after_pixels=padding)


def _nested(depth: int, defined_length: bool) -> Callable[[Path, int], Path]:
    def build(folder: Path, seed: int) -> Path:
        return hand_file(
            folder / "f.dcm",
            seed,
            insert=(0x00081140, nested_sequences(depth, defined_length)),
        )

    return build


def _deflated_truncated(folder: Path, seed: int) -> Path:
    ds = hand_dataset(seed=seed)
    body = deflate(encode(ds))
    return part10(
        folder / "f.dcm",
        body[: len(body) // 2],
        ds.SOPClassUID,
        ds.SOPInstanceUID,
        DeflatedExplicitVRLittleEndian,
    )


def _deflated_garbage(folder: Path, seed: int) -> Path:
    ds = hand_dataset(seed=seed)
    body = bytes(range(256)) * 16
    return part10(
        folder / "f.dcm", body, ds.SOPClassUID, ds.SOPInstanceUID, DeflatedExplicitVRLittleEndian
    )


def _native(syntax: str) -> Callable[[Path, int], Path]:
    def build(folder: Path, seed: int) -> Path:
        return hand_file(folder / "f.dcm", seed, syntax)

    return build


def _oversized_native(folder: Path, seed: int) -> Path:
    # Large enough to pass the limit by its own length, no deflate involved.
    return hand_file(folder / "f.dcm", seed, rows=2100, columns=2048)


def _with_uids(**uids: str) -> Callable[[Path, int], Path]:
    """A hand radiograph with these UIDs (the file meta, and so the request, follows)."""

    def build(folder: Path, seed: int) -> Path:
        return hand_file(folder / "f.dcm", seed, **uids)

    return build


def _raw_body(body: bytes, syntax: str = ExplicitVRLittleEndian) -> Callable[[Path, int], Path]:
    """The bytes ``body`` sent as the data set of a DX instance with fresh UIDs."""

    def build(folder: Path, seed: int) -> Path:
        ds = hand_dataset(seed=seed)
        return part10(folder / "f.dcm", body, ds.SOPClassUID, ds.SOPInstanceUID, syntax)

    return build


def _spliced(
    before_pixels: bytes = b"", after_pixels: bytes = b"", insert: tuple[int, bytes] | None = None
) -> Callable[[Path, int], Path]:
    def build(folder: Path, seed: int) -> Path:
        return hand_file(
            folder / "f.dcm", seed, before_pixels=before_pixels, after_pixels=after_pixels,
            insert=insert,
        )  # fmt: skip

    return build


def _edited(edit: Callable[[bytes], bytes]) -> Callable[[Path, int], Path]:
    """A valid hand radiograph whose encoded data set ``edit`` changes."""

    def build(folder: Path, seed: int) -> Path:
        ds = hand_dataset(seed=seed)
        body = edit(encode(ds))
        return part10(folder / "f.dcm", body, ds.SOPClassUID, ds.SOPInstanceUID)

    return build


def _cut(count: int) -> Callable[[bytes], bytes]:
    return lambda body: body[:-count]


def _header_edit(edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def apply(body: bytes) -> bytes:
        header, pixels = split_at_pixel_data(body)
        return edit(header) + pixels

    return apply


def _replace_first(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data.replace(old, new, 1)


def _encapsulated_in(syntax: str) -> Callable[[Path, int], Path]:
    """Encapsulated (undefined-length) pixel data under ``syntax``."""

    def build(folder: Path, seed: int) -> Path:
        ds = hand_dataset(seed=seed)
        header, _ = split_at_pixel_data(encode(ds))
        fragment = bytes(64)
        pixels = (
            long_element_header((0x7FE0, 0x0010), b"OB", 0xFFFFFFFF)
            + struct.pack("<HHL", 0xFFFE, 0xE000, 0)
            + struct.pack("<HHL", 0xFFFE, 0xE000, len(fragment))
            + fragment
            + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        )
        return part10(folder / "f.dcm", header + pixels, ds.SOPClassUID, ds.SOPInstanceUID, syntax)

    return build


def _rle(folder: Path, seed: int) -> Path:
    ds = hand_dataset(seed=seed)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    return save(ds, folder / "f.dcm")


def _other_class(folder: Path, seed: int) -> Path:
    return hand_file(folder / "f.dcm", seed, SOPClassUID=CT_IMAGE, Modality="CT")


_TAG_ITEM = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
_PRIVATE = (
    struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 6) + b"ACME 1"
    + struct.pack("<HH2sH", 0x0009, 0x1001, b"LO", 2) + b"v1"
)  # fmt: skip
_PRIVATE_TWICE = _PRIVATE + struct.pack("<HH2sH", 0x0009, 0x1001, b"LO", 2) + b"v2"


CASES = [
    # Controls: what must keep working.
    Case("valid, explicit VR little endian", _native(ExplicitVRLittleEndian), SUCCESS),
    Case("valid, implicit VR little endian", _native(ImplicitVRLittleEndian), SUCCESS),
    Case("valid, explicit VR big endian", _native(ExplicitVRBigEndian), SUCCESS),
    Case("valid, deflated", _native(DeflatedExplicitVRLittleEndian), SUCCESS),
    Case("valid sequence item", _in_item(_CODE), SUCCESS),
    Case("valid undefined-length item", _in_item(_CODE, defined_length=False), SUCCESS),
    Case("trailing padding after Pixel Data", _trailing_padding, SUCCESS),
    Case("sequences nested 20 deep", _nested(20, defined_length=True), SUCCESS),
    # Identity taken once: no attribute may have a second value.
    _after_pixels("PatientID", "OTHER-PATIENT"),
    _after_pixels("PatientName", "OTHER^PATIENT"),
    _after_pixels("StudyInstanceUID", "1.2.3.4.5.6.7"),
    _after_pixels("SeriesInstanceUID", "1.2.3.4.5.6.8"),
    _after_pixels("SOPInstanceUID", "1.2.3.4.5.6.9"),
    _after_pixels("PatientBirthDate", "19700101"),
    _after_pixels("PatientID", "OTHER-PATIENT", ImplicitVRLittleEndian),
    _after_pixels("StudyInstanceUID", "1.2.3.4.5.6.7", ExplicitVRBigEndian),
    _after_pixels("PatientID", "OTHER-PATIENT", DeflatedExplicitVRLittleEndian),
    Case("Patient ID twice in the header", _repeated_in_header, CANNOT_UNDERSTAND),
    Case("Modality after the Patient module", _out_of_order_in_header, CANNOT_UNDERSTAND),
    Case("tags out of order in an item", _in_item(_CODE_SWAPPED), CANNOT_UNDERSTAND),
    Case("tag repeated in an item", _in_item(_CODE_TWICE), CANNOT_UNDERSTAND),
    Case(
        "tag repeated in an undefined-length item",
        _in_item(_CODE_TWICE, defined_length=False),
        CANNOT_UNDERSTAND,
    ),
    # Structure: nesting and deflate.
    Case("3000 nested defined-length sequences", _nested(3000, True), CANNOT_UNDERSTAND),
    Case("40 nested undefined-length sequences", _nested(40, False), CANNOT_UNDERSTAND),
    Case("deflated, cut in half", _deflated_truncated, CANNOT_UNDERSTAND),
    Case("deflated, not deflate data", _deflated_garbage, CANNOT_UNDERSTAND),
    # Bounded memory.
    Case(
        "deflate bomb: 1 GiB of zeros in 1 MB",
        lambda folder, seed: deflate_bomb(folder / "f.dcm", seed, 1 << 30),
        OUT_OF_RESOURCES,
    ),
    Case(
        "deflate bomb just over the limit",
        lambda folder, seed: deflate_bomb(folder / "f.dcm", seed, MAX_DATASET_BYTES),
        OUT_OF_RESOURCES,
    ),
    # Gathering it would spend the memory: the association is aborted while it arrives.
    Case("native data set over the limit", _oversized_native, ABORTED),
    # UIDs.
    Case(
        "SOP Instance UID with a leading zero",
        _with_uids(SOPInstanceUID="1.2.03.4"),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "Study Instance UID with a leading zero",
        _with_uids(StudyInstanceUID="1.2.3.04"),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "Series Instance UID with a leading zero",
        _with_uids(SeriesInstanceUID="01.2.3"),
        CANNOT_UNDERSTAND,
    ),
    Case("UID component 0 is fine", _with_uids(SeriesInstanceUID="1.2.0.3"), SUCCESS),
    Case(
        "Study Instance UID of 65 characters",
        _with_uids(StudyInstanceUID="1." + "2" * 63),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "Series Instance UID with letters",
        _with_uids(SeriesInstanceUID="1.2.abc"),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "Study Instance UID with a trailing dot",
        _with_uids(StudyInstanceUID="1.2.3."),
        CANNOT_UNDERSTAND,
    ),
    Case("Series Instance UID empty", _with_uids(SeriesInstanceUID=""), CANNOT_UNDERSTAND),
    Case(
        "SOP Class of the data set differs from the request",
        _edited(
            _replace_first(DX_PRESENTATION.encode() + b"\x00", b"1.2.840.10008.5.1.4.1.1.1.2\x00")
        ),
        int(DicomStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS),
    ),
    # Transfer syntax and pixel encoding.
    Case("JPEG-LS transfer syntax with native pixels", _native(JPEGLSLossless), CANNOT_UNDERSTAND),
    Case("RLE transfer syntax with native pixels", _native(RLELossless), CANNOT_UNDERSTAND),
    Case(
        "JPEG 2000 transfer syntax with native pixels", _native(JPEG2000Lossless), CANNOT_UNDERSTAND
    ),
    Case(
        "native syntax with encapsulated pixels",
        _encapsulated_in(ExplicitVRLittleEndian),
        CANNOT_UNDERSTAND,
    ),
    Case("valid RLE Lossless", _rle, SUCCESS),
    Case(
        "deflated syntax, body not deflated",
        _raw_body(b"\x08\x00\x16\x00UI\x04\x001.2\x00", DeflatedExplicitVRLittleEndian),
        CANNOT_UNDERSTAND,
    ),
    # Encoding.
    Case("cut by 1 byte", _edited(_cut(1)), CANNOT_UNDERSTAND),
    Case(
        "cut inside the header",
        _edited(lambda body: split_at_pixel_data(body)[0][:-3]),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "cut inside the Pixel Data element header",
        _edited(lambda body: split_at_pixel_data(body)[0] + split_at_pixel_data(body)[1][:6]),
        CANNOT_UNDERSTAND,
    ),
    Case("empty data set", _raw_body(b""), CANNOT_UNDERSTAND),
    Case("four bytes of data set", _raw_body(b"\x08\x00\x16\x00"), CANNOT_UNDERSTAND),
    Case(
        "unknown VR",
        _edited(_header_edit(_replace_first(b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00ZZ"))),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "undefined length on a CS element",
        _edited(
            _header_edit(
                _replace_first(
                    b"\x08\x00\x60\x00CS\x02\x00", b"\x08\x00\x60\x00UN\x00\x00\xff\xff\xff\xff"
                )
            )
        ),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "element length beyond the data set",
        _spliced(after_pixels=long_element_header((0xFFFC, 0xFFFC), b"OB", 1 << 20)),
        CANNOT_UNDERSTAND,
    ),
    Case("item tag at the top level", _spliced(after_pixels=_TAG_ITEM), CANNOT_UNDERSTAND),
    Case(
        "undefined-length sequence without delimiter",
        _spliced(
            insert=(
                0x00082218,
                long_element_header(ANATOMIC_REGION_SEQUENCE, b"SQ", 0xFFFFFFFF) + item_of(_CODE),
            )
        ),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "defined-length sequence shorter than its item",
        _spliced(
            insert=(
                0x00082218,
                long_element_header(ANATOMIC_REGION_SEQUENCE, b"SQ", 12) + item_of(_CODE),
            )
        ),
        CANNOT_UNDERSTAND,
    ),
    Case(
        "item longer than its sequence",
        _spliced(
            insert=(
                0x00082218,
                long_element_header(ANATOMIC_REGION_SEQUENCE, b"SQ", 8) + item_of(_CODE)[:8],
            )
        ),
        CANNOT_UNDERSTAND,
    ),
    Case("private block in order", _spliced(insert=(0x00090010, _PRIVATE)), SUCCESS),
    Case(
        "private element repeated", _spliced(insert=(0x00090010, _PRIVATE_TWICE)), CANNOT_UNDERSTAND
    ),
    Case(
        "Patient Name with the VR of a date is stored as received",
        _edited(_header_edit(_replace_first(b"\x10\x00\x10\x00PN", b"\x10\x00\x10\x00DA"))),
        SUCCESS,
    ),
    Case("another storage class is stored", _other_class, SUCCESS),
    Case(
        "sequences nested 40 deep, defined length",
        _nested(40, defined_length=True),
        CANNOT_UNDERSTAND,
    ),
]


@pytest.fixture(autouse=True)
def _send_files_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom re-encodes files it sends unless told to stream their bytes unchanged."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One node for the whole corpus (each case sends its own UIDs)."""
    settings = node_settings(
        tmp_path_factory.mktemp("hostile-node"),
        storage={"min_free_bytes": 0, "max_dataset_bytes": MAX_DATASET_BYTES},
    )
    started = Node(settings)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def _booked(node: Node, sop_instance_uid: str) -> bool:
    assert node.database is not None
    with node.database.sessions() as session:
        query = select(Instance.id).where(Instance.sop_instance_uid == sop_instance_uid)
        return session.scalar(query) is not None


def test_the_corpus_is_large_enough() -> None:
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names)
    assert len(CASES) >= 60


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_each_hostile_input_gets_its_status(node: Node, tmp_path: Path, index: int) -> None:
    case = CASES[index]
    path = case.build(tmp_path, 1000 + index)
    port = node.settings.network.port
    assert send_files(port, [path]) == [case.status]
    assert _booked(node, request_uids(path)[1]) is (case.status == SUCCESS)
    assert echo_status(port) == SUCCESS
