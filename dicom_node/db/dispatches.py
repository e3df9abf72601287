"""Dispatches: one file to one destination, with attempts, backoff and a dead letter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from dicom_node.db.models import Dispatch, DispatchState, Instance, Output
from dicom_node.db.types import Executor, core_connection, utc_now

_INSERT_DISPATCH = insert(Dispatch).returning(Dispatch.id)


def _pending(destination: str, when: datetime, **source: int | None) -> dict[str, Any]:
    """Column values of a new pending dispatch of ``source`` (instance_id or output_id)."""
    if not destination:
        raise ValueError("destination name must not be empty")
    return {
        "destination": destination,
        **source,
        "state": DispatchState.PENDING,
        "attempts": 0,
        "next_attempt_at": when,
        "created_at": when,
        "updated_at": when,
    }


def create_dispatch(
    session: Session,
    destination: str,
    instance_id: int | None = None,
    output_id: int | None = None,
    now: datetime | None = None,
) -> Dispatch:
    """A pending dispatch of an instance or an output; an existing one is returned as is.

    Re-running a job records the same outputs again; this keeps one dispatch per file and
    destination instead of sending twice.
    """
    if (instance_id is None) == (output_id is None):
        raise ValueError(
            f"give exactly one of instance_id ({instance_id}) and output_id ({output_id})"
        )
    existing = session.scalars(
        select(Dispatch).where(
            Dispatch.destination == destination,
            Dispatch.instance_id == instance_id
            if instance_id is not None
            else Dispatch.output_id == output_id,
        )
    ).one_or_none()
    if existing is not None:
        return existing
    dispatch = Dispatch(
        **_pending(destination, now or utc_now(), instance_id=instance_id, output_id=output_id)
    )
    session.add(dispatch)
    session.flush()
    return dispatch


def add_instance_dispatches(
    executor: Executor,
    instance_id: int,
    destinations: Sequence[str],
    now: datetime | None = None,
) -> tuple[int, ...]:
    """Pending dispatches of a just-added instance (it has none yet); returns their ids.

    Core inserts, no lookup: this runs on the C-STORE path, in the transaction that adds
    the instance, so no dispatch of it can exist before.
    """
    when = now or utc_now()
    connection = core_connection(executor)
    return tuple(
        int(
            connection.execute(
                _INSERT_DISPATCH, _pending(name, when, instance_id=instance_id)
            ).scalar_one()
        )
        for name in destinations
    )


def get_dispatch(session: Session, dispatch_id: int) -> Dispatch | None:
    """The dispatch with this id, or ``None``."""
    return session.get(Dispatch, dispatch_id)


@dataclass(frozen=True)
class ClaimedDispatch:
    """A dispatch taken for one attempt: plain values, no ORM rows leave the session."""

    dispatch_id: int
    destination: str
    path: str | None
    attempts: int


def claim_due_batch(
    session: Session, dispatch_id: int, now: datetime, limit: int
) -> list[ClaimedDispatch]:
    """Take dispatch ``dispatch_id`` and other due ones of its destination for one attempt.

    Marks them ``sending`` and counts the attempt of each. The dispatch named comes first
    if it is pending and due; the others are the destination's due pending dispatches,
    oldest due first, up to ``limit`` in all. A message whose own dispatch was already
    sent (it went with another's batch) still takes what is due, so every message drains
    its destination. Two workers claiming at once never take the same dispatch: on
    PostgreSQL the rows are locked and a concurrent claim skips them, and the update
    re-checks each row's state; SQLite writers queue.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    own = _require(session, dispatch_id)
    due = (Dispatch.state == DispatchState.PENDING, Dispatch.next_attempt_at <= now)
    # SKIP LOCKED (PostgreSQL; SQLite ignores it, its writers queue): a worker claiming
    # at the same time takes the next due rows instead of waiting for these and then
    # finding them gone, so every message still takes a full batch.
    candidates = list(
        session.scalars(
            select(Dispatch.id)
            .where(Dispatch.destination == own.destination, *due)
            .order_by(
                case((Dispatch.id == dispatch_id, 0), else_=1),
                Dispatch.next_attempt_at,
                Dispatch.id,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not candidates:
        return []
    claimed = set(
        session.scalars(
            update(Dispatch)
            .where(Dispatch.id.in_(candidates), *due)
            .values(state=DispatchState.SENDING, attempts=Dispatch.attempts + 1, updated_at=now)
            .returning(Dispatch.id)
            .execution_options(synchronize_session=False)
        )
    )
    session.expire_all()
    rows = session.execute(
        select(Dispatch.id, Dispatch.destination, Dispatch.attempts, Instance.path, Output.path)
        .outerjoin(Instance, Dispatch.instance_id == Instance.id)
        .outerjoin(Output, Dispatch.output_id == Output.id)
        .where(Dispatch.id.in_(claimed))
    ).all()
    found = {
        row[0]: ClaimedDispatch(row[0], row[1], row[3] if row[3] is not None else row[4], row[2])
        for row in rows
    }
    return [found[identifier] for identifier in candidates if identifier in found]


def publishing_groups(
    session: Session, dispatch_ids: Sequence[int], batch_size: int
) -> list[list[int]]:
    """Split dispatch ids into groups of one destination, at most ``batch_size`` each.

    One message per group is enough: the worker that takes it claims the due dispatches
    of that destination (``claim_due_batch``), so publishing one id per group and marking
    the whole group published sends a radiograph's results on one association instead of
    one message and one association per file.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if not dispatch_ids:
        return []
    destinations = dict(
        session.execute(
            select(Dispatch.id, Dispatch.destination).where(Dispatch.id.in_(list(dispatch_ids)))
        ).all()
    )
    by_destination: dict[str, list[int]] = {}
    for identifier in dispatch_ids:
        if identifier in destinations:
            by_destination.setdefault(destinations[identifier], []).append(identifier)
    return [
        ids[start : start + batch_size]
        for ids in by_destination.values()
        for start in range(0, len(ids), batch_size)
    ]


def record_sent(session: Session, dispatch_id: int, status: int, now: datetime) -> Dispatch:
    """The destination accepted the file."""
    dispatch = _require(session, dispatch_id)
    dispatch.state = DispatchState.SENT
    dispatch.last_status = status
    dispatch.last_error = None
    dispatch.sent_at = now
    dispatch.updated_at = now
    return dispatch


def record_failure(
    session: Session,
    dispatch_id: int,
    error: str,
    now: datetime,
    next_attempt_at: datetime | None,
    status: int | None = None,
) -> Dispatch:
    """An attempt failed: try again at ``next_attempt_at``, or dead-letter when it is ``None``."""
    dispatch = _require(session, dispatch_id)
    dispatch.last_error = error
    dispatch.last_status = status
    dispatch.updated_at = now
    dispatch.published_at = None
    if next_attempt_at is None:
        dispatch.state = DispatchState.DEAD
    else:
        dispatch.state = DispatchState.PENDING
        dispatch.next_attempt_at = next_attempt_at
    return dispatch


def dispatches_to_publish(
    session: Session, now: datetime, republish_after: timedelta, limit: int = 500
) -> list[int]:
    """Ids of due pending dispatches not yet published (or whose message may be lost)."""
    stale = now - republish_after
    query = (
        select(Dispatch.id)
        .where(Dispatch.state == DispatchState.PENDING, Dispatch.next_attempt_at <= now)
        .where(or_(Dispatch.published_at.is_(None), Dispatch.published_at < stale))
        .order_by(Dispatch.next_attempt_at, Dispatch.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def unpublished_dispatches(session: Session, dispatch_ids: Sequence[int]) -> list[int]:
    """Those of ``dispatch_ids`` still pending and not published since their last attempt."""
    if not dispatch_ids:
        return []
    query = select(Dispatch.id).where(
        Dispatch.id.in_(list(dispatch_ids)),
        Dispatch.state == DispatchState.PENDING,
        Dispatch.published_at.is_(None),
    )
    return sorted(session.scalars(query))


def mark_dispatches_published(session: Session, dispatch_ids: Sequence[int], now: datetime) -> None:
    """Record that these dispatches' ids went to the broker."""
    if dispatch_ids:
        session.execute(
            update(Dispatch).where(Dispatch.id.in_(dispatch_ids)).values(published_at=now)
        )


def renew_sending(session: Session, dispatch_ids: Sequence[int], now: datetime) -> None:
    """A sender made progress: its remaining ``sending`` rows are not stale."""
    if dispatch_ids:
        session.execute(
            update(Dispatch)
            .where(Dispatch.id.in_(list(dispatch_ids)), Dispatch.state == DispatchState.SENDING)
            .values(updated_at=now)
        )


def release_stale_sending(session: Session, now: datetime, stale_after: timedelta) -> list[int]:
    """Dispatches in ``sending`` without progress for ``stale_after`` become pending again.

    Their sender died: a live one renews its rows after every file (``renew_sending``).
    """
    stale = session.scalars(
        select(Dispatch).where(
            Dispatch.state == DispatchState.SENDING, Dispatch.updated_at < now - stale_after
        )
    ).all()
    for dispatch in stale:
        dispatch.state = DispatchState.PENDING
        dispatch.next_attempt_at = now
        dispatch.published_at = None
        dispatch.updated_at = now
    return [dispatch.id for dispatch in stale]


def revive_dead_dispatches(
    session: Session, dispatch_ids: Sequence[int] | None = None, now: datetime | None = None
) -> list[int]:
    """Dead dispatches (all, or those of ``dispatch_ids``) start over with fresh attempts."""
    query = select(Dispatch).where(Dispatch.state == DispatchState.DEAD)
    if dispatch_ids is not None:
        query = query.where(Dispatch.id.in_(list(dispatch_ids)))
    when = now or utc_now()
    revived = []
    for dispatch in session.scalars(query.order_by(Dispatch.id)):
        dispatch.state = DispatchState.PENDING
        dispatch.attempts = 0
        dispatch.next_attempt_at = when
        dispatch.published_at = None
        dispatch.updated_at = when
        revived.append(dispatch.id)
    return revived


def list_dispatches(
    session: Session, state: DispatchState | None = None, limit: int = 100
) -> list[Dispatch]:
    """Dispatches, newest first, optionally of one state."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    query = select(Dispatch).order_by(Dispatch.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Dispatch.state == state)
    return list(session.scalars(query))


def dispatches_of_job(session: Session, job_id: int, instance_id: int) -> list[Dispatch]:
    """Dispatches of a job's outputs and of its instance's original."""
    output_ids = select(Output.id).where(Output.job_id == job_id)
    query = (
        select(Dispatch)
        .where(or_(Dispatch.output_id.in_(output_ids), Dispatch.instance_id == instance_id))
        .order_by(Dispatch.id)
    )
    return list(session.scalars(query))


def dispatch_counts(session: Session) -> dict[str, int]:
    """Number of dispatches in each state (every state listed, zero included)."""
    counts = dict.fromkeys((state.value for state in DispatchState), 0)
    rows = session.execute(select(Dispatch.state, func.count(Dispatch.id)).group_by(Dispatch.state))
    for state, count in rows:
        counts[DispatchState(state).value] = int(count)
    return counts


def _require(session: Session, dispatch_id: int) -> Dispatch:
    dispatch = session.get(Dispatch, dispatch_id)
    if dispatch is None:
        raise ValueError(f"no dispatch with id {dispatch_id}")
    return dispatch
