"""Bad input at a running ``blsnode serve``: each gets a defined answer, the node keeps serving.

The node runs as the embedded default (filesystem queue, its own worker). Every file
goes on its own association and is followed by a C-ECHO. The answers:

- a C-STORE status, and then nothing is stored (the structural cases of
  ``tests/test_dicom_node/test_malformed.py``, reused here, plus more);
- the presentation context or the association is rejected;
- stored (0x0000), and its job fails with a reason a person can act on;
- stored, and no rule processes it (not a hand PA radiograph);
- for raw byte streams on the port: an A-ABORT or a closed connection, within a bound.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from e2e_node import ServedNode, served_node
from loopback import wait_until
from node_testing import CT_IMAGE, echo_status, hand_dataset, save
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
)
from pynetdicom import AE
from sqlalchemy import select
from test_malformed import _send_files_as_they_are, malformed  # noqa: F401 (autouse fixture)

from dicom_node.db import Instance, Job, JobState
from dicom_node.dimse_status import DicomStatus

pytestmark = pytest.mark.e2e

SUCCESS = int(DicomStatus.SUCCESS)
CANNOT_UNDERSTAND = int(DicomStatus.CANNOT_UNDERSTAND)
ANSWER_TIMEOUT_S = 15.0
IDLE_TIMEOUT_S = 2.0  # the node's ACSE and network timeouts in this test


# A-ASSOCIATE-AC presentation context results (PS3.8 9.3.3.2).
ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03
TRANSFER_SYNTAXES_NOT_SUPPORTED = 0x04


@dataclass(frozen=True)
class Expect:
    """A defined answer: a C-STORE status, or the rejected presentation context's result;
    for a stored file that a rule processes, the start of its failed job's reason."""

    status: int | None = SUCCESS
    context_result: int | None = None
    job_reason: str | None = None


REFUSED = Expect(CANNOT_UNDERSTAND)
STORED_ONLY = Expect(SUCCESS)


def _failed_job(reason: str) -> Expect:
    return Expect(SUCCESS, job_reason=reason)


def _context_rejected(result: int) -> Expect:
    return Expect(None, context_result=result)


# --- the corpus ----------------------------------------------------------------------


def _patched(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert data.count(old) == 1, f"{old!r} is not unique in {path.name}"
    path.write_bytes(data.replace(old, new))
    return path


def _meta_only(dataset: Dataset, path: Path) -> Path:
    """A Part 10 file whose data set is empty (zero bytes after the file meta)."""
    save(dataset, path)
    data = path.read_bytes()
    meta_end = data.index(b"\x08\x00\x05\x00")  # the first data set element
    path.write_bytes(data[:meta_end])
    return path


def _with_syntax(dataset: Dataset, syntax: str, body: bytes, path: Path) -> Path:
    """File meta announcing ``syntax``, then ``body`` as the data set."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    header = Dataset()
    header.file_meta = meta
    header.save_as(path, enforce_file_format=True)
    path.write_bytes(path.read_bytes() + body)
    return path


def _jpeg2000(dataset: Dataset, path: Path, corrupt: bool = False) -> Path:
    dataset.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    if corrupt:
        # A valid encapsulation of a codestream that is garbage after its first bytes.
        frame = bytes(dataset.PixelData)[16:]
        start = frame.index(b"\xff\x4f")  # SOC marker
        broken = frame[start : start + 64] + os.urandom(256)
        dataset.PixelData = encapsulate([broken])
    return save(dataset, path)


def _corpus(folder: Path) -> dict[str, tuple[Path, Expect]]:
    """At least 20 malformed or unsupported files, each with the answer it must get."""
    cases: dict[str, tuple[Path, Expect]] = {
        name: (path, Expect(status)) for name, (path, status) in malformed(folder).items()
    }

    def add(name: str, path: Path, expect: Expect) -> None:
        cases[name] = (path, expect)

    def hand(seed: int, **attributes: object) -> Dataset:
        return hand_dataset(rows=96, columns=80, seed=100 + seed, **attributes)

    # Refused at the C-STORE: nothing stored.
    add("zero-length data set", _meta_only(hand(1), folder / "empty.dcm"), REFUSED)
    no_class = hand(2)
    del no_class.SOPClassUID
    add("missing SOP Class UID", save(no_class, folder / "no-class.dcm"), REFUSED)
    add("UID longer than 64", save(hand(3, SeriesInstanceUID="1." * 40 + "1"),
                                   folder / "long-uid.dcm"), REFUSED)  # fmt: skip
    huge = save(hand(4), folder / "huge.dcm")
    length = struct.pack("<I", 96 * 80 * 2)
    add("pixel data declares 4 GiB", _patched(huge, b"OW\x00\x00" + length,
                                              b"OW\x00\x00\xf0\xff\xff\xff"), REFUSED)  # fmt: skip
    undefined = save(hand(5), folder / "undefined.dcm")
    add("native pixel data of undefined length", _patched(undefined, b"OW\x00\x00" + length,
        b"OW\x00\x00\xff\xff\xff\xff"), REFUSED)  # fmt: skip
    add("corrupt deflate stream", _with_syntax(hand(6), DeflatedExplicitVRLittleEndian,
        os.urandom(2048), folder / "deflate.dcm"), REFUSED)  # fmt: skip
    unterminated = _jpeg2000(hand(7), folder / "unterminated.dcm")
    data = unterminated.read_bytes()
    assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    unterminated.write_bytes(data[:-8])
    add("encapsulated pixel data without its delimiter", unterminated, REFUSED)

    # The presentation context is rejected: nothing can be sent.
    add("unsupported transfer syntax (MPEG-2)",
        _with_syntax(hand(8), MPEG2MPML, bytes(64), folder / "mpeg2.dcm"),
        _context_rejected(TRANSFER_SYNTAXES_NOT_SUPPORTED))  # fmt: skip
    add("private SOP class", save(hand(9, SOPClassUID="1.2.826.0.1.3680043.9.9999.1"),
        folder / "private.dcm"), _context_rejected(ABSTRACT_SYNTAX_NOT_SUPPORTED))  # fmt: skip

    # Stored, then the job fails with the reason.
    rgb = hand(10, SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0,
               BitsAllocated=8, BitsStored=8, HighBit=7)  # fmt: skip
    rgb.PixelData = np.zeros((96, 80, 3), np.uint8).tobytes()
    add("RGB", save(rgb, folder / "rgb.dcm"), _failed_job("not a greyscale image"))
    frames = hand(11, NumberOfFrames=2)
    frames.PixelData = np.ones((2, 96, 80), np.uint16).tobytes()
    add("multi-frame", save(frames, folder / "frames.dcm"), _failed_job("multi-frame image"))
    add("no pixel data", save(hand(12, PixelData=None), folder / "no-pixels.dcm"),
        _failed_job("no pixel data"))  # fmt: skip
    add("float pixel data",
        save(hand(13, PixelData=None, FloatPixelData=bytes(96 * 80 * 4), BitsAllocated=32),
             folder / "float.dcm"), _failed_job("no pixel data"))  # fmt: skip
    add("32-bit pixels", save(hand(14, BitsAllocated=32, BitsStored=32, HighBit=31,
        PixelData=np.ones((96, 80), np.uint32).tobytes()), folder / "32bit.dcm"),
        _failed_job("unsupported bit depth"))  # fmt: skip
    add("pixel data shorter than the image", save(hand(15, PixelData=bytes(100)),
        folder / "short.dcm"), _failed_job("pixel data cannot be decoded"))  # fmt: skip
    add("corrupt JPEG 2000 codestream", _jpeg2000(hand(16), folder / "bad-j2k.dcm", corrupt=True),
        _failed_job("pixel data cannot be decoded"))  # fmt: skip
    add("blank image", save(hand(17, PixelData=bytes(96 * 80 * 2)), folder / "blank.dcm"),
        _failed_job("blank image"))  # fmt: skip
    add("a thumbnail too small for a hand", save(hand_dataset(rows=32, columns=32, seed=118),
        folder / "thumbnail.dcm"), _failed_job("no hand found"))  # fmt: skip

    # Stored; no rule processes it: not a PA hand radiograph, or our own output coming back.
    add("chest", save(hand(19, BodyPartExamined="CHEST"), folder / "chest.dcm"), STORED_ONLY)
    add("lateral hand", save(hand(20, ViewPosition="LL"), folder / "lateral.dcm"), STORED_ONLY)
    add("CT image", save(hand(21, SOPClassUID=CT_IMAGE, Modality="CT"), folder / "ct.dcm"),
        STORED_ONLY)  # fmt: skip
    add("our own output sent back", save(hand(22, Manufacturer="blsgan-node"),
                                         folder / "own.dcm"), STORED_ONLY)  # fmt: skip
    return cases


def _store(port: int, path: Path) -> Expect:
    """Send one file as it is on its own association; what the node answered."""
    header = dcmread(path, stop_before_pixels=True)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(
        str(header.file_meta.MediaStorageSOPClassUID), str(header.file_meta.TransferSyntaxUID)
    )
    association = ae.associate("127.0.0.1", port, ae_title="BLSNODE")
    if not association.accepted_contexts:
        # The node answered A-ASSOCIATE-AC with the context rejected; pynetdicom then
        # aborts an association it cannot use.
        [rejected] = association.rejected_contexts
        assert not association.is_established
        return Expect(None, context_result=rejected.result)
    assert association.is_established
    try:
        response = association.send_c_store(path)
        return Expect(int(response.Status) if "Status" in response else None)
    finally:
        association.release()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, model_registry: Path) -> Iterator[ServedNode]:
    """``blsnode serve`` as installed by default: filesystem queue, embedded worker."""
    folder = tmp_path_factory.mktemp("bad-input")
    with served_node(
        folder / "node",
        worker={"embedded": True},
        models={"registry_dir": str(model_registry)},
        network={"acse_timeout_s": IDLE_TIMEOUT_S, "network_timeout_s": IDLE_TIMEOUT_S},
    ) as running:
        yield running


def test_every_bad_file_gets_its_defined_answer(node: ServedNode, tmp_path: Path) -> None:
    cases = _corpus(tmp_path)
    assert len(cases) >= 20
    stored: dict[str, str] = {}  # name -> SOP Instance UID
    for name, (path, expect) in cases.items():
        answer = _store(node.port, path)
        assert (answer.status, answer.context_result) == (expect.status, expect.context_result), (
            name
        )
        assert echo_status(node.port) == SUCCESS, f"no C-ECHO after {name}"
        if expect.status == SUCCESS:
            stored[name] = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)

    # Exactly the accepted files are stored; the refused left nothing behind.
    assert set(node.instance_uids()) == set(stored.values())
    assert sorted(p.stem for p in node.spooled_files()) == sorted(stored.values())
    # Each stored file that a rule processes fails its job with the expected reason.
    expected_jobs = {stored[n]: e.job_reason for n, (_, e) in cases.items() if e.job_reason}

    def finished() -> dict[str, str | None] | None:
        with node.database.reader() as session:
            query = select(Instance.sop_instance_uid, Job.state, Job.reason).join(Job)
            jobs = {uid: (state, reason) for uid, state, reason in session.execute(query)}
        if any(state in {JobState.QUEUED, JobState.RUNNING} for state, _ in jobs.values()):
            return None
        return {uid: reason for uid, (_, reason) in jobs.items()}

    reasons = wait_until(finished, 180, interval_s=0.5, what="every job to finish")
    assert set(reasons) == set(expected_jobs)
    for uid, expected in expected_jobs.items():
        name = next(n for n, u in stored.items() if u == uid)
        assert (reasons[uid] or "").startswith(expected), (name, reasons[uid])
    assert node.serve.running()


# --- raw byte streams on the DICOM port ------------------------------------------------

A_ABORT = 0x07
A_ASSOCIATE_RJ = 0x03


def _answer(connection: socket.socket) -> str:
    """What the node did with a connection: ``abort``, ``reject`` or ``closed``."""
    connection.settimeout(ANSWER_TIMEOUT_S)
    try:
        first = connection.recv(1)
    except ConnectionResetError:
        return "closed"
    if not first:
        return "closed"
    return {A_ABORT: "abort", A_ASSOCIATE_RJ: "reject"}.get(first[0], f"0x{first[0]:02X}")


def _association_request_header(length: int) -> bytes:
    return struct.pack(">BBL", 0x01, 0x00, length)


def _random(connection: socket.socket) -> None:
    connection.sendall(os.urandom(4096))


def _http(connection: socket.socket) -> None:
    connection.sendall(b"GET /metrics HTTP/1.1\r\nHost: blsnode\r\n\r\n")


def _tls_hello(connection: socket.socket) -> None:
    connection.sendall(bytes.fromhex("16030100a5010000a10303") + os.urandom(160))


def _p_data_first(connection: socket.socket) -> None:
    connection.sendall(struct.pack(">BBL", 0x04, 0x00, 6) + bytes(6))


def _garbage_request(connection: socket.socket) -> None:
    connection.sendall(_association_request_header(68) + os.urandom(68))


def _huge_request_then_close(connection: socket.socket) -> None:
    connection.sendall(_association_request_header(0xFFFFFFF0) + bytes(64))
    connection.shutdown(socket.SHUT_WR)


def _half_a_request(connection: socket.socket) -> None:
    connection.sendall(_association_request_header(200)[:4])


def _silence(connection: socket.socket) -> None:
    """A half-open connection: the peer says nothing and keeps it open."""


STREAMS: dict[str, tuple[Callable[[socket.socket], None], set[str]]] = {
    "random bytes": (_random, {"abort", "closed"}),
    "an HTTP request": (_http, {"abort", "closed"}),
    "a TLS ClientHello on the plain port": (_tls_hello, {"abort", "closed"}),
    "P-DATA before any association": (_p_data_first, {"abort", "closed"}),
    "an A-ASSOCIATE-RQ of garbage": (_garbage_request, {"abort", "reject", "closed"}),
    "an A-ASSOCIATE-RQ announcing 4 GiB": (_huge_request_then_close, {"abort", "closed"}),
    "half an A-ASSOCIATE-RQ header, then silence": (_half_a_request, {"abort", "closed"}),
    "a half-open connection": (_silence, {"abort", "closed"}),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_garbage_on_the_port_gets_an_abort_or_a_close(node: ServedNode, name: str) -> None:
    send, answers = STREAMS[name]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", node.port)) as connection:
        send(connection)
        # Others are served while this connection is open.
        assert echo_status(node.port) == SUCCESS
        answer = _answer(connection)
    assert answer in answers, f"{name}: {answer}"
    assert time.monotonic() - started < ANSWER_TIMEOUT_S
    assert echo_status(node.port) == SUCCESS


def test_a_flood_of_silent_connections_does_not_lock_callers_out(node: ServedNode) -> None:
    limit = node.settings.network.max_associations
    silent = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(limit + 5)]
    try:
        assert echo_status(node.port) == SUCCESS
        for connection in silent:
            assert _answer(connection) == "closed"
    finally:
        for connection in silent:
            connection.close()
    assert echo_status(node.port) == SUCCESS


def test_a_connection_reset_mid_request_is_harmless(node: ServedNode) -> None:
    connection = socket.create_connection(("127.0.0.1", node.port))
    connection.sendall(_association_request_header(200) + bytes(20))
    # SO_LINGER 0: close with a TCP reset, as a crashed modality's operating system would.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
    assert echo_status(node.port) == SUCCESS
    wait_until(lambda: node.serve.running() and echo_status(node.port) == SUCCESS)
