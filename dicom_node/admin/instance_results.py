"""What the node holds about one received instance: its job, outputs and dispatches."""

from __future__ import annotations

from typing import Any

from dicom_node.admin.jobs import dispatch_summary, job_summary
from dicom_node.db import Database, DispatchState
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db.instances import get_instance
from dicom_node.db.outputs import get_output, outputs_of_job


def instance_results(database: Database, instance_id: int) -> dict[str, Any] | None:
    """An instance with its job, the job's outputs and all dispatches; ``None`` if unknown."""
    with database.reader() as session:
        instance = get_instance(session, instance_id)
        if instance is None:
            return None
        job = instance.job
        details: dict[str, Any] = {
            "id": instance.id,
            "sop_instance_uid": instance.sop_instance_uid,
            "sop_class_uid": instance.sop_class_uid,
            "series_instance_uid": instance.series.series_instance_uid,
            "study_instance_uid": instance.series.study.study_instance_uid,
            "modality": instance.series.modality,
            "path": instance.path,
            "received_at": instance.received_at.isoformat(),
            "calling_ae_title": instance.calling_ae_title,
            "job": job_summary(job) if job is not None else None,
            "outputs": [],
            "dispatches": [],
        }
        if job is not None:
            details["outputs"] = [
                {
                    "id": o.id,
                    "kind": o.kind.value,
                    "sop_instance_uid": o.sop_instance_uid,
                    "path": o.path,
                }
                for o in outputs_of_job(session, job.id)
            ]
            details["dispatches"] = [
                dispatch_summary(d)
                for d in dispatch_rows.dispatches_of_job(session, job.id, instance.id)
            ]
        return details


def output_file(database: Database, output_id: int) -> dict[str, Any] | None:
    """Kind, path and job of one output; ``None`` if unknown."""
    with database.reader() as session:
        output = get_output(session, output_id)
        if output is None:
            return None
        return {
            "id": output.id,
            "kind": output.kind.value,
            "path": output.path,
            "job_id": output.job_id,
            "instance_id": output.job.instance_id,
        }


def list_dispatches(database: Database, state: DispatchState | None, limit: int) -> dict[str, Any]:
    """The newest dispatches, optionally of one state."""
    with database.reader() as session:
        return {
            "dispatches": [
                dispatch_summary(d) for d in dispatch_rows.list_dispatches(session, state, limit)
            ]
        }
