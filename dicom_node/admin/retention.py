"""``blsnode purge``: delete finished instances, outputs and bookkeeping past retention."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dicom_node.db import Database
from dicom_node.db import retention as retention_rows
from dicom_node.db.types import utc_now
from dicom_node.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 500


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _remove_file(path: Path, data_dir: Path) -> int | None:
    """Delete one file of ours and its emptied folders; the bytes freed, ``None`` if kept."""
    if not _inside(path, data_dir):
        logger.warning("not deleting %s: outside the data directory", path)
        return None
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    folder = path.parent
    while folder != data_dir and _inside(folder, data_dir) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
    return size


def purge(
    settings: Settings,
    database: Database,
    older_than_days: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Delete instances received more than the retention period ago whose work is done.

    Rows go first (committed per batch), files after: an interrupted purge leaves at most
    unreferenced files, never rows that point at nothing.
    """
    days = older_than_days if older_than_days is not None else settings.storage.retention_days
    if days is None:
        raise ValueError("no retention period: set storage.retention_days or --older-than-days")
    if days < 0:
        raise ValueError(f"older_than_days must be >= 0, not {days}")
    cutoff = (now or utc_now()) - timedelta(days=days)
    instances = files = freed = 0
    if dry_run:
        with database.reader() as session:
            instances = len(retention_rows.purgeable_instances(session, cutoff, limit=10**9))
    else:
        while True:
            with database.sessions.begin() as session:
                ids = retention_rows.purgeable_instances(session, cutoff, limit=BATCH)
                paths = retention_rows.delete_instances(session, ids)
            if not ids:
                break
            instances += len(ids)
            for path in paths:
                removed = _remove_file(Path(path), settings.data_dir)
                if removed is not None:
                    files += 1
                    freed += removed
    logger.info("purge: %d instances older than %d days", instances, days)
    return {
        "cutoff": cutoff.isoformat(),
        "older_than_days": days,
        "dry_run": dry_run,
        "instances": instances,
        "files_removed": files,
        "bytes_freed": freed,
    }
