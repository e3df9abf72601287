"""Start-up reconciliation of the spool with the bookkeeping.

The spool is the record: a C-STORE is answered once its file is durable, and its rows
are committed shortly after by the ``Bookkeeper`` (``receive.booking``). A process killed
in between, or a power cut that takes the last SQLite commits (``synchronous=NORMAL``),
leaves spooled files without rows. At start-up, before the listener accepts anyone,
every such file is booked from its own header (rules applied, jobs and dispatches
created), so nothing that was acknowledged is forgotten and nothing is booked twice (a
file whose UID has a row is skipped). Only series folders changed since the previous
reconciliation (minus a margin) are looked at, so a large spool is not rescanned.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from dicom_node.db import Database
from dicom_node.db.instances import known_uids
from dicom_node.receive.booking import Spooled
from dicom_node.receive.ingest import Ingestor
from dicom_node.receive.spool import Spool

logger = logging.getLogger(__name__)

MARKER = ".reconciled"
# Series folders modified this long before the last reconciliation are looked at again.
MARGIN = timedelta(hours=1)
# A temporary file this old belongs to a write that died with its process.
STALE_PART_S = 3600.0


@dataclass
class ReconcileReport:
    """What a reconciliation found."""

    scanned: int = 0
    booked: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    stale_parts_removed: int = 0


def reconcile_spool(spool: Spool, database: Database, ingestor: Ingestor) -> ReconcileReport:
    """Book spooled files that have no row; remove stale temporary files."""
    marker = spool.root / MARKER
    started = time.time()
    since = marker.stat().st_mtime - MARGIN.total_seconds() if marker.exists() else 0.0
    report = ReconcileReport(stale_parts_removed=spool.remove_stale_parts(STALE_PART_S, since))
    batch: list[Path] = []
    for path in spool.spooled_files(since):
        batch.append(path)
        if len(batch) == 500:
            _book_missing(batch, database, ingestor, report)
            batch = []
    _book_missing(batch, database, ingestor, report)
    # Stamped with the start time: anything written during the scan is seen next time.
    marker.touch()
    os.utime(marker, (started, started))
    if report.booked or report.unreadable:
        logger.warning(
            "spool reconciled: %d files without a row booked, %d unreadable",
            len(report.booked),
            len(report.unreadable),
        )
    return report


def _book_missing(
    batch: list[Path], database: Database, ingestor: Ingestor, report: ReconcileReport
) -> None:
    if not batch:
        return
    report.scanned += len(batch)
    with database.reader() as session:
        known = known_uids(session, [path.stem for path in batch])
    missing: list[Spooled] = []
    for path in batch:
        if path.stem in known:
            continue
        item = ingestor.spooled_item(path)
        if isinstance(item, Spooled):
            missing.append(item)
        else:
            logger.warning("spooled file not booked: %s", item.reason, extra={"path": str(path)})
            report.unreadable.append(str(path))
    # Its jobs and dispatches are handed to the publisher by the bookkeeper.
    report.booked.extend(ingestor.bookkeeper.book(missing).instance_ids)
