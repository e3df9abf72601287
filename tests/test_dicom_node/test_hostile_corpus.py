"""A corpus of hostile inputs, each with the DIMSE status the node must answer.

One row per case: a name, a builder of the Part 10 file to send (generated here, byte by
byte where pydicom would refuse to write it), and the expected status. Every file goes
to one real node on a loopback port over its own association, exactly as built
(pynetdicom streams the data set unchanged); a refused file must leave nothing booked.
"""

from __future__ import annotations

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
from node_testing import echo_status, hand_dataset, node_settings
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import _config
from sqlalchemy import select

from blsnode.node import Node
from dicom_node.db import Instance
from dicom_node.dimse_status import DicomStatus

SUCCESS = int(DicomStatus.SUCCESS)
CANNOT_UNDERSTAND = int(DicomStatus.CANNOT_UNDERSTAND)
OUT_OF_RESOURCES = int(DicomStatus.OUT_OF_RESOURCES)
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
    Case("native data set over the limit", _oversized_native, OUT_OF_RESOURCES),
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
    assert len(CASES) >= 25


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_each_hostile_input_gets_its_status(node: Node, tmp_path: Path, index: int) -> None:
    case = CASES[index]
    path = case.build(tmp_path, 1000 + index)
    port = node.settings.network.port
    assert send_files(port, [path]) == [case.status]
    assert _booked(node, request_uids(path)[1]) is (case.status == SUCCESS)
    assert echo_status(port) == SUCCESS
