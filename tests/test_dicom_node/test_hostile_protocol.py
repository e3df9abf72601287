"""Protocol abuse on a real listener: each action, and what the node must answer or do.

Peers are pynetdicom associations and raw sockets on loopback; every case ends by
checking that a well-behaved caller is still served.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import urllib.request
from io import BytesIO
from pathlib import Path

from hostile_inputs import encode
from loopback import wait_until
from node_testing import echo_status, hand_dataset, store_datasets
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from dicom_node.db import Instance, Job, JobState
from dicom_node.db import jobs as job_rows
from dicom_node.dimse_status import DicomStatus

SUCCESS = int(DicomStatus.SUCCESS)
# A-ASSOCIATE-RJ: rejected-transient, service provider (presentation), local limit exceeded.
LOCAL_LIMIT = (0x02, 0x03, 0x02)


def rows(running, model) -> list:
    with running.database.sessions() as session:
        return list(session.scalars(select(model)))


def _established(
    port: int,
    calling: str = "TESTSCU",
    sop_class: str = Verification,
    source: str = "127.0.0.1",
) -> object:
    ae = AE(ae_title=calling)
    ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    ae.dimse_timeout = 10
    return ae.associate("127.0.0.1", port, ae_title="BLSNODE", bind_address=(source, 0))


def _store_in_fragments(assoc, ds, fragment_bytes: int, every_s: float, stop) -> None:
    """Send one C-STORE as whole P-DATA PDUs of ``fragment_bytes``, one every ``every_s``."""
    request = C_STORE()
    request.MessageID, request.Priority = 1, 2
    request.AffectedSOPClassUID = ds.SOPClassUID
    request.AffectedSOPInstanceUID = ds.SOPInstanceUID
    request.DataSet = BytesIO(encode(ds))
    context = assoc._get_valid_context(ds.SOPClassUID, ExplicitVRLittleEndian, "scu")
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    raw = assoc.dul.socket.socket
    try:
        for primitive in message.encode_msg(context.context_id, fragment_bytes):
            pdu = P_DATA_TF()
            pdu.from_primitive(primitive)
            raw.sendall(pdu.encode())
            if every_s and stop.wait(every_s):
                return
    except OSError:  # aborted by the node
        return


def test_a_c_store_without_affected_sop_instance_uid_is_answered(start_node) -> None:
    node = start_node()
    ds = hand_dataset(seed=1)
    assoc = _established(node.port, sop_class=ds.SOPClassUID)
    assert assoc.is_established
    try:
        request = C_STORE()
        request.MessageID, request.Priority = 7, 2
        request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = ds.SOPClassUID, ""
        request.DataSet = BytesIO(encode(ds))
        context = assoc._get_valid_context(ds.SOPClassUID, ExplicitVRLittleEndian, "scu")
        # As pynetdicom's own send_c_store does: the reactor pauses while we wait.
        assoc._reactor_checkpoint.clear()
        wait_until(lambda: assoc._is_paused, what="the reactor to pause")
        started = time.monotonic()
        assoc.dimse.send_msg(request, context.context_id)
        _, response = assoc.dimse.get_msg(block=True)
        assoc._reactor_checkpoint.set()
        assert response is not None, "no answer: the sender waits for its own timeout"
        assert response.Status == int(DicomStatus.CANNOT_UNDERSTAND)
        assert response.MessageIDBeingRespondedTo == 7
        assert time.monotonic() - started < 5
    finally:
        assoc.release()
    assert echo_status(node.port) == SUCCESS


def test_an_ipv4_peer_of_a_dual_stack_listener_matches_its_pinned_entry(start_node) -> None:
    node = start_node(
        network={
            "host": "::",
            "allowed_callers": [
                {"ae_title": "LOCAL", "host": "127.0.0.1"},
                {"ae_title": "PINNED", "host": "10.255.0.1"},
            ],
        }
    )
    # The listener sees this caller as ::ffff:127.0.0.1.
    assert echo_status(node.port, calling="LOCAL") == SUCCESS
    assert echo_status(node.port, calling="PINNED") is None
    assert echo_status(node.port, calling="OTHER") is None


def test_a_peer_trickling_a_pdu_loses_its_slot(start_node) -> None:
    node = start_node(
        network={"max_associations": 1, "pdu_deadline_s": 1.0, "network_timeout_s": 30}
    )
    assoc = _established(node.port)
    assert assoc.is_established
    raw = assoc.dul.socket.socket
    stop = threading.Event()

    def trickle() -> None:
        # A P-DATA-TF PDU announcing 1000 bytes, then one byte every 0.2 s: each read
        # well within the network timeout, the PDU never whole.
        try:
            raw.sendall(struct.pack(">BBL", 0x04, 0x00, 1000))
            while not stop.wait(0.2):
                raw.sendall(b"\x00")
        except OSError:
            return

    sender = threading.Thread(target=trickle, daemon=True)
    started = time.monotonic()
    sender.start()
    try:
        # The only slot is taken: another caller is refused while the trickle goes on...
        assert echo_status(node.port) is None
        # ...until the PDU deadline passes and the node drops the trickling peer.
        wait_until(lambda: echo_status(node.port) == SUCCESS, timeout_s=15, what="the slot freed")
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        sender.join(5)
        assoc.abort()


def test_a_connection_that_never_asks_for_an_association_is_closed_at_the_deadline(
    start_node,
) -> None:
    # The ACSE timeout (60 s) would keep it open for a minute; the request deadline is 1 s.
    node = start_node(network={"association_request_timeout_s": 1.0, "acse_timeout_s": 60})
    with socket.create_connection(("127.0.0.1", node.port)) as silent:
        silent.settimeout(30)
        opened = time.monotonic()
        try:
            closed = silent.recv(1) == b""  # blocks until the node closes the connection
        except ConnectionResetError:
            closed = True
        waited = time.monotonic() - opened
    assert closed
    assert waited >= 0.9, "closed before the deadline"
    wait_until(lambda: len(node.node.listener.ae.active_associations) == 0, what="no thread left")
    # A caller that asks at once is served, and keeps the ACSE timeout afterwards.
    assoc = _established(node.port)
    try:
        assert assoc.is_established
        assert node.node.listener.ae.active_associations[0].acse_timeout == 60
    finally:
        assoc.release()


def test_ten_slow_senders_from_ten_hosts_cannot_hold_every_slot(start_node, caplog) -> None:
    # Whole PDUs of 100 bytes every 0.3 s: each PDU well within its deadline and the
    # network timeout, the data set at ~330 B/s against a floor of 2000 B/s. The data
    # set (25 kB) would take 75 s at that pace; without the floor the slots stay taken.
    caplog.set_level(logging.WARNING, logger="dicom_node.receive.scp")
    node = start_node(
        network={
            "max_associations": 10,
            "max_associations_per_host": 1,
            "min_transfer_rate_bytes_s": 2000,
            "transfer_grace_s": 1.0,
            "pdu_deadline_s": 30,
            "network_timeout_s": 30,
        }
    )
    ds = hand_dataset(rows=128, columns=96, seed=3)
    senders = [
        _established(node.port, f"SLOW{n}", ds.SOPClassUID, source=f"127.0.0.{n + 2}")
        for n in range(10)
    ]
    stop = threading.Event()
    threads = [
        threading.Thread(target=_store_in_fragments, args=(assoc, ds, 100, 0.3, stop))
        for assoc in senders
    ]
    try:
        assert all(assoc.is_established for assoc in senders)
        assert echo_status(node.port) is None, "the ten senders should hold every slot"
        for thread in threads:
            thread.start()
        # Each falls behind the floor within a few fragments and is aborted.
        wait_until(lambda: all(a.is_aborted for a in senders), 20, what="the slow senders aborted")
        wait_until(lambda: echo_status(node.port) == SUCCESS, 10, what="a slot for anyone else")
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for assoc in senders:
            assoc.abort()
    assert rows(node, Instance) == []
    paced = [r for r in caplog.records if "min_transfer_rate_bytes_s" in r.getMessage()]
    assert len(paced) == 10


def test_a_data_set_in_small_fragments_at_a_fair_pace_is_stored(start_node) -> None:
    # The control of the test above: the same fragments, sent without pauses.
    node = start_node(network={"min_transfer_rate_bytes_s": 2000, "transfer_grace_s": 1.0})
    ds = hand_dataset(seed=4)
    assoc = _established(node.port, sop_class=ds.SOPClassUID)
    assert assoc.is_established
    try:
        assoc._reactor_checkpoint.clear()
        wait_until(lambda: assoc._is_paused, what="the reactor to pause")
        _store_in_fragments(assoc, ds, 100, 0.0, threading.Event())
        _, response = assoc.dimse.get_msg(block=True)
        assoc._reactor_checkpoint.set()
        assert response is not None and response.Status == SUCCESS
    finally:
        assoc.release()
    assert [i.sop_instance_uid for i in rows(node, Instance)] == [ds.SOPInstanceUID]


def test_one_host_cannot_take_every_slot(start_node) -> None:
    node = start_node(network={"max_associations": 10, "max_associations_per_host": 2})
    held = [_established(node.port, calling=f"HOLDER{n}") for n in range(2)]
    try:
        assert all(assoc.is_established for assoc in held)
        third = _established(node.port, calling="THIRD")
        assert third.is_rejected
        primitive = third.acceptor.primitive
        assert (primitive.result, primitive.result_source, primitive.diagnostic) == LOCAL_LIMIT
    finally:
        for assoc in held:
            assoc.release()
    wait_until(lambda: echo_status(node.port) == SUCCESS, what="a slot for this host again")


def test_a_silent_http_client_is_disconnected(start_node) -> None:
    node = start_node(http={"host": "127.0.0.1", "port": 0, "client_timeout_s": 0.5})
    port = node.node.http.port
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for connection in silent:
            connection.settimeout(10)
            assert connection.recv(1024) == b""  # closed by the server, not held
    finally:
        for connection in silent:
            connection.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        assert response.status == 200


def test_resends_with_other_content_follow_the_duplicate_policy_of_their_source(
    start_node, caplog
) -> None:
    node = start_node(storage={"min_free_bytes": 0, "duplicates_by_caller": {"STRICT": "reject"}})
    first = hand_dataset(seed=1)
    uids = {
        keyword: first.get(keyword)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    }
    other = hand_dataset(seed=2, **uids)  # the same UIDs, other pixels
    assert store_datasets(node.port, [first]) == [SUCCESS]
    stored = rows(node, Instance)[0]
    content = Path(stored.path).read_bytes()
    with caplog.at_level(logging.INFO, logger="dicom_node.receive.ingest"):
        assert store_datasets(node.port, [first]) == [SUCCESS]  # identical: nothing to say
        assert store_datasets(node.port, [other]) == [int(DicomStatus.ELEMENTS_DISCARDED)]
        assert store_datasets(node.port, [other], calling="STRICT") == [
            int(DicomStatus.DUPLICATE_SOP_INSTANCE)
        ]
    said = [r for r in caplog.records if r.name == "dicom_node.receive.ingest"]
    assert [r.levelno for r in said] == [logging.INFO] * 2
    assert [r.getMessage() for r in said] == [
        "resend with other content ignored (storage.duplicates)",
        "resend with other content rejected (storage.duplicates)",
    ]
    assert [r.sop_instance_uid for r in said] == [first.SOPInstanceUID] * 2
    assert len(rows(node, Instance)) == 1
    assert Path(stored.path).read_bytes() == content  # the first instance is kept


def test_a_resend_replaces_the_instance_under_the_replace_policy(start_node, caplog) -> None:
    node = start_node(storage={"min_free_bytes": 0, "duplicates_by_caller": {"FIXER": "replace"}})
    first = hand_dataset(seed=1)
    uids = {
        keyword: first.get(keyword)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    }
    corrected = hand_dataset(seed=2, **uids)
    assert store_datasets(node.port, [first]) == [SUCCESS]
    (job,) = rows(node, Job)
    with node.database.sessions.begin() as session:
        job_rows.mark_running(session, job.id)
        job_rows.mark_done(session, job.id)
    with caplog.at_level(logging.INFO, logger="dicom_node.receive.ingest"):
        assert store_datasets(node.port, [corrected], calling="FIXER") == [SUCCESS]
    said = [r.getMessage() for r in caplog.records if r.name == "dicom_node.receive.ingest"]
    assert said == ["resend with other content replaced the instance (storage.duplicates)"]
    (instance,) = rows(node, Instance)
    assert dcmread(instance.path).PixelData == corrected.PixelData
    assert instance.calling_ae_title == "FIXER"
    assert instance.size_bytes == Path(instance.path).stat().st_size
    (job,) = rows(node, Job)
    assert job.state is JobState.QUEUED and job.attempts == 0  # processed again
    # Replacing never moves an instance to another study: that resend is refused.
    moved = hand_dataset(seed=3, SOPInstanceUID=first.SOPInstanceUID)
    assert store_datasets(node.port, [moved], calling="FIXER") == [
        int(DicomStatus.DUPLICATE_SOP_INSTANCE)
    ]
    assert dcmread(instance.path).PixelData == corrected.PixelData


IDLE_LIMIT_S = 1.5


def test_a_peer_that_only_echoes_loses_its_slot(start_node, caplog) -> None:
    # C-ECHO every 0.3 s, well within the limit: each restarts the network idle timer
    # but none is storage progress, so the one slot is taken back after the limit.
    caplog.set_level(logging.WARNING, logger="dicom_node.receive.reactor")
    node = start_node(network={"max_associations": 1, "max_idle_association_s": IDLE_LIMIT_S})
    echoer = _established(node.port, calling="ECHOER")
    assert echoer.is_established
    answered: list[int] = []
    stop = threading.Event()

    def echo() -> None:
        while echoer.is_established and not stop.wait(0.3):
            response = echoer.send_c_echo()
            if "Status" in response:
                answered.append(int(response.Status))

    thread = threading.Thread(target=echo)
    thread.start()
    try:
        wait_until(lambda: echoer.is_aborted, 20, what="the echoing peer aborted")
    finally:
        stop.set()
        thread.join(10)
        echoer.abort()
    assert answered and set(answered) == {SUCCESS}
    ds = hand_dataset(seed=5)
    assert store_datasets(node.port, [ds], calling="STORER") == [SUCCESS]
    assert [i.sop_instance_uid for i in rows(node, Instance)] == [ds.SOPInstanceUID]
    (record,) = [r for r in caplog.records if "max_idle_association_s" in r.getMessage()]
    assert "ECHOER" in record.getMessage() and "127.0.0.1" in record.getMessage()


def test_a_peer_storing_within_the_limit_keeps_its_association(start_node) -> None:
    # The control: a C-STORE every 0.3 s for twice the limit, on one association.
    node = start_node(network={"max_idle_association_s": IDLE_LIMIT_S})
    first = hand_dataset(seed=6)
    assoc = _established(node.port, calling="STEADY", sop_class=first.SOPClassUID)
    assert assoc.is_established
    stored: list[str] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 2 * IDLE_LIMIT_S:
            ds = hand_dataset(seed=100 + len(stored))
            response = assoc.send_c_store(ds)
            assert "Status" in response and response.Status == SUCCESS
            stored.append(ds.SOPInstanceUID)
            time.sleep(0.3)  # the sender's pace, not a wait for a condition
    finally:
        assoc.release()
    assert assoc.is_released and not assoc.is_aborted
    assert sorted(i.sop_instance_uid for i in rows(node, Instance)) == sorted(stored)


def test_a_peer_whose_stores_are_all_refused_loses_its_slot(start_node) -> None:
    # Only an accepted instance is progress: a resend with other content, refused every
    # 0.3 s under the reject policy, keeps the network timer running but not the slot.
    node = start_node(
        network={"max_associations": 1, "max_idle_association_s": IDLE_LIMIT_S},
        storage={"min_free_bytes": 0, "duplicates_by_caller": {"REFUSED": "reject"}},
    )
    first = hand_dataset(seed=7)
    assert store_datasets(node.port, [first], calling="REFUSED") == [SUCCESS]
    uids = {
        keyword: first.get(keyword)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
    }
    other = hand_dataset(seed=8, **uids)
    assoc = _established(node.port, calling="REFUSED", sop_class=other.SOPClassUID)
    assert assoc.is_established
    answered: list[int] = []
    while assoc.is_established and len(answered) < 200:
        response = assoc.send_c_store(other)
        if "Status" in response:
            answered.append(int(response.Status))
        time.sleep(0.3)  # the sender's pace, not a wait for a condition
    assert assoc.is_aborted
    assert answered and set(answered) == {int(DicomStatus.DUPLICATE_SOP_INSTANCE)}
    assert len(answered) < 3 * IDLE_LIMIT_S / 0.3  # aborted near the limit, not at 200
    ds = hand_dataset(seed=9)
    assert store_datasets(node.port, [ds], calling="STORER") == [SUCCESS]
