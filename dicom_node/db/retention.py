"""Retention: which old instances may go, and deleting their rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from dicom_node.db.models import (
    Dispatch,
    DispatchState,
    Instance,
    Job,
    JobState,
    Output,
    Series,
    Study,
)

_UNFINISHED_JOB = (JobState.QUEUED, JobState.RUNNING)
_UNFINISHED_DISPATCH = (DispatchState.PENDING, DispatchState.SENDING)


def purgeable_instances(session: Session, received_before: datetime, limit: int = 500) -> list[int]:
    """Instances received before the cut-off whose work is finished.

    An instance with a queued or running job, or with a dispatch (of itself or of one of
    its outputs) still pending or sending, is kept: purging it would lose work.
    """
    unfinished_job = exists().where(Job.instance_id == Instance.id, Job.state.in_(_UNFINISHED_JOB))
    output_ids = (
        select(Output.id).join(Job, Output.job_id == Job.id).where(Job.instance_id == Instance.id)
    )
    unfinished_dispatch = exists().where(
        Dispatch.state.in_(_UNFINISHED_DISPATCH),
        or_(Dispatch.instance_id == Instance.id, Dispatch.output_id.in_(output_ids)),
    )
    query = (
        select(Instance.id)
        .where(Instance.received_at < received_before, ~unfinished_job, ~unfinished_dispatch)
        .order_by(Instance.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def delete_instances(session: Session, instance_ids: Sequence[int]) -> list[str]:
    """Delete the instances with their jobs, outputs and dispatches; return the file paths.

    The caller removes the files after the commit: a failed commit then leaves every row
    pointing at a file that still exists.
    """
    ids = list(instance_ids)
    if not ids:
        return []
    job_ids = list(session.scalars(select(Job.id).where(Job.instance_id.in_(ids))))
    outputs = session.execute(
        select(Output.id, Output.path).where(Output.job_id.in_(job_ids))
    ).all()
    output_ids = [row.id for row in outputs]
    paths = [row.path for row in outputs]
    paths += list(session.scalars(select(Instance.path).where(Instance.id.in_(ids))))
    session.execute(
        delete(Dispatch).where(
            or_(Dispatch.instance_id.in_(ids), Dispatch.output_id.in_(output_ids))
        )
    )
    session.execute(delete(Output).where(Output.id.in_(output_ids)))
    session.execute(delete(Job).where(Job.id.in_(job_ids)))
    session.execute(delete(Instance).where(Instance.id.in_(ids)))
    session.execute(delete(Series).where(~exists().where(Instance.series_id == Series.id)))
    session.execute(delete(Study).where(~exists().where(Series.study_id == Study.id)))
    return paths
