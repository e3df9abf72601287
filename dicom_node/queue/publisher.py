"""Publishing job and dispatch ids to the broker, off the C-STORE path, and the sweeper.

The listener commits rows and hands their ids to ``Publisher.submit``, which only puts
them on an in-memory queue, so a slow or dead broker never delays a C-STORE response.
One thread publishes them, marks them published, and every ``sweep_interval_s`` sweeps
the database for work that was never published (broker down, process killed), whose
message may be lost, or whose dispatch is due for its next attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.exceptions import CeleryError
from kombu.exceptions import KombuError
from sqlalchemy.exc import SQLAlchemyError

from dicom_node.db import Database
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.types import utc_now
from dicom_node.metrics import NodeMetrics
from dicom_node.queue.broker import TaskSender
from dicom_node.settings import Settings

logger = logging.getLogger(__name__)

# How long the publisher gathers ids before it publishes them (a job waits this much more).
BATCH_WINDOW_S = 0.1
# Ids per publishing round (one database query and one update each).
PUBLISH_CHUNK = 500

# What a failed publish can raise: the broker (kombu/celery), the network, our probe.
PUBLISH_ERRORS = (KombuError, CeleryError, OSError)


@dataclass
class PublishReport:
    """What one publishing round did."""

    jobs: list[int] = field(default_factory=list)
    dispatches: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    requeued_jobs: list[int] = field(default_factory=list)
    lost_jobs: list[int] = field(default_factory=list)
    failed: int = 0


def publish_ids(
    sender: TaskSender,
    database: Database,
    job_ids: list[int],
    dispatch_ids: list[int],
    now: datetime | None = None,
) -> PublishReport:
    """Send ids to the broker and mark the ones that went; stop at the first failure.

    Dispatches go as one message per destination and ``dispatch.batch_size`` files
    (``publishing_groups``): the worker that takes it sends the whole group over one
    association. The ids that could not be sent stay unpublished in the database for the
    next sweep.
    """
    report = PublishReport()
    if not job_ids and not dispatch_ids:
        return report
    groups: list[list[int]] = []
    if dispatch_ids:
        with database.reader() as session:
            groups = dispatch_rows.publishing_groups(
                session, dispatch_ids, sender.settings.dispatch.batch_size
            )
    try:
        with sender.batch():
            for job_id in job_ids:
                sender.send_process(job_id)
                report.jobs.append(job_id)
            for group in groups:
                sender.send_dispatch(group[0])
                report.dispatches.extend(group)
    except PUBLISH_ERRORS as error:
        report.failed = len(job_ids) + len(dispatch_ids) - len(report.jobs) - len(report.dispatches)
        logger.warning("broker unavailable, %d ids left for the sweeper: %s", report.failed, error)
    if report.jobs or report.dispatches:
        when = now or utc_now()
        with database.sessions.begin() as session:
            job_rows.mark_jobs_published(session, report.jobs, when)
            dispatch_rows.mark_dispatches_published(session, report.dispatches, when)
    return report


def sweep(
    sender: TaskSender, database: Database, settings: Settings, now: datetime | None = None
) -> PublishReport:
    """Publish everything the database says is due; take work back from dead workers.

    Dispatches stuck in ``sending`` and jobs ``running`` past ``worker.job_lease_s``
    belong to a worker that died; they are queued again (``expire_running_jobs``).
    """
    when = now or utc_now()
    republish = timedelta(seconds=settings.broker.republish_after_s)
    with database.sessions.begin() as session:
        released = dispatch_rows.release_stale_sending(
            session, when, timedelta(seconds=settings.dispatch.stale_after_s)
        )
        expired = job_rows.expire_running_jobs(
            session,
            when,
            timedelta(seconds=settings.worker.job_lease_s),
            settings.worker.max_job_attempts,
        )
        job_ids = job_rows.jobs_to_publish(session, when, republish)
        dispatch_ids = dispatch_rows.dispatches_to_publish(session, when, republish)
    if released:
        logger.warning("released %d dispatches stuck in sending", len(released))
    if expired.requeued:
        logger.warning(
            "queued again %d jobs running past their lease (worker lost): %s",
            len(expired.requeued),
            expired.requeued,
        )
    if expired.failed:
        logger.error("jobs %s failed: their workers were lost too often", expired.failed)
    report = publish_ids(sender, database, job_ids, dispatch_ids, when)
    report.released = released
    report.requeued_jobs = expired.requeued
    report.lost_jobs = expired.failed
    return report


class Publisher:
    """The publishing thread of ``serve``: ids from the listener, and periodic sweeps."""

    def __init__(
        self, settings: Settings, database: Database, metrics: NodeMetrics | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.metrics = metrics
        # Ids wait in plain lists and only the first id of a batch wakes the thread: a
        # wake-up per received instance made the listener hand over the GIL every time.
        self._pending_lock = threading.Lock()
        self._pending_jobs: list[int] = []
        self._pending_dispatches: list[int] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blsnode-publisher", daemon=True)
        self._sender: TaskSender | None = None
        self.sweeps = 0

    def submit(self, job_ids: list[int], dispatch_ids: list[int]) -> None:
        """Queue ids for publishing; never blocks on the broker or the database."""
        if not job_ids and not dispatch_ids:
            return
        with self._pending_lock:
            idle = not self._pending_jobs and not self._pending_dispatches
            self._pending_jobs.extend(job_ids)
            self._pending_dispatches.extend(dispatch_ids)
        if idle:
            self._wake.set()

    def start(self) -> None:
        """Start the thread (it sweeps once at once, to catch work left by a crash)."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current round; unpublished ids stay in the database."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        self._sender = TaskSender(self.settings)
        try:
            interval = self.settings.broker.sweep_interval_s
            self._sweep()
            last_sweep = time.monotonic()
            while not self._stop.is_set():
                if self._wake.wait(timeout=interval):
                    # Gather for a moment: one database write marks a whole burst as
                    # published, instead of one write (competing with the listener's)
                    # per received instance.
                    if self._stop.wait(BATCH_WINDOW_S):
                        break
                    self._publish_pending()
                # A steady stream of ids must not starve the sweeper.
                if time.monotonic() - last_sweep >= interval:
                    self._sweep()
                    last_sweep = time.monotonic()
        finally:
            self._sender.close()

    def _take_pending(self) -> tuple[list[int], list[int]]:
        # Clear before taking: an id submitted after the take sets the event again.
        self._wake.clear()
        with self._pending_lock:
            job_ids, self._pending_jobs = self._pending_jobs, []
            dispatch_ids, self._pending_dispatches = self._pending_dispatches, []
        return job_ids, dispatch_ids

    def _publish_pending(self) -> None:
        job_ids, dispatch_ids = self._take_pending()
        for start in range(0, max(len(job_ids), len(dispatch_ids)), PUBLISH_CHUNK):
            jobs = job_ids[start : start + PUBLISH_CHUNK]
            dispatches = dispatch_ids[start : start + PUBLISH_CHUNK]

            def publish_fresh(
                sender: TaskSender, jobs: list[int] = jobs, dispatches: list[int] = dispatches
            ) -> PublishReport:
                # A sweep may have published some of these already: send each once.
                with self.database.reader() as session:
                    fresh_jobs = job_rows.unpublished_jobs(session, jobs)
                    fresh_dispatches = dispatch_rows.unpublished_dispatches(session, dispatches)
                return publish_ids(sender, self.database, fresh_jobs, fresh_dispatches)

            self._guarded(publish_fresh)

    def _sweep(self) -> None:
        self.sweeps += 1
        self._guarded(lambda sender: sweep(sender, self.database, self.settings))

    def _guarded(self, action: Callable[[TaskSender], PublishReport]) -> None:
        """Run one round; a database error is logged and the next round tries again."""
        if self._sender is None:
            raise RuntimeError("publisher thread not started")
        try:
            report = action(self._sender)
        except SQLAlchemyError:
            logger.exception("publishing round failed on the database; will try again")
            return
        if self.metrics is not None:
            self.metrics.published.labels(kind="job").inc(len(report.jobs))
            self.metrics.published.labels(kind="dispatch").inc(len(report.dispatches))
            self.metrics.publish_failures.inc(report.failed)
