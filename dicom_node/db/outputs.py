"""Derived objects written by jobs (recorded by the worker)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dicom_node.db.dispatches import create_dispatch
from dicom_node.db.jobs import mark_done
from dicom_node.db.models import DispatchState, Output, OutputKind
from dicom_node.db.types import utc_now


@dataclass(frozen=True)
class OutputRecord:
    """One derived object a job wrote, as the bookkeeping keeps it."""

    kind: OutputKind
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    path: str


def record_output(
    session: Session,
    job_id: int,
    kind: OutputKind,
    sop_instance_uid: str,
    sop_class_uid: str,
    series_instance_uid: str,
    path: str,
    now: datetime | None = None,
) -> Output:
    """Record an output; a re-run with the same (deterministic) UID updates the row in place."""
    output = session.scalars(
        select(Output).where(Output.sop_instance_uid == sop_instance_uid)
    ).one_or_none()
    if output is not None and output.job_id != job_id:
        raise ValueError(
            f"output {sop_instance_uid} belongs to job {output.job_id}, not job {job_id}"
        )
    if output is None:
        output = Output(job_id=job_id, sop_instance_uid=sop_instance_uid)
        session.add(output)
    output.kind = OutputKind(kind)
    output.sop_class_uid = sop_class_uid
    output.series_instance_uid = series_instance_uid
    output.path = path
    output.created_at = now or utc_now()
    session.flush()
    return output


def get_output(session: Session, output_id: int) -> Output | None:
    """The output with this id, if recorded."""
    return session.get(Output, output_id)


def outputs_of_job(session: Session, job_id: int) -> list[Output]:
    """The outputs of one job, in the order they were recorded."""
    return list(session.scalars(select(Output).where(Output.job_id == job_id).order_by(Output.id)))


def record_job_results(
    session: Session,
    job_id: int,
    outputs: Sequence[OutputRecord],
    destinations: Sequence[str],
    now: datetime | None = None,
    kinds: Mapping[str, Collection[str]] | None = None,
) -> list[int]:
    """Record a job's outputs, a dispatch of each to each destination, and the job as done.

    One transaction for all of it, so a job is never done without its outputs and
    dispatches. A re-run (same deterministic UIDs) updates its rows and keeps one
    dispatch per output and destination. ``kinds`` names, for the destinations that take
    only some kinds of output, the kinds (``OutputKind`` values) they take. Returns the
    ids of the pending dispatches, which the caller publishes after the commit.
    """
    if not outputs:
        raise ValueError(f"job {job_id} has no outputs to record")
    when = now or utc_now()
    pending = []
    for item in outputs:
        output = record_output(
            session,
            job_id,
            item.kind,
            item.sop_instance_uid,
            item.sop_class_uid,
            item.series_instance_uid,
            item.path,
            when,
        )
        for destination in destinations:
            if kinds is not None and destination in kinds and item.kind not in kinds[destination]:
                continue
            dispatch = create_dispatch(session, destination, output_id=output.id, now=when)
            if dispatch.state is DispatchState.PENDING:
                pending.append(dispatch.id)
    mark_done(session, job_id, when)
    return pending
