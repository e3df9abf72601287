"""Faults a hospital will see, each with nothing lost and nothing duplicated.

Counted by SOP Instance UID in the node's database and spool, and at the destination
(a dcmtk ``storescp`` that writes every copy it receives to its own file):

- ``blsnode serve`` SIGKILLed in the middle of a burst and restarted; the senders resend
  what was not acknowledged;
- ``blsnode serve`` SIGKILLed with acknowledged instances whose rows still wait to be
  committed (spooled and answered, not booked): the restart books each from the spool;
- Redis (no persistence) restarted while jobs and dispatches wait in it;
- a destination down for a while and back;
- the disk guard refusing (0xA700) until space returns, then the sender's retry.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from e2e_node import ServedNode, destination, running_worker, served_node
from loopback import free_port, wait_until
from node_testing import echo_status, hand_dataset, save, store_datasets
from peers import running_redis, running_storescp
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

from dicom_node.db import DispatchState, JobState
from dicom_node.dimse_status import DicomStatus

pytestmark = pytest.mark.e2e

SUCCESS = int(DicomStatus.SUCCESS)
OUT_OF_RESOURCES = int(DicomStatus.OUT_OF_RESOURCES)


def _hands(folder: Path, count: int, blank: bool = False) -> dict[str, Path]:
    """Small DX hand files by SOP Instance UID: random pixels, or ``blank`` (one value).

    A blank image fails its job quickly and for a known reason: the tests that need
    processed jobs, but not their results, use them.
    """
    files = {}
    for number in range(count):
        pixels = {"PixelData": bytes(64 * 64 * 2)} if blank else {}
        dataset = hand_dataset(rows=64, columns=64, seed=number, **pixels)
        files[str(dataset.SOPInstanceUID)] = save(dataset, folder / f"{number:03d}.dcm")
    return files


def _send_until_cut(port: int, files: dict[str, Path], acknowledged: list[str]) -> None:
    """Send ``files`` on one association, recording each success, until the node goes away."""
    ae = AE(ae_title="MODALITY")
    # pynetdicom waits out the DIMSE timeout for the response the dead node never sends.
    ae.dimse_timeout = 3
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1.1", ExplicitVRLittleEndian)
    association = ae.associate("127.0.0.1", port, ae_title="BLSNODE")
    if not association.is_established:
        return
    for uid, path in files.items():
        if not association.is_established:
            return
        try:
            response = association.send_c_store(path)
        except RuntimeError:
            # pynetdicom: the association ended between the check and the send. The
            # instance counts as not acknowledged, which is what it is.
            return
        if response.get("Status") == SUCCESS:
            acknowledged.append(uid)
    association.release()


def test_node_killed_mid_burst_keeps_every_acknowledged_instance(tmp_path: Path) -> None:
    files = _hands(tmp_path / "modality", 80)
    uids = list(files)
    halves = [dict(list(files.items())[:40]), dict(list(files.items())[40:])]
    node = ServedNode(tmp_path / "node").start()
    try:
        acknowledged: list[str] = []
        senders = [
            threading.Thread(target=_send_until_cut, args=(node.port, half, acknowledged))
            for half in halves
        ]
        for sender in senders:
            sender.start()
        wait_until(lambda: len(acknowledged) >= 20, timeout_s=60, what="20 acknowledged")
        node.serve.kill()
        for sender in senders:
            sender.join(60)
        assert 20 <= len(acknowledged) < len(files), "the kill did not cut the burst"

        node.start()
        # Every acknowledged instance is there before anyone resends anything.
        booked = node.instance_uids()
        assert set(acknowledged) <= set(booked)
        # The modalities resend what they did not see acknowledged.
        rest = [files[uid] for uid in uids if uid not in acknowledged]
        assert store_datasets(node.port, rest) == [SUCCESS] * len(rest)

        booked = node.instance_uids()
        assert set(booked) == set(uids) and max(booked.values()) == 1
        assert sorted(path.stem for path in node.spooled_files()) == sorted(uids)
        jobs = node.jobs()
        assert len(jobs) == len({job.instance_id for job in jobs}) == len(uids)
        assert node.stop() == 0
    finally:
        node.stop()


def test_node_killed_before_its_rows_are_committed_books_them_at_restart(
    tmp_path: Path, model_registry: Path
) -> None:
    files = _hands(tmp_path / "modality", 12, blank=True)
    # An hour's group commit: no row is committed until the association is released.
    first = ServedNode(tmp_path / "node", database={"group_commit_s": 3600.0}).start()
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.1.1", ExplicitVRLittleEndian)
        association = ae.associate("127.0.0.1", first.port, ae_title="BLSNODE")
        assert association.is_established
        statuses = [association.send_c_store(path).get("Status") for path in files.values()]
        assert statuses == [SUCCESS] * len(files)
        # Acknowledged, durable in the spool, and not one row: the window under test.
        assert len(first.spooled_files()) == len(files)
        assert first.instance_uids() == {}
        first.serve.kill()
        association.abort()
    finally:
        first.stop()

    with served_node(
        tmp_path / "node",
        worker={"embedded": True},
        models={"registry_dir": str(model_registry)},
    ) as second:
        # Booked from the spool before the listener accepted anyone.
        assert second.instance_uids() == dict.fromkeys(files, 1)
        wait_until(
            lambda: (
                len(second.jobs()) == len(files)
                and all(job.state is JobState.FAILED for job in second.jobs())
            ),
            timeout_s=120,
            what="every re-booked instance processed",
        )
        for job in second.jobs():
            assert job.reason and job.reason.startswith("blank image"), job.reason
        # The modality resends everything (it saw no release): nothing is booked twice.
        assert store_datasets(second.port, list(files.values())) == [SUCCESS] * len(files)
        assert second.instance_uids() == dict.fromkeys(files, 1)
        assert len({job.instance_id for job in second.jobs()}) == len(files)


def test_redis_restart_loses_no_queued_job_or_dispatch(
    tmp_path: Path, model_registry: Path
) -> None:
    files = _hands(tmp_path / "modality", 8, blank=True)
    redis_port = free_port()
    with ExitStack() as stack:
        viewer = stack.enter_context(running_storescp(tmp_path / "viewer"))
        first_redis = stack.enter_context(ExitStack())
        url = first_redis.enter_context(running_redis(tmp_path / "redis", port=redis_port))
        node = stack.enter_context(
            served_node(
                tmp_path / "node",
                broker={"url": url, "sweep_interval_s": 0.2, "republish_after_s": 2.0},
                models={"registry_dir": str(model_registry)},
                destinations=[destination("viewer", viewer.ae_title, viewer.port, "originals")],
            )
        )
        assert store_datasets(node.port, list(files.values())) == [SUCCESS] * len(files)
        queues = redis.Redis.from_url(url)
        wait_until(
            # (More if the sweeper already republished some: harmless, tasks are idempotent.)
            lambda: queues.llen("process") >= len(files) and queues.llen("dispatch") >= len(files),
            what="every job and dispatch waiting in Redis",
        )
        queues.close()

        first_redis.close()  # Redis goes down and comes back empty: its messages are lost
        wait_until(
            lambda: node.health()[1].get("checks", {}).get("broker") == "unreachable",
            what="the node to notice the broker is down",
        )
        assert node.health()[0] == 200  # degraded, still accepting
        stack.enter_context(running_redis(tmp_path / "redis", port=redis_port))
        stack.enter_context(running_worker(node, "--queues", "process,dispatch"))

        wait_until(
            lambda: (
                all(job.state is JobState.FAILED for job in node.jobs())
                and all(d.state is DispatchState.SENT for d in node.dispatches())
            ),
            timeout_s=120,
            what="every job processed and every original forwarded",
        )
        for job in node.jobs():
            assert job.reason and job.reason.startswith("blank image"), job.reason
        assert viewer.received_counts() == dict.fromkeys(files, 1)


def test_destination_down_for_a_while_receives_everything_once(
    tmp_path: Path, model_registry: Path
) -> None:
    files = _hands(tmp_path / "modality", 6)
    viewer_port = free_port()
    with served_node(
        tmp_path / "node",
        worker={"embedded": True},  # the embedded default: serve's own worker
        models={"registry_dir": str(model_registry)},
        destinations=[destination("viewer", "VIEWER", viewer_port, "originals")],
        rules=[{"name": "forward-hands", "process": False}],
        dispatch={"backoff_initial_s": 0.5, "backoff_max_s": 1.0, "max_attempts": 100},
    ) as node:
        assert store_datasets(node.port, list(files.values())) == [SUCCESS] * len(files)
        wait_until(
            lambda: (
                len(node.dispatches()) == len(files)
                and all(d.attempts >= 2 for d in node.dispatches())
            ),
            timeout_s=120,
            what="every dispatch to fail twice",
        )
        # Retrying (or in the middle of an attempt); none sent, none given up.
        assert all(
            d.state in {DispatchState.PENDING, DispatchState.SENDING} for d in node.dispatches()
        )

        with running_storescp(tmp_path / "viewer", port=viewer_port) as viewer:
            wait_until(
                lambda: all(d.state is DispatchState.SENT for d in node.dispatches()),
                timeout_s=120,  # backoff at most 1 s; the margin is for a loaded CI machine
                what="every dispatch sent once the destination is back",
            )
            assert viewer.received_counts() == dict.fromkeys(files, 1)
        assert node.jobs() == []


def test_disk_guard_refuses_until_space_returns(tmp_path: Path) -> None:
    files = _hands(tmp_path / "modality", 5)
    # The guard sits 1 GiB under today's free space; 2 GiB of ballast crosses it. The
    # margins absorb what other programs write or delete on the same disk meanwhile.
    guard = shutil.disk_usage(tmp_path).free - (1 << 30)
    with served_node(tmp_path / "node", storage={"min_free_bytes": guard}) as node:
        ballast = tmp_path / "ballast"
        descriptor = os.open(ballast, os.O_CREAT | os.O_WRONLY)
        try:
            os.posix_fallocate(descriptor, 0, 2 << 30)
            statuses = store_datasets(node.port, list(files.values()))
            assert statuses == [OUT_OF_RESOURCES] * len(files)
            code, report = node.health()
            assert code == 503 and report["checks"]["disk"] == "below_guard"
            assert echo_status(node.port) == SUCCESS
            assert node.instance_uids() == {} and node.spooled_files() == []
        finally:
            os.close(descriptor)
            ballast.unlink()
        wait_until(lambda: node.health()[0] == 200, what="the guard to let instances in")
        # The modality retries later, and now everything is stored.
        assert store_datasets(node.port, list(files.values())) == [SUCCESS] * len(files)
        assert set(node.instance_uids()) == set(files)
        assert len(node.spooled_files()) == len(files)
