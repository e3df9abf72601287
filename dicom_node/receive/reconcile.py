"""Start-up reconciliation of the spool with the bookkeeping.

The spool file is fsynced before a C-STORE is answered; the Instance row is committed
too, but with SQLite's ``synchronous=NORMAL`` (the default) the last commits before a
power cut can be lost. The file is then the record: at start-up every spooled file
without a row is booked again (rules applied, jobs and dispatches created), so nothing
that was acknowledged is forgotten. Only series folders changed since the previous
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
    job_ids: list[int] = field(default_factory=list)
    dispatch_ids: list[int] = field(default_factory=list)
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
    for path in batch:
        if path.stem in known:
            continue
        result = ingestor.book_spooled(path)
        if result.outcome == "stored" and result.instance_id is not None:
            report.booked.append(result.instance_id)
            if result.job_id is not None:
                report.job_ids.append(result.job_id)
            report.dispatch_ids.extend(result.dispatch_ids)
        elif not result.status.is_success:
            logger.warning("spooled file not booked: %s", result.reason, extra={"path": str(path)})
            report.unreadable.append(str(path))
