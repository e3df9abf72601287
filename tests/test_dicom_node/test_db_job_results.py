"""The bookkeeping a worker does: claim a job, record its outputs and dispatches at once."""

from __future__ import annotations

import pytest

from dicom_node.db import Database, DispatchState, JobState, OutputKind
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.instances import InstanceRecord, add_instance
from dicom_node.db.outputs import OutputRecord, outputs_of_job, record_job_results


def _job(database: Database, destinations: list[str]) -> int:
    with database.sessions.begin() as session:
        instance_id = add_instance(
            session,
            InstanceRecord(
                sop_instance_uid="1.2.3.9.1",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
                study_instance_uid="1.2.3.9",
                series_instance_uid="1.2.3.9.0",
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                path="/spool/1.dcm",
                size_bytes=1000,
            ),
        )
        return job_rows.create_job(session, instance_id, "hand-pa", destinations)


def _outputs(count: int) -> list[OutputRecord]:
    kinds = [OutputKind.SEG] + [OutputKind.SC] * (count - 2) + [OutputKind.SR]
    return [
        OutputRecord(kind, f"2.25.{n}", "1.2.840.10008.5.1.4.1.1.7", "2.25.900", f"/out/{n}.dcm")
        for n, kind in enumerate(kinds)
    ]


def test_claim_runs_queued_and_interrupted_jobs_only(database: Database) -> None:
    job_id = _job(database, ["pacs"])
    with database.sessions.begin() as session:
        claimed = job_rows.claim_job(session, job_id)
    assert claimed is not None
    assert (claimed.path, claimed.sop_instance_uid) == ("/spool/1.dcm", "1.2.3.9.1")
    assert claimed.result_destinations == ("pacs",) and claimed.attempts == 1
    with database.sessions.begin() as session:  # redelivered after a crash: runs again
        again = job_rows.claim_job(session, job_id)
    assert again is not None and again.attempts == 2
    with database.sessions.begin() as session:
        job_rows.mark_failed(session, job_id, "no hand found")
    with database.sessions.begin() as session:
        assert job_rows.claim_job(session, job_id) is None
        assert job_rows.get_job(session, job_id).state is JobState.FAILED
    with database.sessions.begin() as session, pytest.raises(ValueError, match="no job"):
        job_rows.claim_job(session, 999)


def test_results_are_recorded_once_with_one_dispatch_per_destination(database: Database) -> None:
    job_id = _job(database, ["pacs", "viewer"])
    with database.sessions.begin() as session:
        job_rows.claim_job(session, job_id)
        pending = record_job_results(session, job_id, _outputs(4), ["pacs", "viewer"])
    assert len(pending) == 8
    with database.sessions.begin() as session:
        dispatch_rows.record_sent(
            session, pending[0], 0, job_rows.get_job(session, job_id).updated_at
        )
        again = record_job_results(session, job_id, _outputs(4), ["pacs", "viewer"])
    assert sorted(again) == sorted(pending[1:])  # the sent one is not sent again
    with database.sessions() as session:
        assert len(outputs_of_job(session, job_id)) == 4
        assert job_rows.get_job(session, job_id).state is JobState.DONE
        states = [d.state for d in dispatch_rows.list_dispatches(session)]
    assert states.count(DispatchState.SENT) == 1 and len(states) == 8
    with database.sessions.begin() as session, pytest.raises(ValueError, match="no outputs"):
        record_job_results(session, job_id, [], ["pacs"])
