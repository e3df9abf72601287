"""The listener over real loopback associations: storing, duplicates, access, disk guard."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
from pathlib import Path

from loopback import free_port, system_program, wait_until
from node_testing import CT_IMAGE, echo_status, hand_dataset, save, store_datasets
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification
from sqlalchemy import select

from dicom_node.db import Dispatch, Instance, Job, JobState
from dicom_node.dimse_status import DicomStatus

SUCCESS = int(DicomStatus.SUCCESS)


def rows(running, model) -> list:
    with running.database.sessions() as session:
        return list(session.scalars(select(model)))


def queued_messages(running, queue: str) -> list[dict]:
    folder = running.settings.broker_queue_dir / "messages"
    return [json.loads(path.read_text()) for path in sorted(folder.glob(f"*.{queue}.msg"))]


def test_echo_from_pynetdicom_and_dcmtk(start_node) -> None:
    node = start_node()
    assert echo_status(node.port) == SUCCESS
    done = subprocess.run(
        [system_program("echoscu"), "-aec", "BLSNODE", "127.0.0.1", str(node.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_store_spools_exact_bytes_books_and_queues_a_job(start_node, tmp_path: Path) -> None:
    node = start_node()
    ds = hand_dataset()
    path = save(ds, tmp_path / "hand.dcm")
    done = subprocess.run(
        [
            system_program("storescu"),
            "-aet",
            "MODALITY",
            "-aec",
            "BLSNODE",
            "127.0.0.1",
            str(node.port),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    (instance,) = rows(node, Instance)
    assert instance.sop_instance_uid == ds.SOPInstanceUID
    assert instance.calling_ae_title == "MODALITY"
    spooled = Path(instance.path)
    assert spooled == (
        node.settings.spool_dir
        / ds.StudyInstanceUID
        / ds.SeriesInstanceUID
        / f"{ds.SOPInstanceUID}.dcm"
    )
    # The data set is stored byte for byte as it was sent; only the file meta is ours.
    sent = dcmread(path)
    stored = dcmread(spooled)
    assert stored.file_meta.SourceApplicationEntityTitle == "MODALITY"
    assert stored.PixelData == sent.PixelData
    assert stored.PatientName == "TEST^HAND"
    assert instance.size_bytes == spooled.stat().st_size
    assert list((node.settings.spool_dir / ".incoming").iterdir()) == []
    (job,) = rows(node, Job)
    assert job.state is JobState.QUEUED
    assert job.instance_id == instance.id
    assert job.rule == "hand-pa"
    wait_until(lambda: rows(node, Job)[0].published_at is not None, what="job published")
    (message,) = queued_messages(node, "process")
    assert message["headers"]["task"] == "jobs.process"
    assert message["headers"]["argsrepr"] == f"[{job.id}]"


def test_other_storage_classes_are_stored_but_not_processed(start_node) -> None:
    node = start_node()
    ct = hand_dataset(SOPClassUID=CT_IMAGE, Modality="CT", BodyPartExamined="CHEST")
    ct.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    sc = hand_dataset(SOPClassUID="1.2.840.10008.5.1.4.1.1.7", Modality="OT")
    sc.file_meta.MediaStorageSOPClassUID = sc.SOPClassUID
    lateral = hand_dataset(ViewPosition="LAT")
    assert store_datasets(node.port, [ct, sc, lateral]) == [SUCCESS] * 3
    assert len(rows(node, Instance)) == 3
    assert rows(node, Job) == []


def test_a_resend_changes_nothing(start_node) -> None:
    node = start_node()
    ds = hand_dataset()
    assert store_datasets(node.port, [ds]) == [SUCCESS]
    (instance,) = rows(node, Instance)
    before = Path(instance.path).stat()
    changed = hand_dataset(
        seed=1,
        SOPInstanceUID=ds.SOPInstanceUID,
        StudyInstanceUID=ds.StudyInstanceUID,
        SeriesInstanceUID=ds.SeriesInstanceUID,
    )
    # Identical: success; other content: kept out with a warning (storage.duplicates).
    assert store_datasets(node.port, [ds, changed]) == [
        SUCCESS,
        int(DicomStatus.ELEMENTS_DISCARDED),
    ]
    assert [i.id for i in rows(node, Instance)] == [instance.id]
    after = Path(instance.path).stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert dcmread(instance.path).PixelData == ds.PixelData
    assert len(rows(node, Job)) == 1


def test_concurrent_copies_of_one_instance_store_once(start_node) -> None:
    node = start_node()
    ds = hand_dataset()
    results: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda: results.append(store_datasets(node.port, [ds])))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[SUCCESS]] * 4
    assert len(rows(node, Instance)) == 1
    assert len(rows(node, Job)) == 1


def test_allow_list_rejects_other_callers_and_hosts(start_node, tmp_path: Path) -> None:
    node = start_node(
        network={
            "allowed_callers": [
                {"ae_title": "MODALITY"},
                {"ae_title": "PINNED", "host": "10.255.0.1"},
                {"ae_title": "LOCAL", "host": "127.0.0.1"},
            ]
        }
    )
    assert echo_status(node.port, calling="MODALITY") == SUCCESS
    assert echo_status(node.port, calling="LOCAL") == SUCCESS
    assert echo_status(node.port, calling="INTRUDER") is None
    assert echo_status(node.port, calling="PINNED") is None
    ae = AE(ae_title="INTRUDER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="BLSNODE")
    assert assoc.is_rejected
    assert (assoc.acceptor.primitive.result, assoc.acceptor.primitive.diagnostic) == (0x01, 0x03)
    done = subprocess.run(
        [system_program("storescu"), "-aet", "INTRUDER", "-aec", "BLSNODE", "127.0.0.1",
         str(node.port), str(save(hand_dataset(), tmp_path / "x.dcm"))],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Calling AE Title Not Recognized" in done.stderr + done.stdout
    assert rows(node, Instance) == []
    assert echo_status(node.port, calling="MODALITY") == SUCCESS


def test_called_ae_title_is_checked(start_node) -> None:
    node = start_node()
    assert echo_status(node.port, called="SOMEONE") is None
    assert echo_status(node.port, called="BLSNODE") == SUCCESS


def _assert_the_only_slot_is_taken_by_one_caller(port: int) -> None:
    """With ``max_associations = 1``: a second caller is refused while a first one holds on."""
    ae = AE(ae_title="FIRST")
    ae.add_requested_context(Verification)
    first = ae.associate("127.0.0.1", port, ae_title="BLSNODE")
    assert first.is_established
    try:
        assert echo_status(port, calling="SECOND") is None
    finally:
        first.release()


def test_association_limit(start_node) -> None:
    node = start_node(network={"max_associations": 1})
    _assert_the_only_slot_is_taken_by_one_caller(node.port)
    wait_until(lambda: echo_status(node.port) == SUCCESS, what="a free association slot")


def test_tcp_probes_do_not_take_association_slots(start_node) -> None:
    # Port scans and load-balancer TCP checks connect and close (or hold the connection)
    # without a request; pynetdicom keeps each one for the ACSE timeout (30 s here).
    node = start_node(network={"max_associations": 1, "acse_timeout_s": 30})
    held = socket.create_connection(("127.0.0.1", node.port))
    try:
        for _ in range(3):
            socket.create_connection(("127.0.0.1", node.port)).close()
        assert echo_status(node.port) == SUCCESS
        # The limit still holds for callers that ask for an association.
        _assert_the_only_slot_is_taken_by_one_caller(node.port)
    finally:
        held.close()


def test_a_peer_stalled_in_the_middle_of_a_pdu_is_disconnected(start_node) -> None:
    node = start_node(network={"network_timeout_s": 1, "acse_timeout_s": 1})
    # An A-ASSOCIATE-RQ header announcing 200 bytes, then silence.
    stalled = socket.create_connection(("127.0.0.1", node.port))
    try:
        stalled.sendall(bytes([0x01, 0x00, 0x00, 0x00, 0x00, 0xC8]))
        assert echo_status(node.port) == SUCCESS
        stalled.settimeout(20)
        # Closed by the node (pynetdicom may send an A-ABORT first), not held forever.
        while stalled.recv(1024):
            pass
    finally:
        stalled.close()
    wait_until(lambda: len(node.node.listener.ae.active_associations) == 0, what="no thread left")


def test_a_pdu_longer_than_the_maximum_is_refused_before_it_is_read(start_node) -> None:
    node = start_node(network={"acse_timeout_s": 1})
    closed_by_node = False
    with socket.create_connection(("127.0.0.1", node.port)) as peer:
        peer.settimeout(10)
        # An A-ASSOCIATE-RQ announcing 64 MiB, then its "body" streamed: the listener
        # used to read (and hold in memory) all of it.
        peer.sendall(struct.pack(">BBL", 0x01, 0x00, 64 << 20))
        try:
            for _ in range(64):
                peer.sendall(bytes(1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            closed_by_node = True
    assert closed_by_node, "the node read 64 MiB of an oversized PDU"
    assert echo_status(node.port) == SUCCESS
    wait_until(lambda: len(node.node.listener.ae.active_associations) == 0, what="no thread left")


def test_disk_guard_refuses_and_leaves_nothing(start_node) -> None:
    node = start_node(storage={"min_free_bytes": 1 << 60})
    assert store_datasets(node.port, [hand_dataset()]) == [int(DicomStatus.OUT_OF_RESOURCES)]
    assert rows(node, Instance) == []
    spool = node.settings.spool_dir
    assert [p for p in spool.rglob("*") if p.is_file() and p.name != ".reconciled"] == []
    assert echo_status(node.port) == SUCCESS


def test_our_own_outputs_are_stored_but_never_processed(start_node) -> None:
    node = start_node(
        destinations=[
            {"name": "VIEWER", "ae_title": "V", "host": "127.0.0.1", "port": 1, "send": "all"}
        ]
    )
    ours = hand_dataset(Manufacturer="blsgan-node")
    assert store_datasets(node.port, [ours]) == [SUCCESS]
    (instance,) = rows(node, Instance)
    assert instance.own_output
    assert rows(node, Job) == []
    assert rows(node, Dispatch) == []


def test_originals_forwarded_by_rules_become_dispatches(start_node) -> None:
    node = start_node(
        destinations=[
            {
                "name": "ARCHIVE",
                "ae_title": "ARCHIVE",
                "host": "127.0.0.1",
                "port": 1,
                "send": "originals",
            },
            {"name": "PACS", "ae_title": "PACS", "host": "127.0.0.1", "port": 1, "send": "results"},
        ]
    )
    ds = hand_dataset()
    assert store_datasets(node.port, [ds]) == [SUCCESS]
    (dispatch,) = rows(node, Dispatch)
    assert dispatch.destination == "ARCHIVE"
    assert dispatch.instance_id == rows(node, Instance)[0].id
    (job,) = rows(node, Job)
    assert job.result_destinations == ["PACS"]
    wait_until(lambda: rows(node, Dispatch)[0].published_at is not None, what="dispatch published")
    (message,) = queued_messages(node, "dispatch")
    assert message["headers"]["task"] == "jobs.dispatch"
    assert message["headers"]["argsrepr"] == f"[{dispatch.id}]"


def test_instances_are_grouped_by_study_and_series(start_node) -> None:
    node = start_node()
    first = hand_dataset()
    same_series = hand_dataset(
        StudyInstanceUID=first.StudyInstanceUID, SeriesInstanceUID=first.SeriesInstanceUID
    )
    other_series = hand_dataset(StudyInstanceUID=first.StudyInstanceUID)
    assert store_datasets(node.port, [first, same_series, other_series]) == [SUCCESS] * 3
    instances = rows(node, Instance)
    assert len({i.series_id for i in instances}) == 2
    with node.database.sessions() as session:
        studies = {session.get(Instance, i.id).series.study.study_instance_uid for i in instances}
    assert studies == {first.StudyInstanceUID}


def test_broker_down_loses_nothing_and_the_sweeper_publishes_later(
    start_node, tmp_path: Path
) -> None:
    import redis

    redis_port = free_port()
    node = start_node(
        broker={
            "url": f"redis://127.0.0.1:{redis_port}/0",
            "sweep_interval_s": 0.2,
            "connect_timeout_s": 0.5,
        }
    )
    assert store_datasets(node.port, [hand_dataset(), hand_dataset(seed=2)]) == [SUCCESS, SUCCESS]
    jobs = rows(node, Job)
    assert len(jobs) == 2
    assert all(job.published_at is None and job.state is JobState.QUEUED for job in jobs)
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: all(job.published_at is not None for job in rows(node, Job)),
            what="sweeper publishing",
        )
        client = redis.Redis(port=redis_port)
        assert client.llen("process") == 2
        bodies = [json.loads(raw) for raw in client.lrange("process", 0, -1)]
        assert sorted(body["headers"]["argsrepr"] for body in bodies) == sorted(
            f"[{j.id}]" for j in jobs
        )
        status = node.node.status()
        assert status["queues"] == {"process": 2, "dispatch": 0}
    finally:
        server.terminate()
        server.wait(10)


def test_listener_books_on_each_database(start_node, database_url: str) -> None:
    """The whole C-STORE path, with concurrent senders, on SQLite and on PostgreSQL."""
    node = start_node(database={"url": database_url}, network={"max_associations": 8})
    series = hand_dataset()
    same_series = [
        hand_dataset(
            seed=n,
            StudyInstanceUID=series.StudyInstanceUID,
            SeriesInstanceUID=series.SeriesInstanceUID,
        )
        for n in range(12)
    ]
    results: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda part=part: results.append(store_datasets(node.port, part)))
        for part in (same_series[0:4], same_series[4:8], same_series[8:12], same_series[0:4])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[SUCCESS] * 4] * 4
    instances = rows(node, Instance)
    assert len(instances) == 12
    assert len({i.series_id for i in instances}) == 1
    assert len(rows(node, Job)) == 12
    assert node.node.status()["database"]["url"].startswith(database_url.split(":")[0])
