"""Derived objects written by jobs (recorded by the worker)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dicom_node.db.models import Output, OutputKind
from dicom_node.db.types import utc_now


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


def outputs_of_job(session: Session, job_id: int) -> list[Output]:
    """The outputs of one job, in the order they were recorded."""
    return list(session.scalars(select(Output).where(Output.job_id == job_id).order_by(Output.id)))
