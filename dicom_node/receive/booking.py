"""Booking spooled instances: routing decided, rows committed in groups, ids published.

The spool is the record of what was received: a C-STORE is answered once its file is
durable, and its Instance row (with the Job and Dispatch rows) is written here, off the
association's thread. ``Bookkeeper.submit`` queues an instance; a writer thread commits
what waits in one transaction at most ``database.group_commit_s`` (default 0.25 s)
after the oldest arrived, sooner when the group is full or someone waits; what arrives
during a commit goes into the next. An instance whose row was
never committed (the process killed with rows waiting) is booked at the next start by
``dicom_node.receive.reconcile`` from its file.

Before an association's release is answered, what it stored is committed (``settle``):
a sender that sees its release confirmed finds its instances in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from dicom_node.db import Database
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.instances import InstanceRecord, add_instance, instance_id
from dicom_node.receive.header import InstanceHeader
from dicom_node.route.rules import Decision, decide
from dicom_node.send.destinations import all_destinations
from dicom_node.settings import DestinationSettings, Settings

logger = logging.getLogger(__name__)

# Destinations added with ``blsnode destinations add`` reach a running listener this fast.
DESTINATIONS_TTL_S = 5.0
# Instances committed in one transaction at most (a burst is split into groups this big).
MAX_GROUP = 500
# Instances waiting for their rows at most; beyond, the listener refuses (0xA700) rather
# than hold ever more in memory while the database cannot keep up or fails.
MAX_WAITING = 2000
# After a failed commit the group is tried again this much later.
RETRY_AFTER_S = 1.0

Published = Callable[[list[int], list[int]], None]


@dataclass(frozen=True)
class Spooled:
    """An instance durably in the spool, with the identity read from it once and the
    routing decided for it (``Bookkeeper.decide``)."""

    header: InstanceHeader
    path: Path
    size_bytes: int
    calling_ae_title: str | None
    decision: Decision


@dataclass
class Booked:
    """Ids of the rows one booking created."""

    instance_ids: list[int] = field(default_factory=list)
    job_ids: list[int] = field(default_factory=list)
    dispatch_ids: list[int] = field(default_factory=list)


class Bookkeeper:
    """Writes the rows of spooled instances; a writer thread groups them once started.

    Until ``start`` (and after ``stop``) ``submit`` books in the caller's thread, so a
    bookkeeper that never runs its thread (start-up reconciliation, tests) books at once.
    """

    def __init__(
        self, settings: Settings, database: Database, published: Published | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.published = published
        self.group_commit_s = settings.database.group_commit_s
        self.max_waiting = MAX_WAITING
        self._destinations_guard = threading.Lock()
        self._destinations_cache: tuple[float, list[DestinationSettings]] | None = None
        self._condition = threading.Condition()
        # Submitted and not yet committed, oldest first, with their arrival times.
        self._waiting: list[tuple[float, Spooled]] = []
        self._waiting_uids: set[str] = set()
        self._submitted = 0
        self._committed = 0
        self._failures = 0
        self._settle_to = 0
        self._stopping = False
        self._running = False
        self._thread: threading.Thread | None = None

    def decide(self, header: InstanceHeader) -> Decision:
        """The routing of an instance (before it is spooled: the writer only inserts)."""
        return decide(header, self.settings.rules, self._destinations(), self.settings.outputs)

    def book(self, items: list[Spooled]) -> Booked:
        """Commit the rows of ``items`` in one transaction; already booked ones are skipped.

        Raises ``SQLAlchemyError`` when the commit fails (nothing booked then).
        """
        booked = Booked()
        if not items:
            return booked
        with self.database.engine.begin() as connection:
            for item in items:
                self._book_one(connection, item, booked)
        self.publish(booked.job_ids, booked.dispatch_ids)
        return booked

    def publish(self, job_ids: list[int], dispatch_ids: list[int]) -> None:
        """Hand committed job and dispatch ids to the publisher (a queue put)."""
        if self.published is not None:
            self.published(job_ids, dispatch_ids)

    @staticmethod
    def _book_one(connection: Connection, item: Spooled, booked: Booked) -> None:
        uid, decision = item.header.sop_instance_uid, item.decision
        # Another process may have booked it (its row points at the same file).
        if instance_id(connection, uid) is not None:
            logger.warning("instance booked elsewhere already", extra={"sop_instance_uid": uid})
            return
        new_id = add_instance(connection, _record(item))
        booked.instance_ids.append(new_id)
        if decision.process:
            booked.job_ids.append(
                job_rows.create_job(
                    connection, new_id, decision.rule or "", decision.result_destinations
                )
            )
        booked.dispatch_ids.extend(
            dispatch_rows.add_instance_dispatches(
                connection, new_id, decision.original_destinations
            )
        )

    def _destinations(self) -> list[DestinationSettings]:
        """All destinations, re-read at most every few seconds (the CLI may add some)."""
        now = time.monotonic()
        with self._destinations_guard:
            if self._destinations_cache is None or now - self._destinations_cache[0] > (
                DESTINATIONS_TTL_S
            ):
                with self.database.reader() as session:
                    self._destinations_cache = (now, all_destinations(self.settings, session))
            return self._destinations_cache[1]

    def full(self) -> bool:
        """True when ``max_waiting`` instances wait for their rows."""
        with self._condition:
            return len(self._waiting) >= self.max_waiting

    def waiting(self, sop_instance_uid: str) -> bool:
        """True while this instance is spooled and its row not yet committed."""
        with self._condition:
            return sop_instance_uid in self._waiting_uids

    def submit(self, item: Spooled) -> None:
        """Book ``item``: by the writer thread if it runs, else now (may raise then)."""
        with self._condition:
            if self._thread is not None and not self._stopping:
                self._waiting.append((time.monotonic(), item))
                self._waiting_uids.add(item.header.sop_instance_uid)
                self._submitted += 1
                # The writer waits without a deadline only for a first instance, and
                # with one for the rest of a group, unless the group is full.
                if len(self._waiting) == 1 or len(self._waiting) >= MAX_GROUP:
                    self._condition.notify_all()
                return
        self.book([item])

    def settle(self) -> bool:
        """Wait until everything submitted so far is committed; False if a commit failed."""
        with self._condition:
            target, failures = self._submitted, self._failures
            self._settle_to = max(self._settle_to, target)
            self._condition.notify_all()
            self._condition.wait_for(
                lambda: self._committed >= target or self._failures > failures or not self._running
            )
            return self._committed >= target

    def start(self) -> None:
        """Start the writer thread."""
        self._running = True
        self._thread = threading.Thread(target=self._run, name="bookkeeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Commit what waits (one attempt), then stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        thread.join()
        self._thread = None
        if self._waiting:
            logger.warning(
                "%d spooled instances left without rows; the next start books them",
                len(self._waiting),
            )

    def _run(self) -> None:
        try:
            self._commit_groups()
        finally:
            with self._condition:
                self._running = False
                self._condition.notify_all()

    def _commit_groups(self) -> None:
        while True:
            group = self._next_group()
            if not group:
                return
            try:
                self.book(group)
            except SQLAlchemyError:
                logger.exception("booking %d spooled instances failed", len(group))
                with self._condition:
                    self._failures += 1
                    self._condition.notify_all()
                    if self._stopping:
                        return
                    self._condition.wait(RETRY_AFTER_S)
                continue
            with self._condition:
                del self._waiting[: len(group)]
                self._waiting_uids.difference_update(item.header.sop_instance_uid for item in group)
                self._committed += len(group)
                self._condition.notify_all()

    def _next_group(self) -> list[Spooled]:
        """The next group to commit, once it is due; empty when stopping with none left."""
        with self._condition:
            while True:
                if not self._waiting:
                    if self._stopping:
                        return []
                    self._condition.wait()
                    continue
                due = self._waiting[0][0] + self.group_commit_s - time.monotonic()
                if (
                    due <= 0
                    or len(self._waiting) >= MAX_GROUP
                    or self._settle_to > self._committed
                    or self._stopping
                ):
                    return [item for _, item in self._waiting[:MAX_GROUP]]
                self._condition.wait(due)


def _record(item: Spooled) -> InstanceRecord:
    header = item.header
    return InstanceRecord(
        sop_instance_uid=header.sop_instance_uid,
        sop_class_uid=header.sop_class_uid,
        study_instance_uid=header.study_instance_uid,
        series_instance_uid=header.series_instance_uid,
        transfer_syntax_uid=header.transfer_syntax_uid,
        path=str(item.path),
        size_bytes=item.size_bytes,
        modality=header.modality,
        study_date=header.study_date,
        series_number=header.series_number,
        series_description=header.series_description,
        body_part_examined=header.body_part_examined,
        view_position=header.view_position,
        calling_ae_title=item.calling_ae_title,
        own_output=item.decision.own_output,
    )
