"""Sending Dispatch rows: claim them, C-STORE the files, record each attempt.

``send_due_batch`` is the plain function behind the dispatch task (``DISPATCH_TASK``):
a message names one dispatch, and the worker sends it together with the other due
dispatches of the same destination over one association (a radiograph's 18 results
would otherwise open 18 associations, about 0.1 s each). Retries are scheduled in each
row (``next_attempt_at``, exponential backoff) and published by the sweeper in ``serve``
when due: the row is the one owner of retry timing. After ``dispatch.max_attempts`` the
dispatch is dead until ``blsnode jobs retry`` revives it.

Each file's result is committed the moment its C-STORE is answered, before the next file
goes out, and every such commit renews the claim on the batch's remaining rows. A
sender that dies therefore leaves only the file in flight and the untried ones in
``sending``; the sweeper gives them back after ``dispatch.stale_after_s`` without
progress, and what was delivered is never sent again. The file in flight may reach the
destination twice; its SOP Instance UID is the same (derived UIDs are deterministic),
which a PACS stores once.
The database is never held open while the network is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from dicom_node.db import Database, DispatchState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db.types import utc_now
from dicom_node.send.destinations import find_destination
from dicom_node.send.scu import ResultCallback, StoreAttempt, store_files
from dicom_node.settings import (
    DestinationProtocol,
    DestinationSettings,
    DispatchSettings,
    Settings,
)

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


@dataclass(frozen=True)
class BatchOutcome:
    """What one message did: the outcome of every dispatch it claimed and sent."""

    dispatch_id: int
    outcomes: tuple[DispatchOutcome, ...]
    skipped: DispatchOutcome | None = None

    def outcome(self) -> DispatchOutcome:
        """The outcome of the message's own dispatch (not attempted if it was not due)."""
        for outcome in self.outcomes:
            if outcome.dispatch_id == self.dispatch_id:
                return outcome
        if self.skipped is None:
            raise RuntimeError(f"dispatch {self.dispatch_id} neither sent nor skipped")
        return self.skipped


def send_dispatch(
    settings: Settings, database: Database, dispatch_id: int, now: datetime | None = None
) -> DispatchOutcome:
    """Try to send dispatch ``dispatch_id`` once, if it is pending and due.

    Other due dispatches of the same destination go along on the same association
    (``send_due_batch``); this returns the outcome of ``dispatch_id`` alone.
    """
    return send_due_batch(settings, database, dispatch_id, now).outcome()


def send_due_batch(
    settings: Settings, database: Database, dispatch_id: int, now: datetime | None = None
) -> BatchOutcome:
    """Send dispatch ``dispatch_id`` and the other due dispatches of its destination.

    At most ``dispatch.batch_size`` files, over one association (``store_files``). Each
    dispatch keeps its own attempt count, backoff and dead letter: a file the destination
    refuses fails alone.
    """
    started = now or utc_now()
    with database.sessions.begin() as session:
        claimed = dispatch_rows.claim_due_batch(
            session, dispatch_id, started, settings.dispatch.batch_size
        )
        destination = (
            find_destination(settings, session, claimed[0].destination) if claimed else None
        )
        skipped = None
        if not any(item.dispatch_id == dispatch_id for item in claimed):
            current = dispatch_rows.get_dispatch(session, dispatch_id)
            if current is None:
                raise ValueError(f"no dispatch with id {dispatch_id}")
            skipped = DispatchOutcome(dispatch_id, False, current.state, current.attempts)
    if not claimed:
        return BatchOutcome(dispatch_id, (), skipped)
    recorder = _Recorder(database, settings.dispatch, claimed, now)
    _attempt(settings, destination, claimed, recorder.record)
    outcomes = recorder.outcomes()
    sent = sum(outcome.state is DispatchState.SENT for outcome in outcomes)
    logger.info(
        "dispatched %d of %d files to %s",
        sent,
        len(outcomes),
        claimed[0].destination,
        extra={"dispatch_id": dispatch_id},
    )
    return BatchOutcome(dispatch_id, tuple(outcomes), skipped)


class _Recorder:
    """Commits each claimed dispatch's attempt as soon as it is known.

    Every commit also renews the claim of the rows still waiting (their ``updated_at``),
    so a long batch that makes progress is never taken for a dead sender's.
    """

    def __init__(
        self,
        database: Database,
        policy: DispatchSettings,
        claimed: list[dispatch_rows.ClaimedDispatch],
        now: datetime | None,
    ) -> None:
        self.database = database
        self.policy = policy
        self.claimed = claimed
        self.now = now
        self.recorded: dict[int, DispatchOutcome] = {}

    def record(self, index: int, attempt: StoreAttempt) -> None:
        """Write the attempt of ``claimed[index]``; renew the claim on the others."""
        finished = self.now or utc_now()
        with self.database.sessions.begin() as session:
            outcome = _record(session, self.policy, self.claimed[index], attempt, finished)
            self.recorded[index] = outcome
            waiting = [
                item.dispatch_id
                for position, item in enumerate(self.claimed)
                if position not in self.recorded
            ]
            dispatch_rows.renew_sending(session, waiting, finished)

    def outcomes(self) -> list[DispatchOutcome]:
        """The outcome of every claimed dispatch, in claim order (all are recorded)."""
        missing = [i for i in range(len(self.claimed)) if i not in self.recorded]
        for index in missing:  # a result the sender never reported counts as not tried
            self.record(index, StoreAttempt(False, error="not tried"))
        return [self.recorded[index] for index in range(len(self.claimed))]


def _attempt(
    settings: Settings,
    destination: DestinationSettings | None,
    claimed: list[dispatch_rows.ClaimedDispatch],
    on_result: ResultCallback,
) -> None:
    """One attempt for every claimed dispatch; the files that exist share one association.

    Each result goes to ``on_result(position in claimed, attempt)`` as soon as it is known.
    """
    if destination is None:
        gone = StoreAttempt(False, error="destination no longer configured", permanent=True)
        for index in range(len(claimed)):
            on_result(index, gone)
        return
    present: list[tuple[int, Path]] = []
    for index, item in enumerate(claimed):
        path = Path(item.path) if item.path is not None else None
        if path is None or not path.is_file():
            on_result(index, StoreAttempt(False, error=f"file missing: {path}", permanent=True))
        else:
            present.append((index, path))
    send = store_files
    if destination.protocol is DestinationProtocol.DICOMWEB:
        from dicom_node.send.stow import stow_files  # requests loads only for DICOMweb

        send = stow_files
    send(
        settings,
        destination,
        [path for _, path in present],
        on_result=lambda position, attempt: on_result(present[position][0], attempt),
    )


def _record(
    session: Session,
    policy: DispatchSettings,
    item: dispatch_rows.ClaimedDispatch,
    attempt: StoreAttempt,
    finished: datetime,
) -> DispatchOutcome:
    """Write one attempt's result on its row: sent, retry later with backoff, or dead."""
    identifier, attempts = item.dispatch_id, item.attempts
    if attempt.stored:
        dispatch_rows.record_sent(session, identifier, attempt.status or 0, finished)
        return DispatchOutcome(identifier, True, DispatchState.SENT, attempts, attempt.status)
    retry_at = None
    if not attempt.permanent and attempts < policy.max_attempts:
        retry_at = finished + backoff_delay(attempts, policy)
    error = attempt.error or "unknown error"
    dispatch_rows.record_failure(session, identifier, error, finished, retry_at, attempt.status)
    state = DispatchState.PENDING if retry_at is not None else DispatchState.DEAD
    logger.warning(
        "dispatch failed: %s",
        error,
        extra={"dispatch_id": identifier, "attempts": attempts, "state": state.value},
    )
    return DispatchOutcome(identifier, True, state, attempts, attempt.status, error, retry_at)
