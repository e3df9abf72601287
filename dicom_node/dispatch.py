"""Sending one Dispatch row: claim it, C-STORE the file, record the attempt.

``send_dispatch`` is the plain function behind the worker's ``worker.tasks.dispatch``
task. Retries are scheduled in the row (``next_attempt_at``, exponential backoff) and
published by the sweeper in ``serve`` when due, so the task itself must not retry; after
``dispatch.max_attempts`` the dispatch is dead until ``blsnode jobs retry`` revives it.
The database is never held open while the network is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dicom_node.db import Database, DispatchState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db.types import utc_now
from dicom_node.destinations import find_destination
from dicom_node.scu import StoreAttempt, store_file
from dicom_node.settings import DestinationSettings, DispatchSettings, Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchOutcome:
    """What one call did to a dispatch (``attempted`` is false if it was not due)."""

    dispatch_id: int
    attempted: bool
    state: DispatchState
    attempts: int
    status: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


def backoff_delay(attempts: int, policy: DispatchSettings) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: doubling, capped."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    seconds = policy.backoff_initial_s * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, policy.backoff_max_s))


def _claim(
    database: Database, settings: Settings, dispatch_id: int, now: datetime
) -> tuple[DispatchOutcome | None, DestinationSettings | None, Path | None, int]:
    with database.sessions.begin() as session:
        dispatch = dispatch_rows.claim_dispatch(session, dispatch_id, now)
        if dispatch is None:
            current = dispatch_rows.get_dispatch(session, dispatch_id)
            if current is None:
                raise ValueError(f"no dispatch with id {dispatch_id}")
            skipped = DispatchOutcome(dispatch_id, False, current.state, current.attempts)
            return skipped, None, None, current.attempts
        source = dispatch.instance if dispatch.instance_id is not None else dispatch.output
        path = Path(source.path) if source is not None else None
        destination = find_destination(settings, session, dispatch.destination)
        return None, destination, path, dispatch.attempts


def send_dispatch(
    settings: Settings, database: Database, dispatch_id: int, now: datetime | None = None
) -> DispatchOutcome:
    """Try to send dispatch ``dispatch_id`` once, if it is pending and due."""
    started = now or utc_now()
    skipped, destination, path, attempts = _claim(database, settings, dispatch_id, started)
    if skipped is not None:
        return skipped
    if destination is None:
        attempt = StoreAttempt(False, error="destination no longer configured", permanent=True)
    elif path is None or not path.is_file():
        attempt = StoreAttempt(False, error=f"file missing: {path}", permanent=True)
    else:
        attempt = store_file(settings, destination, path)
    finished = now or utc_now()
    with database.sessions.begin() as session:
        if attempt.stored:
            dispatch_rows.record_sent(session, dispatch_id, attempt.status or 0, finished)
            logger.info("dispatch sent", extra={"dispatch_id": dispatch_id, "attempts": attempts})
            return DispatchOutcome(dispatch_id, True, DispatchState.SENT, attempts, attempt.status)
        retry_at = None
        if not attempt.permanent and attempts < settings.dispatch.max_attempts:
            retry_at = finished + backoff_delay(attempts, settings.dispatch)
        error = attempt.error or "unknown error"
        dispatch_rows.record_failure(
            session, dispatch_id, error, finished, retry_at, attempt.status
        )
    state = DispatchState.PENDING if retry_at is not None else DispatchState.DEAD
    logger.warning(
        "dispatch failed: %s",
        error,
        extra={"dispatch_id": dispatch_id, "attempts": attempts, "state": state.value},
    )
    return DispatchOutcome(dispatch_id, True, state, attempts, attempt.status, error, retry_at)
