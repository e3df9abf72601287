"""The Celery tasks called directly (not eagerly): rows, files, retries, failures, dispatch.

The broker is the default filesystem queue of the data directory, so the dispatch ids a
job publishes can be counted without a server; dispatches go to a real dcmtk storescp.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from loopback import free_port
from peers import running_storescp
from pydicom import dcmread
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from worker_testing import add_job, node_settings, promote_blsgan

from blsnode.cli.main import cli
from dicom_node.db import Dispatch, DispatchState, Job, JobState, JointMeasurement, Output
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.destinations import add_destination
from dicom_node.db.types import utc_now
from dicom_node.queue.broker import DISPATCH_TASK, PROCESS_TASK, TaskSender
from dicom_node.settings import DestinationSettings, ResultKind, Settings
from worker.celery_app import WorkerApp, create_app
from worker.jobs import lease_renewed


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Settings, WorkerApp]]:
    """Settings of a node with one destination (nothing listening) and its worker app."""
    destination = {"name": "viewer", "ae_title": "VIEWER", "host": "127.0.0.1"}
    settings = node_settings(
        tmp_path / "node",
        destinations=[destination | {"port": free_port()}],
        dispatch={"backoff_initial_s": 30, "max_attempts": 2},
        # Re-runs after a lost worker are tested here; the default (1) makes such a job
        # poison (tests/test_worker/test_hostile_jobs.py).
        worker={"embedded": False, "max_job_attempts": 3},
    )
    promote_blsgan(settings.model_registry_dir)
    app = create_app(settings)
    yield settings, app
    app.context.close()


def _rows(app: WorkerApp, model: type) -> list[Any]:
    with app.context.database.sessions() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def test_process_records_outputs_and_dispatches_and_publishes_them(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, dx_left, ["viewer"])
    summary = app.tasks[PROCESS_TASK](job_id)
    assert summary["state"] == "done" and summary["outputs"] == 19
    (job,) = _rows(app, Job)
    assert job.state is JobState.DONE and job.attempts == 1 and job.reason is None
    outputs = _rows(app, Output)
    assert len(outputs) == 19
    assert {o.kind.value for o in outputs} == {"seg", "sc", "sr", "pr"}
    folder = settings.output_dir / dcmread(dx_left, stop_before_pixels=True).SOPInstanceUID
    assert sorted(Path(o.path) for o in outputs) == sorted(folder.iterdir())
    dispatches = _rows(app, Dispatch)
    assert [d.output_id for d in dispatches] == [o.id for o in outputs]
    assert all(d.state is DispatchState.PENDING and d.published_at for d in dispatches)
    assert summary["dispatch_ids"] == [d.id for d in dispatches]
    sender = TaskSender(settings)
    try:
        # One message for the 19 files of one destination: one association sends them.
        assert sender.queue_depths()["dispatch"] == 1
    finally:
        sender.close()


def test_a_rerun_replaces_outputs_without_duplicating(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, dx_left, ["viewer"])
    app.tasks[PROCESS_TASK](job_id)
    first = {o.sop_instance_uid: o.path for o in _rows(app, Output)}
    files = sorted(Path(next(iter(first.values()))).parent.iterdir())
    # A worker died after writing (its lease ran out): the broker delivers the message again.
    lost_at = utc_now() - timedelta(seconds=settings.worker.job_lease_s + 1)
    with app.context.database.sessions.begin() as session:
        job_rows.mark_running(session, job_id, now=lost_at)
    assert app.tasks[PROCESS_TASK](job_id)["state"] == "done"
    assert {o.sop_instance_uid: o.path for o in _rows(app, Output)} == first
    assert len(_rows(app, Dispatch)) == 19
    assert sorted(Path(next(iter(first.values()))).parent.iterdir()) == files
    # A duplicate message for a finished job does nothing.
    assert app.tasks[PROCESS_TASK](job_id)["state"] == "skipped"
    assert _rows(app, Job)[0].attempts == 3  # two runs and the simulated crash
    # The re-run replaced the five joints' measurements; the export lists each once.
    assert len(_rows(app, JointMeasurement)) == 5
    source = dcmread(dx_left, stop_before_pixels=True)
    export = ["--data-dir", str(settings.data_dir), "results", "export"]
    as_csv = CliRunner().invoke(cli, [*export, "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["joint"] for row in table] == ["MCP1", "MCP2", "MCP3", "MCP4", "MCP5"]
    assert {row["sop_instance_uid"] for row in table} == {source.SOPInstanceUID}
    assert {row["length_unit"] for row in table} == {"mm"}
    assert {row["spacing_source"] for row in table} == {"ImagerPixelSpacing"}
    as_json = CliRunner().invoke(cli, [*export, "--format", "json", "--study", "2.25.0"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    study = CliRunner().invoke(
        cli, [*export, "--format", "json", "--study", source.StudyInstanceUID]
    )
    rows = json.loads(study.stdout)
    assert [float(row["jsw_min"]) for row in table] == [row["jsw_min"] for row in rows]


def test_a_blank_image_fails_with_its_reason_in_jobs_list(
    node: tuple[Settings, WorkerApp], blank_dx: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, blank_dx, ["viewer"])
    summary = app.tasks[PROCESS_TASK](job_id)
    assert summary["state"] == "failed"
    (job,) = _rows(app, Job)
    assert job.state is JobState.FAILED
    assert job.reason.startswith("no hand found")
    assert _rows(app, Output) == [] and _rows(app, Dispatch) == []
    listed = CliRunner().invoke(
        cli, ["--data-dir", str(settings.data_dir), "jobs", "list", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)["jobs"]
    assert row["state"] == "failed" and row["reason"].startswith("no hand found")


def test_missing_file_and_missing_model_are_permanent(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path
) -> None:
    settings, app = node
    gone = shutil.copy(dx_left, tmp_path / "gone.dcm")
    job_id = add_job(settings, Path(gone), [])
    Path(gone).unlink()
    assert app.tasks[PROCESS_TASK](job_id)["reason"].startswith("source file missing")
    unpromoted = node_settings(tmp_path / "bare", models={"use_shipped_weights": False})
    bare = create_app(unpromoted)
    try:
        job_id = add_job(unpromoted, dx_left, [])
        summary = bare.tasks[PROCESS_TASK](job_id)
        assert summary["state"] == "failed"
        assert "model is promoted" in summary["reason"]
        assert "shipped weights are turned off" in summary["reason"]
    finally:
        bare.context.close()
    assert app.tasks[PROCESS_TASK](987654)["state"] == "unknown"


def test_transient_errors_propagate_for_a_retry_and_queue_the_job_again(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, dx_left, [])
    settings.output_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.output_dir.write_text("a file where the output folder should be")
    with pytest.raises(OSError):
        app.tasks[PROCESS_TASK](job_id)
    # Back in the queue for the retry: not left running under a live lease (which would
    # turn into poison once the lease ran out).
    assert _rows(app, Job)[0].state is JobState.QUEUED
    settings.output_dir.unlink()
    assert app.tasks[PROCESS_TASK](job_id)["state"] == "done"


def test_a_running_job_renews_its_lease_so_the_sweeper_leaves_it(
    tmp_path: Path, dx_left: Path
) -> None:
    # A one-second lease renewed every 0.2 s by the worker's heartbeat, held for several
    # leases; then the heartbeat stops (as when its worker dies) and the lease runs out.
    settings = node_settings(tmp_path / "node", worker={"job_lease_s": 1})
    lease = timedelta(seconds=settings.worker.job_lease_s)
    app = create_app(settings)

    def expire() -> list[int]:
        with app.context.database.sessions.begin() as session:
            expired = job_rows.expire_running_jobs(session, utc_now(), lease, 3)
        return [*expired.requeued, *expired.failed]

    try:
        job_id = add_job(settings, dx_left, [])
        with app.context.database.sessions.begin() as session:
            assert job_rows.claim_job(session, job_id) is not None
        requeued: list[int] = []
        with lease_renewed(app.context, job_id):
            deadline = time.monotonic() + 3 * lease.total_seconds()
            while time.monotonic() < deadline:
                requeued += expire()
                time.sleep(0.1)
        assert requeued == []
        assert _rows(app, Job)[0].state is JobState.RUNNING
        time.sleep(1.5 * lease.total_seconds())
        assert expire() == [job_id]
        assert _rows(app, Job)[0].state is JobState.QUEUED
    finally:
        app.context.close()


def test_an_unreachable_database_is_transient(tmp_path: Path, dx_left: Path) -> None:
    settings = node_settings(tmp_path / "node", database={"url": "sqlite:////nonexistent/x.db"})
    app = create_app(settings)
    with pytest.raises(OperationalError):
        app.tasks[PROCESS_TASK](1)
    with pytest.raises(OperationalError):
        app.tasks[DISPATCH_TASK](1)


def test_dispatch_sends_to_a_real_storescp(
    node: tuple[Settings, WorkerApp], dx_left: Path, tmp_path: Path
) -> None:
    settings, _ = node
    with running_storescp(tmp_path / "received") as viewer:
        destination = {"name": "viewer", "ae_title": viewer.ae_title, "host": "127.0.0.1"}
        live = node_settings(settings.data_dir, destinations=[destination | {"port": viewer.port}])
        app = create_app(live)
        try:
            app.tasks[PROCESS_TASK](add_job(live, dx_left, ["viewer"]))
            for dispatch in _rows(app, Dispatch):
                result = app.tasks[DISPATCH_TASK](dispatch.id)
                assert result["state"] == "sent", result
            outputs = {o.sop_instance_uid: o.sop_class_uid for o in _rows(app, Output)}
            assert viewer.received() == outputs
            assert all(d.state is DispatchState.SENT for d in _rows(app, Dispatch))
            # A duplicate message for a sent dispatch sends nothing.
            assert app.tasks[DISPATCH_TASK](_rows(app, Dispatch)[0].id)["attempted"] is False
            assert app.tasks[DISPATCH_TASK](987654)["state"] == "unknown"
        finally:
            app.context.close()


def test_a_failed_dispatch_waits_for_its_row_and_the_sweeper_then_dies(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    """The row owns retry timing: the task does not retry; the sweeper publishes when due."""
    settings, app = node
    app.tasks[PROCESS_TASK](add_job(settings, dx_left, ["viewer"]))
    dispatch = _rows(app, Dispatch)[0]
    before = utc_now()
    result = app.tasks[DISPATCH_TASK](dispatch.id)  # the viewer is down: no Celery retry
    assert result["state"] == "pending" and result["attempts"] == 1
    rows = _rows(app, Dispatch)
    assert len(rows) == 19  # the whole batch failed on the same association
    assert all(d.state is DispatchState.PENDING and d.attempts == 1 for d in rows)
    assert all(d.next_attempt_at - before >= timedelta(seconds=30) for d in rows)
    assert all(d.published_at is None for d in rows)  # left for the sweeper
    with app.context.database.sessions.begin() as session:
        due_now = dispatch_rows.dispatches_to_publish(session, utc_now(), timedelta(seconds=900))
        assert due_now == []  # not before its backoff
        session.get(Dispatch, dispatch.id).next_attempt_at = utc_now()
        due_now = dispatch_rows.dispatches_to_publish(session, utc_now(), timedelta(seconds=900))
    assert due_now == [dispatch.id]
    result = app.tasks[DISPATCH_TASK](dispatch.id)
    assert result["state"] == "dead" and result["attempts"] == 2
    assert result["error"] == "viewer did not associate"


def test_a_job_whose_retries_are_spent_records_why(
    node: tuple[Settings, WorkerApp], dx_left: Path
) -> None:
    settings, app = node
    job_id = add_job(settings, dx_left, [])
    task = app.tasks[PROCESS_TASK]
    # What Celery calls when the last retry failed too, or a bug escaped the task.
    task.on_failure(OSError("No space left on device"), "task-id", (job_id,), {}, None)
    (job,) = _rows(app, Job)
    assert job.state is JobState.FAILED
    assert job.reason == "gave up after 0 retries: OSError: No space left on device"
    task.on_failure(KeyError("x"), "task-id", (job_id,), {}, None)
    assert _rows(app, Job)[0].reason == "internal error: KeyError: 'x'"


def test_a_destination_gets_only_the_kinds_of_result_it_takes(
    tmp_path: Path, dx_left: Path
) -> None:
    viewer = {"ae_title": "VIEWER", "host": "127.0.0.1", "port": free_port()}
    settings = node_settings(
        tmp_path / "node",
        destinations=[
            viewer | {"name": "pacs"},
            viewer | {"name": "gsps", "results": ["pr", "sr"]},
        ],
    )
    promote_blsgan(settings.model_registry_dir)
    app = create_app(settings)
    try:
        # One added from the command line or the dashboard (stored in the database).
        with app.context.database.sessions.begin() as session:
            add_destination(
                session,
                DestinationSettings(name="seg-only", **viewer, results=[ResultKind.SEG]),
            )
        job_id = add_job(settings, dx_left, ["pacs", "gsps", "seg-only"])
        assert app.tasks[PROCESS_TASK](job_id)["state"] == "done"
        outputs = {o.id: o.kind.value for o in _rows(app, Output)}
        sent = {}
        for dispatch in _rows(app, Dispatch):
            sent.setdefault(dispatch.destination, []).append(outputs[dispatch.output_id])
    finally:
        app.context.close()
    assert sorted(sent["pacs"]) == sorted(outputs.values())  # all 19
    assert sorted(sent["gsps"]) == ["pr", "sr"]
    assert sent["seg-only"] == ["seg"]
