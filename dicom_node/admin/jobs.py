"""Listing, inspecting and retrying jobs and dispatches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dicom_node.db import Database, Dispatch, DispatchState, Job, JobState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.outputs import outputs_of_job
from dicom_node.queue.broker import TaskSender
from dicom_node.queue.publisher import publish_ids
from dicom_node.settings import Settings


def job_summary(job: Job) -> dict[str, Any]:
    """One job as plain data."""
    return {
        "id": job.id,
        "state": job.state.value,
        "rule": job.rule,
        "instance_id": job.instance_id,
        "attempts": job.attempts,
        "reason": job.reason,
        "result_destinations": list(job.result_destinations),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "published_at": job.published_at.isoformat() if job.published_at else None,
    }


def dispatch_summary(dispatch: Dispatch) -> dict[str, Any]:
    """One dispatch as plain data."""
    return {
        "id": dispatch.id,
        "destination": dispatch.destination,
        "state": dispatch.state.value,
        "instance_id": dispatch.instance_id,
        "output_id": dispatch.output_id,
        "attempts": dispatch.attempts,
        "next_attempt_at": dispatch.next_attempt_at.isoformat(),
        "last_status": dispatch.last_status,
        "last_error": dispatch.last_error,
        "sent_at": dispatch.sent_at.isoformat() if dispatch.sent_at else None,
    }


def list_jobs(database: Database, state: JobState | None, limit: int) -> dict[str, Any]:
    """The newest jobs, optionally of one state."""
    with database.reader() as session:
        jobs = job_rows.list_jobs(session, state, limit)
        return {"jobs": [job_summary(job) for job in jobs]}


def show_job(database: Database, job_id: int) -> dict[str, Any] | None:
    """A job with its instance, outputs and dispatches; ``None`` if there is no such job."""
    with database.reader() as session:
        job = job_rows.get_job(session, job_id)
        if job is None:
            return None
        instance = job.instance
        details = job_summary(job)
        details["instance"] = {
            "sop_instance_uid": instance.sop_instance_uid,
            "sop_class_uid": instance.sop_class_uid,
            "series_instance_uid": instance.series.series_instance_uid,
            "study_instance_uid": instance.series.study.study_instance_uid,
            "path": instance.path,
            "received_at": instance.received_at.isoformat(),
        }
        details["outputs"] = [
            {
                "id": output.id,
                "kind": output.kind.value,
                "sop_instance_uid": output.sop_instance_uid,
                "path": output.path,
            }
            for output in outputs_of_job(session, job_id)
        ]
        details["dispatches"] = [
            dispatch_summary(dispatch)
            for dispatch in dispatch_rows.dispatches_of_job(session, job_id, instance.id)
        ]
        return details


def retry(
    settings: Settings,
    database: Database,
    job_ids: Sequence[int] = (),
    dispatch_ids: Sequence[int] = (),
    everything: bool = False,
) -> dict[str, Any]:
    """Re-queue failed jobs and revive dead dispatches, then publish them at once.

    With ``job_ids``, the dead dispatches of those jobs are revived too. If the broker is
    down the rows stay unpublished and the sweeper of a running ``serve`` sends them.
    """
    if not everything and not job_ids and not dispatch_ids:
        raise ValueError("name job ids or dispatch ids, or ask for everything")
    with database.sessions.begin() as session:
        if everything:
            jobs = job_rows.requeue_failed_jobs(session)
            dispatches = dispatch_rows.revive_dead_dispatches(session)
        else:
            jobs = job_rows.requeue_failed_jobs(session, list(job_ids)) if job_ids else []
            wanted = set(dispatch_ids)
            for job_id in job_ids:
                job = job_rows.get_job(session, job_id)
                if job is not None:
                    wanted.update(
                        d.id
                        for d in dispatch_rows.dispatches_of_job(session, job_id, job.instance_id)
                        if d.state is DispatchState.DEAD
                    )
            dispatches = (
                dispatch_rows.revive_dead_dispatches(session, sorted(wanted)) if wanted else []
            )
    sender = TaskSender(settings)
    try:
        report = publish_ids(sender, database, jobs, dispatches)
    finally:
        sender.close()
    return {
        "requeued_jobs": jobs,
        "revived_dispatches": dispatches,
        "published": len(report.jobs) + len(report.dispatches),
        "left_for_sweeper": report.failed,
    }
