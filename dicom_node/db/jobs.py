"""Processing jobs: created by the listener, taken by workers, retried from the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from dicom_node.db.models import Job, JobState
from dicom_node.db.types import Executor, core_connection, utc_now

_INSERT_JOB = insert(Job).returning(Job.id)


def create_job(
    executor: Executor,
    instance_id: int,
    rule: str,
    result_destinations: Sequence[str],
    now: datetime | None = None,
) -> int:
    """A queued job for one instance; returns its id for the caller to publish after commit."""
    when = now or utc_now()
    values = {
        "instance_id": instance_id,
        "rule": rule,
        "state": JobState.QUEUED,
        "result_destinations": list(result_destinations),
        "attempts": 0,
        "created_at": when,
        "updated_at": when,
    }
    return int(core_connection(executor).execute(_INSERT_JOB, values).scalar_one())


def get_job(session: Session, job_id: int) -> Job | None:
    """The job with this id, or ``None``."""
    return session.get(Job, job_id)


def list_jobs(
    session: Session, state: JobState | None = None, limit: int = 100, offset: int = 0
) -> list[Job]:
    """Jobs, newest first, optionally of one state."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    query = select(Job).order_by(Job.id.desc()).limit(limit).offset(offset)
    if state is not None:
        query = query.where(Job.state == state)
    return list(session.scalars(query))


def job_counts(session: Session) -> dict[str, int]:
    """Number of jobs in each state (every state listed, zero included)."""
    counts = dict.fromkeys((state.value for state in JobState), 0)
    for state, count in session.execute(select(Job.state, func.count(Job.id)).group_by(Job.state)):
        counts[JobState(state).value] = int(count)
    return counts


def jobs_to_publish(
    session: Session, now: datetime, republish_after: timedelta, limit: int = 500
) -> list[int]:
    """Ids of queued jobs never published, or published so long ago the message may be lost."""
    stale = now - republish_after
    query = (
        select(Job.id)
        .where(Job.state == JobState.QUEUED)
        .where(or_(Job.published_at.is_(None), Job.published_at < stale))
        .order_by(Job.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def unpublished_jobs(session: Session, job_ids: Sequence[int]) -> list[int]:
    """Those of ``job_ids`` still queued and never published."""
    if not job_ids:
        return []
    query = select(Job.id).where(
        Job.id.in_(list(job_ids)), Job.state == JobState.QUEUED, Job.published_at.is_(None)
    )
    return sorted(session.scalars(query))


def mark_jobs_published(session: Session, job_ids: Sequence[int], now: datetime) -> None:
    """Record that these jobs' ids went to the broker."""
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(published_at=now))


def mark_running(session: Session, job_id: int, now: datetime | None = None) -> Job:
    """A worker took the job; counts the attempt."""
    job = _require(session, job_id)
    when = now or utc_now()
    job.state = JobState.RUNNING
    job.attempts += 1
    job.started_at = when
    job.updated_at = when
    return job


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs of a job it took: plain values, no ORM rows leave the session."""

    job_id: int
    instance_id: int
    sop_instance_uid: str
    path: str
    result_destinations: tuple[str, ...]
    attempts: int
    # What the listener booked: the worker processes the file only if it says the same.
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str


def poison_reason(job_id: int, attempts: int) -> str:
    """Why a job whose worker died under it is not run again by itself."""
    return (
        f"poison: the worker running this job was lost {attempts} time(s) (crashed, killed, "
        f"out of memory); not run again by itself. 'blsnode jobs retry {job_id}' runs it again"
    )


def claim_job(
    session: Session,
    job_id: int,
    now: datetime | None = None,
    max_attempts: int | None = None,
    lease: timedelta | None = None,
) -> ClaimedJob | None:
    """Mark a queued (or interrupted running) job as running; ``None`` if it is not to run.

    A job found running whose ``lease`` is still renewed runs in a live worker: the
    message is a duplicate and changes nothing. A job found running without that sign of
    life belongs to a worker that died with the message unacknowledged (the broker
    delivers it again); jobs are idempotent, so it is run again, unless its workers were
    lost ``max_attempts`` times already: then it fails as poison, since running it again
    would likely kill this worker too. A done or failed job is left alone: its message
    is a duplicate, and ``blsnode jobs retry`` re-queues a failed one before publishing
    it again.
    """
    job = _require(session, job_id)
    if job.state not in (JobState.QUEUED, JobState.RUNNING):
        return None
    when = now or utc_now()
    if job.state is JobState.RUNNING:
        if lease is not None and job.updated_at > when - lease:
            return None
        if max_attempts is not None and job.attempts >= max_attempts:
            mark_failed(session, job_id, poison_reason(job_id, job.attempts), when)
            return None
    mark_running(session, job_id, when)
    instance = job.instance
    series = instance.series
    return ClaimedJob(
        job_id=job.id,
        instance_id=instance.id,
        sop_instance_uid=instance.sop_instance_uid,
        path=instance.path,
        result_destinations=tuple(job.result_destinations),
        attempts=job.attempts,
        sop_class_uid=instance.sop_class_uid,
        study_instance_uid=series.study.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
    )


def mark_done(session: Session, job_id: int, now: datetime | None = None) -> Job:
    """The job finished and its outputs are recorded."""
    job = _require(session, job_id)
    when = now or utc_now()
    job.state = JobState.DONE
    job.reason = None
    job.finished_at = when
    job.updated_at = when
    return job


def mark_failed(session: Session, job_id: int, reason: str, now: datetime | None = None) -> Job:
    """The job cannot be completed; ``reason`` is shown to the administrator."""
    if not reason:
        raise ValueError("a failed job needs a reason")
    job = _require(session, job_id)
    when = now or utc_now()
    job.state = JobState.FAILED
    job.reason = reason
    job.finished_at = when
    job.updated_at = when
    return job


@dataclass(frozen=True)
class ExpiredLeases:
    """Jobs found running past their lease: queued again, or failed after too many."""

    requeued: list[int]
    failed: list[int]


def touch_running_job(session: Session, job_id: int, now: datetime | None = None) -> bool:
    """Renew the lease of a running job (its worker is alive); False if it is not running."""
    when = now or utc_now()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING)
        .values(updated_at=when)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def expire_running_jobs(
    session: Session, now: datetime, lease: timedelta, max_attempts: int
) -> ExpiredLeases:
    """Jobs ``running`` without a sign of life for ``lease`` lost their worker: queue them again.

    A worker renews the lease of its job while it runs (``touch_running_job``, the
    ``updated_at`` column), so only a job whose worker died expires, however long the
    job takes. With Redis, ``acks_late`` redelivers the message of a worker that died, but only
    after the broker's visibility timeout; the filesystem broker of the embedded default
    has dropped it for good. The database knows the job is unfinished, so the sweeper
    queues it again and publishes it; the pipeline's outputs are idempotent (same UIDs,
    same rows, one dispatch per output and destination), so a second run duplicates
    nothing. A job whose attempts reached ``max_attempts`` fails instead: something in
    it kills workers (memory), and running it again would kill the next one.
    """
    if lease <= timedelta(0):
        raise ValueError(f"lease must be positive, not {lease}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    expired = session.scalars(
        select(Job)
        .where(Job.state == JobState.RUNNING, Job.updated_at < now - lease)
        .order_by(Job.id)
    ).all()
    requeued, failed = [], []
    for job in expired:
        job.updated_at = now
        if job.attempts >= max_attempts:
            job.state = JobState.FAILED
            job.reason = poison_reason(job.id, job.attempts)
            job.finished_at = now
            failed.append(job.id)
        else:
            job.state = JobState.QUEUED
            job.published_at = None
            requeued.append(job.id)
    return ExpiredLeases(requeued, failed)


def requeue_failed_jobs(
    session: Session, job_ids: Sequence[int] | None = None, now: datetime | None = None
) -> list[int]:
    """Put failed jobs (all, or those of ``job_ids``) back in the queue; return their ids.

    The jobs become unpublished, so whoever publishes next (the CLI at once, or the
    sweeper in ``serve``) sends them to the broker again.
    """
    query = select(Job).where(Job.state == JobState.FAILED)
    if job_ids is not None:
        query = query.where(Job.id.in_(list(job_ids)))
    when = now or utc_now()
    requeued = []
    for job in session.scalars(query.order_by(Job.id)):
        job.state = JobState.QUEUED
        job.attempts = 0  # a fresh start: attempts count towards worker.max_job_attempts
        job.published_at = None
        job.finished_at = None
        job.updated_at = when
        requeued.append(job.id)
    return requeued


def requeue_job_of_instance(
    session: Session, instance_id: int, now: datetime | None = None
) -> int | None:
    """Queue a finished job of this instance again (its file was replaced); its id.

    A queued job reads the new file when it runs; a running one is left alone (it may
    have read the previous content: ``None`` is returned for both).
    """
    job = session.scalars(select(Job).where(Job.instance_id == instance_id)).one_or_none()
    if job is None or job.state not in (JobState.DONE, JobState.FAILED):
        return None
    when = now or utc_now()
    job.state = JobState.QUEUED
    job.reason = None
    job.attempts = 0
    job.published_at = None
    job.finished_at = None
    job.updated_at = when
    return job.id


def _require(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise ValueError(f"no job with id {job_id}")
    return job
