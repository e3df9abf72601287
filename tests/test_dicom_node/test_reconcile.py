"""After a power cut, spooled files without rows are booked again at start-up."""

from __future__ import annotations

import os
import time
from pathlib import Path

from loopback import wait_until
from node_testing import hand_dataset, node_settings, store_datasets
from sqlalchemy import delete, select

from blsnode.node import Node
from dicom_node.db import Instance, Job, JobState, open_node_database
from dicom_node.receive.booking import Bookkeeper
from dicom_node.receive.ingest import Ingestor
from dicom_node.receive.reconcile import reconcile_spool
from dicom_node.receive.spool import Spool


def _forget(settings, sop_instance_uid: str) -> None:
    """What a power cut with SQLite's synchronous=NORMAL can do: the last commit is gone."""
    database = open_node_database(settings)
    with database.sessions.begin() as session:
        instance = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
        ).one()
        session.execute(delete(Job).where(Job.instance_id == instance.id))
        session.execute(delete(Instance).where(Instance.id == instance.id))
    database.dispose()


def test_restart_books_orphaned_spool_files(tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "data")
    first = Node(settings)
    first.start()
    kept, lost = hand_dataset(seed=1), hand_dataset(seed=2)
    try:
        assert store_datasets(settings.network.port, [kept, lost]) == [0, 0]
    finally:
        first.stop()
    _forget(settings, lost.SOPInstanceUID)
    # Temporary files of writes that died: beside their target (and, from older
    # versions, in .incoming); only those older than an hour are removed.
    incoming = settings.spool_dir / ".incoming"
    series = next(settings.spool_dir.glob("*/*/"))
    stale, fresh = incoming / "old.part", incoming / "new.part"
    stale_beside, fresh_beside = series / ".blsnode-1-1.part", series / ".blsnode-1-2.part"
    two_hours_ago = time.time() - 7200
    for part in (stale, fresh, stale_beside, fresh_beside):
        part.write_bytes(b"half")
    for part in (stale, stale_beside):
        os.utime(part, (two_hours_ago, two_hours_ago))

    second = Node(settings)
    second.start()
    try:
        assert second.database is not None
        with second.database.reader() as session:
            uids = set(session.scalars(select(Instance.sop_instance_uid)))
            job = session.scalars(
                select(Job).join(Instance).where(Instance.sop_instance_uid == lost.SOPInstanceUID)
            ).one()
        assert uids == {kept.SOPInstanceUID, lost.SOPInstanceUID}
        assert job.state is JobState.QUEUED

        def published() -> bool:
            with second.database.reader() as session:  # type: ignore[union-attr]
                return session.get(Job, job.id).published_at is not None

        wait_until(published, what="re-booked job published")
    finally:
        second.stop()
    assert not stale.exists() and not stale_beside.exists()
    assert fresh.exists() and fresh_beside.exists()


def test_reconciliation_skips_old_series_and_reports_unreadable_files(tmp_path: Path) -> None:
    settings = node_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    database = open_node_database(settings)
    spool = Spool(settings.spool_dir, 0)
    ingestor = Ingestor(settings, database, spool, Bookkeeper(settings, database))
    garbage = spool.root / "1.2" / "3.4" / "5.6.dcm"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"\x00" * 200)
    first = reconcile_spool(spool, database, ingestor)
    assert (first.scanned, first.booked, first.unreadable) == (1, [], [str(garbage)])
    assert garbage.exists()
    hours_ago = time.time() - 3 * 3600
    os.utime(garbage.parent, (hours_ago, hours_ago))
    second = reconcile_spool(spool, database, ingestor)
    assert second.scanned == 0
    database.dispose()
