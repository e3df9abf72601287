"""The publisher thread: bursts of ids go out together, and the sweeper keeps its schedule."""

from __future__ import annotations

import json
import time
from pathlib import Path

from node_testing import node_settings, wait_until
from sqlalchemy import select

from dicom_node.db import Job, open_node_database
from dicom_node.db import jobs as job_rows
from dicom_node.db.instances import InstanceRecord, add_instance
from dicom_node.metrics import NodeMetrics
from dicom_node.queue.publisher import Publisher


def _open(settings):
    settings.data_dir.mkdir(parents=True)
    return open_node_database(settings)


def _queued_jobs(database, count: int) -> list[int]:
    with database.sessions.begin() as session:
        ids = []
        for index in range(count):
            record = InstanceRecord(
                sop_instance_uid=f"1.2.826.0.1.3680043.10.7.{index}",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
                study_instance_uid="1.2.826.0.1.3680043.10.7",
                series_instance_uid="1.2.826.0.1.3680043.10.7.1000",
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                path=f"/spool/{index}.dcm",
                size_bytes=1,
            )
            ids.append(job_rows.create_job(session, add_instance(session, record), "hand-pa", []))
    return ids


def _unpublished(database, job_ids: list[int]) -> int:
    with database.reader() as session:
        published = session.scalars(select(Job.published_at).where(Job.id.in_(job_ids)))
        return sum(1 for when in published if when is None)


def _published_job_ids(settings) -> list[int]:
    messages = sorted((settings.broker_queue_dir / "messages").glob("*.process.msg"))
    ids = []
    for path in messages:
        (job_id,) = json.loads(json.loads(path.read_text())["headers"]["argsrepr"])
        ids.append(job_id)
    return sorted(ids)


def test_a_burst_of_ids_is_published_once_and_marked(tmp_path: Path) -> None:
    # A long sweep interval: whatever goes out here was submitted, not swept.
    settings = node_settings(tmp_path / "data", broker={"sweep_interval_s": 60})
    database = _open(settings)
    job_ids = _queued_jobs(database, 12)
    metrics = NodeMetrics()
    publisher = Publisher(settings, database, metrics)
    publisher.start()
    try:
        wait_until(lambda: publisher.sweeps == 1, what="the start-up sweep")
        publisher.submit([], [])
        for start in range(0, 12, 3):
            publisher.submit(job_ids[start : start + 3], [])
        # Rows are marked after their messages are written.
        wait_until(lambda: _unpublished(database, job_ids) == 0, what="12 jobs marked")
        # Submitting ids again (a sweep may have raced) sends nothing twice.
        publisher.submit(job_ids[:2], [])
        time.sleep(0.5)
    finally:
        publisher.stop()
        database.dispose()
    assert _published_job_ids(settings) == sorted(job_ids)
    assert metrics.registry.get_sample_value("blsnode_published_total", {"kind": "job"}) == 12


def test_a_steady_stream_of_ids_does_not_starve_the_sweeper(tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "data", broker={"sweep_interval_s": 0.3})
    database = _open(settings)
    publisher = Publisher(settings, database)
    publisher.start()
    try:
        wait_until(lambda: publisher.sweeps == 1, what="the start-up sweep")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            # Ids without rows: published never, but each one keeps the thread busy.
            publisher.submit([10_000], [])
            time.sleep(0.03)
        assert publisher.sweeps >= 3
    finally:
        publisher.stop()
        database.dispose()
