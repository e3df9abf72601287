"""What ``blsnode status`` and the health endpoint report, from the database and broker."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from celery.exceptions import CeleryError
from kombu.exceptions import KombuError

from dicom_node.db import Database
from dicom_node.db.dispatches import dispatch_counts
from dicom_node.db.instances import count_instances, count_studies_and_series
from dicom_node.db.jobs import job_counts
from dicom_node.db.migrate import current_revision
from dicom_node.queue.broker import TaskSender
from dicom_node.settings import Settings, mask_url


def disk_free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    current = Path(path).absolute()
    while not current.exists():
        if current.parent == current:
            raise ValueError(f"no existing parent of {path}")
        current = current.parent
    return shutil.disk_usage(current).free


def broker_status(sender: TaskSender | None) -> dict[str, Any]:
    """Queue depths, or why the broker could not tell them."""
    if sender is None:
        return {"reachable": False, "error": "no broker client", "queues": None}
    try:
        depths = sender.queue_depths()
    except (KombuError, CeleryError, OSError) as error:
        return {"reachable": False, "error": str(error), "queues": None}
    return {"reachable": True, "error": None, "queues": depths}


def node_status(
    settings: Settings, database: Database, sender: TaskSender | None
) -> dict[str, Any]:
    """Counts of instances, jobs and dispatches by state, free disk, queue depths."""
    with database.reader() as session:
        instances = count_instances(session)
        studies, series = count_studies_and_series(session)
        jobs = job_counts(session)
        dispatches = dispatch_counts(session)
    free = disk_free_bytes(settings.spool_dir)
    broker = broker_status(sender)
    return {
        "instances": instances,
        "studies": studies,
        "series": series,
        "jobs": jobs,
        "dispatches": dispatches,
        "disk_free_bytes": free,
        "min_free_bytes": settings.storage.min_free_bytes,
        "accepting_instances": free >= settings.storage.min_free_bytes,
        "queues": broker["queues"],
        "broker": {
            "url": mask_url(settings.broker_url),
            "reachable": broker["reachable"],
            "error": broker["error"],
        },
        "database": {
            "url": mask_url(settings.database_url),
            "revision": current_revision(database.engine),
        },
    }


def health_report(
    status: dict[str, Any], listener_alive: bool, refusing: str | None = None
) -> tuple[bool, dict[str, Any]]:
    """Healthy means: the listener runs and instances can be stored.

    ``refusing`` names why the last C-STOREs were refused for want of resources (a
    full disk under a guard of 0, a failing database) until one is stored again. A
    broker that is down makes the node degraded, not unhealthy: nothing is lost, the
    sweeper publishes the work when it returns.
    """
    checks = {
        "listener": "ok" if listener_alive else "down",
        "database": "ok",
        "disk": "ok" if status["accepting_instances"] else "below_guard",
        "broker": "ok" if status["broker"]["reachable"] else "unreachable",
        "storing": "ok" if refusing is None else f"refusing ({refusing})",
    }
    healthy = listener_alive and status["accepting_instances"] and refusing is None
    state = "ok" if healthy and checks["broker"] == "ok" else "degraded" if healthy else "failing"
    return healthy, {"status": state, "checks": checks}
