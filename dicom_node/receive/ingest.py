"""Storing one received instance: validate, spool durably, hand over for booking.

``Ingestor.ingest`` is the plain function behind the C-STORE handler. It returns the
status to answer; it answers success once the file is fsynced in place (the spool is the
record) and handed to the ``Bookkeeper``, which commits its rows shortly after.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from dicom_node.db import Database
from dicom_node.db import jobs as job_rows
from dicom_node.db.instances import find_instance, instance_id, replace_instance_file
from dicom_node.dimse_status import DicomStatus
from dicom_node.receive.booking import Bookkeeper, Spooled
from dicom_node.receive.header import InstanceHeader, is_valid_uid, read_file_header, read_header
from dicom_node.receive.spool import DiskFullError, Spool, spooled_body_equals
from dicom_node.receive.wire import DatasetTooLargeError, MalformedDatasetError
from dicom_node.settings import DuplicatePolicy, Settings

logger = logging.getLogger(__name__)

# Resends with other content, answered by ``storage.duplicates`` (logged at INFO here).
DUPLICATE_OUTCOMES = frozenset({"duplicate_ignored", "duplicate_rejected"})


@dataclass(frozen=True)
class Received:
    """A C-STORE request as the network layer hands it over."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    file_meta: bytes
    body: bytes | memoryview
    calling_ae_title: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """The status to answer and why."""

    status: DicomStatus
    outcome: str
    sop_instance_uid: str | None = None
    reason: str | None = None


class _KeyedLocks:
    """One lock per SOP Instance UID in flight, so two copies arriving at once store once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class Ingestor:
    """Validates and spools received instances, then books them (thread-safe, one per process)."""

    def __init__(
        self, settings: Settings, database: Database, spool: Spool, bookkeeper: Bookkeeper
    ) -> None:
        self.settings = settings
        self.database = database
        self.spool = spool
        self.bookkeeper = bookkeeper
        self._locks = _KeyedLocks()

    def ingest(self, received: Received) -> IngestResult:
        """Store one instance and return the status to answer; never raises for bad input."""
        try:
            header = read_header(
                received.body,
                received.transfer_syntax_uid,
                self.settings.storage.max_dataset_bytes,
            )
        except DatasetTooLargeError as error:
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "too_large", reason=str(error))
        except MalformedDatasetError as error:
            return IngestResult(DicomStatus.CANNOT_UNDERSTAND, "unreadable", reason=str(error))
        mismatch = self._mismatch(received, header)
        if mismatch is not None:
            return mismatch
        with self._locks.hold(header.sop_instance_uid):
            return self._store(received, header)

    @staticmethod
    def _mismatch(received: Received, header: InstanceHeader) -> IngestResult | None:
        if header.sop_class_uid != received.sop_class_uid:
            return IngestResult(
                DicomStatus.DATASET_DOES_NOT_MATCH_SOP_CLASS,
                "mismatch",
                header.sop_instance_uid,
                reason=f"data set SOP Class {header.sop_class_uid} is not the request's "
                f"{received.sop_class_uid}",
            )
        if header.sop_instance_uid != received.sop_instance_uid or not is_valid_uid(
            received.sop_instance_uid
        ):
            return IngestResult(
                DicomStatus.CANNOT_UNDERSTAND,
                "unreadable",
                header.sop_instance_uid,
                reason=f"data set SOP Instance UID {header.sop_instance_uid} is not the "
                f"request's {received.sop_instance_uid}",
            )
        return None

    def _store(self, received: Received, header: InstanceHeader) -> IngestResult:
        uid = header.sop_instance_uid
        # A copy of an instance whose row is still to be committed is answered as a
        # resend of a booked one, once the row is there.
        if self.bookkeeper.waiting(uid) and not self.bookkeeper.settle():
            return IngestResult(
                DicomStatus.OUT_OF_RESOURCES, "error", uid, reason="booking failed (see log)"
            )
        try:
            with self.database.lookups.connect() as connection:
                known = instance_id(connection, uid)
        except SQLAlchemyError as error:
            logger.exception("database unavailable", extra={"sop_instance_uid": uid})
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "error", uid, reason=str(error))
        if known is not None:
            return self._duplicate(received, header, known)
        if self.bookkeeper.full():
            return IngestResult(
                DicomStatus.OUT_OF_RESOURCES,
                "error",
                uid,
                reason=f"{self.bookkeeper.max_waiting} instances wait for their database rows",
            )
        target = self.spool.path_for(header.study_instance_uid, header.series_instance_uid, uid)
        try:
            decision = self.bookkeeper.decide(header)
            spooled = self.spool.write(target, [received.file_meta, received.body])
        except DiskFullError as error:
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "disk_full", uid, reason=str(error))
        except (OSError, SQLAlchemyError) as error:
            logger.exception("routing or spooling failed", extra={"sop_instance_uid": uid})
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "error", uid, reason=str(error))
        item = Spooled(
            header, spooled.path, spooled.size_bytes, received.calling_ae_title, decision
        )
        try:
            self.bookkeeper.submit(item)
        except SQLAlchemyError as error:
            # Booked at once (no writer thread) and failed: not acknowledged, so not kept.
            logger.exception(
                "booking failed; removing the spooled file", extra={"sop_instance_uid": uid}
            )
            self.spool.remove(target)
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "error", uid, reason=str(error))
        return IngestResult(DicomStatus.SUCCESS, "stored", uid)

    def _duplicate(self, received: Received, header: InstanceHeader, known: int) -> IngestResult:
        """Answer a resend of a stored SOP Instance UID by ``storage.duplicates``.

        Identical content (the data set's bytes, whatever the file meta) is a success
        that changes nothing; other content is ignored (warning) or rejected, and said
        at INFO either way: it may be a correction the sender expects to see.
        """
        uid = received.sop_instance_uid
        try:
            with self.database.reader() as session:
                booked = find_instance(session, uid)
                path = None if booked is None else Path(booked.path)
            same = path is not None and spooled_body_equals(path, received.body)
        except (SQLAlchemyError, OSError) as error:
            logger.exception("could not compare a resend", extra={"sop_instance_uid": uid})
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "error", uid, reason=str(error))
        if same:
            return IngestResult(DicomStatus.SUCCESS, "duplicate", uid)
        policy = self.settings.storage.duplicate_policy(received.calling_ae_title)
        extra = {"sop_instance_uid": uid, "calling_ae_title": received.calling_ae_title}
        if policy is DuplicatePolicy.REPLACE and path is not None:
            target = self.spool.path_for(header.study_instance_uid, header.series_instance_uid, uid)
            if target.resolve() == path.resolve():
                return self._replace(received, header, known, path, extra)
            logger.info(
                "resend with other content in another study or series rejected "
                "(storage.duplicates replace keeps an instance where it is)",
                extra=extra,
            )
            policy = DuplicatePolicy.REJECT
        if policy is DuplicatePolicy.REJECT:
            logger.info("resend with other content rejected (storage.duplicates)", extra=extra)
            return IngestResult(
                DicomStatus.DUPLICATE_SOP_INSTANCE,
                "duplicate_rejected",
                uid,
                reason="an instance with this SOP Instance UID and other content is stored",
            )
        logger.info("resend with other content ignored (storage.duplicates)", extra=extra)
        return IngestResult(
            DicomStatus.ELEMENTS_DISCARDED,
            "duplicate_ignored",
            uid,
            reason="an instance with this SOP Instance UID and other content is kept",
        )

    def _replace(
        self,
        received: Received,
        header: InstanceHeader,
        known: int,
        path: Path,
        extra: dict[str, str | None],
    ) -> IngestResult:
        uid = header.sop_instance_uid
        try:
            spooled = self.spool.write(path, [received.file_meta, received.body])
            with self.database.sessions.begin() as session:
                replace_instance_file(
                    session,
                    known,
                    spooled.size_bytes,
                    header.transfer_syntax_uid,
                    received.calling_ae_title,
                )
                job_id = job_rows.requeue_job_of_instance(session, known)
        except DiskFullError as error:
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "disk_full", uid, reason=str(error))
        except (OSError, SQLAlchemyError) as error:
            logger.exception("replacing failed", extra=extra)
            return IngestResult(DicomStatus.OUT_OF_RESOURCES, "error", uid, reason=str(error))
        logger.info(
            "resend with other content replaced the instance (storage.duplicates)", extra=extra
        )
        if job_id is not None:
            self.bookkeeper.publish([job_id], [])
        return IngestResult(DicomStatus.SUCCESS, "replaced", uid)

    def spooled_item(self, path: Path) -> Spooled | IngestResult:
        """What booking a file already in the spool needs (re-booking after a crash).

        The file is validated like a received one; a file that is not where its UIDs say
        it belongs is left alone (the refusal is returned instead).
        """
        try:
            spooled = read_file_header(path, self.settings.storage.max_dataset_bytes)
        except (OSError, MalformedDatasetError, DatasetTooLargeError) as error:
            return IngestResult(DicomStatus.CANNOT_UNDERSTAND, "unreadable", reason=str(error))
        header, file_meta = spooled.header, spooled.file_meta
        expected = self.spool.path_for(
            header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
        if expected.resolve() != path.resolve():
            return IngestResult(
                DicomStatus.CANNOT_UNDERSTAND,
                "misplaced",
                header.sop_instance_uid,
                reason=f"{path} should be at {expected}",
            )
        calling = file_meta.get("SourceApplicationEntityTitle")
        return Spooled(
            header,
            path,
            spooled.size_bytes,
            str(calling).strip() if calling else None,
            self.bookkeeper.decide(header),
        )
