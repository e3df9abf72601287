"""Bookkeeping on SQLite and a real PostgreSQL: schema, grouping, states, retries, retention."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from dicom_node.db import (
    Database,
    DispatchState,
    JobState,
    OutputKind,
    dispatches,
    jobs,
    open_database,
    outputs,
    retention,
)
from dicom_node.db import destinations as destination_rows
from dicom_node.db.instances import (
    InstanceRecord,
    add_instance,
    count_instances,
    count_studies_and_series,
    find_instance,
    instance_id,
)
from dicom_node.db.migrate import alembic_config, current_revision
from dicom_node.db.models import Base
from dicom_node.settings import DestinationSettings, SendWhat

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def record(n: int, series: str = "1.2.3.1", study: str = "1.2.3") -> InstanceRecord:
    return InstanceRecord(
        sop_instance_uid=f"1.2.3.1.{n}",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
        study_instance_uid=study,
        series_instance_uid=series,
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        path=f"/spool/{n}.dcm",
        size_bytes=1000 + n,
        modality="DX",
        body_part_examined="HAND",
        view_position="PA",
        calling_ae_title="MODALITY",
    )


def test_migrations_build_exactly_the_models(database: Database) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(database.engine) == head
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "studies",
        "series",
        "instances",
        "jobs",
        "outputs",
        "dispatches",
        "destinations",
    } <= tables
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    first = open_database(database_url)
    with first.sessions.begin() as session:
        add_instance(session, record(1))
    first.dispose()
    second = open_database(database_url)
    with second.sessions() as session:
        assert count_instances(session) == 1
    second.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wal.db'}")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_sqlite_in_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="memory"):
        open_database("sqlite://")


def test_instances_are_grouped_by_study_and_series(database: Database) -> None:
    with database.sessions.begin() as session:
        add_instance(session, record(1), now=T0)
        add_instance(session, record(2), now=T0)
        add_instance(session, record(3, series="1.2.3.2"), now=T0)
        add_instance(session, record(4, series="1.2.4.1", study="1.2.4"), now=T0)
    with database.sessions() as session:
        assert count_instances(session) == 4
        assert count_studies_and_series(session) == (2, 3)
        stored = find_instance(session, "1.2.3.1.2")
        assert stored is not None
        assert stored.series.series_instance_uid == "1.2.3.1"
        assert stored.series.study.study_instance_uid == "1.2.3"
        assert stored.series.body_part_examined == "HAND"
        assert stored.received_at == T0
        assert stored.received_at.tzinfo is not None
        assert find_instance(session, "9.9") is None


def test_a_second_row_for_one_sop_instance_uid_is_refused(database: Database) -> None:
    with database.sessions.begin() as session:
        add_instance(session, record(1))
    with pytest.raises(IntegrityError), database.sessions.begin() as session:
        add_instance(session, record(1))


def test_core_booking_and_lookups_outside_a_transaction(database: Database) -> None:
    # The C-STORE path: one Core write transaction, then single-statement lookups.
    with database.engine.begin() as connection:
        first = add_instance(connection, record(1), now=T0)
        job_id = jobs.create_job(connection, first, "hand-pa", ["PACS"], now=T0)
        dispatch_ids = dispatches.add_instance_dispatches(connection, first, ["A", "B"], T0)
    with database.lookups.connect() as connection:
        assert instance_id(connection, "1.2.3.1.1") == first
        assert instance_id(connection, "1.2.3.1.2") is None
        driver = connection.connection.driver_connection
        if database.engine.dialect.name == "sqlite":
            assert not driver.in_transaction  # type: ignore[union-attr]
        else:
            assert driver.autocommit  # type: ignore[union-attr]
        # A writer commits while the lookup connection is open, and the next lookup sees it.
        with database.engine.begin() as writer:
            second = add_instance(writer, record(2), now=T0)
        assert instance_id(connection, "1.2.3.1.2") == second
    with database.sessions() as session:
        job = jobs.get_job(session, job_id)
        assert job is not None and job.state is JobState.QUEUED
        assert job.result_destinations == ["PACS"]
        sent = [dispatches.get_dispatch(session, number) for number in dispatch_ids]
        assert [(d.destination, d.instance_id, d.state) for d in sent if d is not None] == [
            ("A", first, DispatchState.PENDING),
            ("B", first, DispatchState.PENDING),
        ]


def test_concurrent_first_instances_of_one_series_share_its_row(database: Database) -> None:
    errors: list[BaseException] = []

    def store(n: int) -> None:
        try:
            with database.sessions.begin() as session:
                add_instance(session, record(n, series="7.7", study="7"))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=store, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.sessions() as session:
        assert count_instances(session) == 8
        assert count_studies_and_series(session) == (1, 1)


def test_job_lifecycle_and_publication(database: Database) -> None:
    with database.sessions.begin() as session:
        instance = add_instance(session, record(1))
        job_id = jobs.create_job(session, instance, "hand-pa", ["PACS"], now=T0)
    republish = timedelta(minutes=15)
    with database.sessions.begin() as session:
        assert jobs.jobs_to_publish(session, T0, republish) == [job_id]
        jobs.mark_jobs_published(session, [job_id], T0)
    with database.sessions.begin() as session:
        assert jobs.jobs_to_publish(session, T0 + timedelta(minutes=1), republish) == []
        # A message that may have been lost with the broker is published again, later.
        assert jobs.jobs_to_publish(session, T0 + timedelta(minutes=16), republish) == [job_id]
        jobs.mark_running(session, job_id, now=T0)
    with database.sessions.begin() as session:
        assert jobs.jobs_to_publish(session, T0 + timedelta(days=1), republish) == []
        jobs.mark_failed(session, job_id, "no hand found", now=T0)
    with database.sessions.begin() as session:
        assert jobs.job_counts(session) == {"queued": 0, "running": 0, "done": 0, "failed": 1}
        failed = jobs.get_job(session, job_id)
        assert failed is not None
        assert failed.reason == "no hand found"
        assert failed.attempts == 1
        assert failed.result_destinations == ["PACS"]
        assert jobs.requeue_failed_jobs(session, [job_id + 100]) == []
        assert jobs.requeue_failed_jobs(session) == [job_id]
    with database.sessions.begin() as session:
        assert jobs.jobs_to_publish(session, T0, republish) == [job_id]
        jobs.mark_running(session, job_id)
        jobs.mark_done(session, job_id)
    with database.sessions() as session:
        assert jobs.job_counts(session)["done"] == 1
        assert [j.id for j in jobs.list_jobs(session, JobState.DONE)] == [job_id]
        assert jobs.list_jobs(session, JobState.FAILED) == []


def test_jobs_running_past_their_lease_are_queued_again_then_failed(database: Database) -> None:
    lease = timedelta(minutes=30)
    with database.sessions.begin() as session:
        lost = jobs.create_job(session, add_instance(session, record(1)), "hand-pa", [], now=T0)
        busy = jobs.create_job(session, add_instance(session, record(2)), "hand-pa", [], now=T0)
        jobs.mark_jobs_published(session, [lost, busy], T0)
        jobs.claim_job(session, lost, now=T0)
        jobs.claim_job(session, busy, now=T0 + timedelta(minutes=20))
    with database.sessions.begin() as session:
        expired = jobs.expire_running_jobs(session, T0 + timedelta(minutes=29), lease, 2)
        assert (expired.requeued, expired.failed) == ([], [])
        later = T0 + timedelta(minutes=31)
        assert jobs.expire_running_jobs(session, later, lease, 2).requeued == [lost]
        # Unpublished again, so the sweep that requeued it publishes it at once.
        assert jobs.jobs_to_publish(session, later, timedelta(hours=1)) == [lost]
        assert jobs.get_job(session, busy).state is JobState.RUNNING
        # A live worker renews its job's lease: busy does not expire, however long it runs.
        assert jobs.touch_running_job(session, busy, now=T0 + timedelta(minutes=45))
        assert (
            jobs.expire_running_jobs(session, T0 + timedelta(minutes=70), lease, 2).requeued == []
        )
        assert not jobs.touch_running_job(session, lost, now=later)  # queued: nothing to renew
    with database.sessions.begin() as session:
        # Its second worker is lost too: the job fails instead of killing a third.
        assert jobs.claim_job(session, lost, now=later).attempts == 2
        expired = jobs.expire_running_jobs(session, T0 + timedelta(minutes=80), lease, 2)
        assert expired.requeued == [busy] and expired.failed == [lost]
        failed = jobs.get_job(session, lost)
        assert failed.state is JobState.FAILED
        assert failed.reason.startswith("poison: the worker running this job was lost 2 time(s)")
        # An administrator's retry starts its count afresh.
        assert jobs.requeue_failed_jobs(session, [lost]) == [lost]
        assert jobs.get_job(session, lost).attempts == 0
        with pytest.raises(ValueError, match="lease"):
            jobs.expire_running_jobs(session, T0, timedelta(0), 2)
        with pytest.raises(ValueError, match="max_attempts"):
            jobs.expire_running_jobs(session, T0, lease, 0)


def test_a_job_claimed_again_after_its_worker_died_is_poison(database: Database) -> None:
    with database.sessions.begin() as session:
        job_id = jobs.create_job(session, add_instance(session, record(7)), "hand-pa", [], now=T0)
        claimed = jobs.claim_job(session, job_id, now=T0, max_attempts=1)
        # The claim carries what the listener booked, for the worker to check its file.
        assert claimed is not None and claimed.attempts == 1
        assert (claimed.sop_instance_uid, claimed.sop_class_uid) == (
            "1.2.3.1.7",
            "1.2.840.10008.5.1.4.1.1.1.1",
        )
        assert (claimed.study_instance_uid, claimed.series_instance_uid) == ("1.2.3", "1.2.3.1")
    lease = timedelta(minutes=5)
    with database.sessions.begin() as session:
        # Its worker renews the lease: a duplicate message changes nothing.
        soon = T0 + timedelta(minutes=1)
        assert jobs.claim_job(session, job_id, now=soon, max_attempts=1, lease=lease) is None
        assert jobs.get_job(session, job_id).state is JobState.RUNNING
    with database.sessions.begin() as session:
        # The worker died (no renewal for a lease); the message comes again: not run again.
        later = T0 + timedelta(minutes=6)
        assert jobs.claim_job(session, job_id, now=later, max_attempts=1, lease=lease) is None
        job = jobs.get_job(session, job_id)
        assert job.state is JobState.FAILED and job.attempts == 1
        assert job.reason.startswith("poison: the worker running this job was lost 1 time(s)")
        assert f"blsnode jobs retry {job_id}" in job.reason
    with database.sessions.begin() as session:
        # With more attempts allowed, a redelivered running job runs again.
        assert jobs.requeue_failed_jobs(session, [job_id]) == [job_id]
        jobs.claim_job(session, job_id, now=T0, max_attempts=2)
        assert jobs.claim_job(session, job_id, now=T0, max_attempts=2).attempts == 2


def test_job_functions_name_bad_values(database: Database) -> None:
    with database.sessions() as session:
        with pytest.raises(ValueError, match="no job with id 42"):
            jobs.mark_running(session, 42)
        with pytest.raises(ValueError, match="reason"):
            jobs.mark_failed(session, 42, "")
        with pytest.raises(ValueError, match="limit"):
            jobs.list_jobs(session, limit=0)


def claim_one(session, dispatch_id: int, now):
    """Claim this dispatch alone (a batch of one): the claimed row, or ``None``."""
    return next(iter(dispatches.claim_due_batch(session, dispatch_id, now, limit=1)), None)


def test_dispatch_attempts_backoff_dead_letter_and_revival(database: Database) -> None:
    with database.sessions.begin() as session:
        instance = add_instance(session, record(1))
        first = dispatches.create_dispatch(session, "PACS", instance_id=instance, now=T0)
        again = dispatches.create_dispatch(session, "PACS", instance_id=instance, now=T0)
        assert again.id == first.id
        dispatch_id = first.id
    with database.sessions.begin() as session:
        assert dispatches.dispatches_to_publish(session, T0, timedelta(hours=1)) == [dispatch_id]
        dispatches.mark_dispatches_published(session, [dispatch_id], T0)
        claimed = claim_one(session, dispatch_id, T0)
        assert claimed is not None
        assert claimed.attempts == 1
        assert dispatches.get_dispatch(session, dispatch_id).state is DispatchState.SENDING
    with database.sessions.begin() as session:
        # A duplicate message while it is being sent does nothing.
        assert claim_one(session, dispatch_id, T0) is None
        retry_at = T0 + timedelta(seconds=30)
        dispatches.record_failure(session, dispatch_id, "refused", T0, retry_at, status=0xA700)
    with database.sessions.begin() as session:
        assert claim_one(session, dispatch_id, T0 + timedelta(seconds=10)) is None
        assert dispatches.dispatches_to_publish(session, T0, timedelta(hours=1)) == []
        due = T0 + timedelta(seconds=31)
        assert dispatches.dispatches_to_publish(session, due, timedelta(hours=1)) == [dispatch_id]
        assert claim_one(session, dispatch_id, due) is not None
        dispatches.record_failure(session, dispatch_id, "refused again", due, None)
    with database.sessions.begin() as session:
        dead = dispatches.get_dispatch(session, dispatch_id)
        assert dead is not None
        assert dead.state is DispatchState.DEAD
        assert dead.attempts == 2
        assert dead.last_error == "refused again"
        assert dispatches.dispatch_counts(session)["dead"] == 1
        assert dispatches.revive_dead_dispatches(session, now=T0) == [dispatch_id]
    with database.sessions.begin() as session:
        revived = claim_one(session, dispatch_id, T0)
        assert revived is not None
        assert revived.attempts == 1
        dispatches.record_sent(session, dispatch_id, 0x0000, T0)
    with database.sessions() as session:
        assert dispatches.dispatch_counts(session) == {
            "pending": 0,
            "sending": 0,
            "sent": 1,
            "dead": 0,
        }


def test_a_batch_claims_the_due_dispatches_of_one_destination(database: Database) -> None:
    with database.sessions.begin() as session:
        ids = {}
        for number, (name, due) in enumerate(
            [("PACS", T0), ("PACS", T0), ("VIEWER", T0), ("PACS", T0 + timedelta(hours=1)),
             ("PACS", T0), ("PACS", T0)],
            start=1,
        ):  # fmt: skip
            instance = add_instance(session, record(number))
            ids[number] = dispatches.create_dispatch(
                session, name, instance_id=instance, now=due
            ).id
    with database.sessions.begin() as session:
        # The named dispatch first, then the oldest due of its destination, up to the limit.
        first = dispatches.claim_due_batch(session, ids[5], T0, limit=3)
        assert [c.dispatch_id for c in first] == [ids[5], ids[1], ids[2]]
        assert [c.attempts for c in first] == [1, 1, 1]
        assert {c.destination for c in first} == {"PACS"}
        assert all(c.path and c.path.endswith(".dcm") for c in first)
    with database.sessions.begin() as session:
        # A message whose own dispatch went with another batch still drains what is due;
        # another destination's and a not yet due dispatch stay.
        second = dispatches.claim_due_batch(session, ids[1], T0, limit=3)
        assert [c.dispatch_id for c in second] == [ids[6]]
        assert dispatches.claim_due_batch(session, ids[2], T0, limit=3) == []
        states = {i: dispatches.get_dispatch(session, d).state for i, d in ids.items()}
        assert [i for i, state in states.items() if state is DispatchState.PENDING] == [3, 4]
        with pytest.raises(ValueError, match="limit"):
            dispatches.claim_due_batch(session, ids[3], T0, limit=0)
        groups = dispatches.publishing_groups(session, list(ids.values()), batch_size=2)
        assert groups == [[ids[1], ids[2]], [ids[4], ids[5]], [ids[6]], [ids[3]]]


def test_workers_claiming_at_once_never_take_the_same_dispatch(database: Database) -> None:
    with database.sessions.begin() as session:
        ids = [
            dispatches.create_dispatch(
                session, "PACS", instance_id=add_instance(session, record(n)), now=T0
            ).id
            for n in range(1, 41)
        ]
    claims: list[list[int]] = []
    start = threading.Barrier(4)

    def worker(own: int) -> None:
        start.wait()
        for _ in range(5):
            with database.sessions.begin() as session:
                batch = dispatches.claim_due_batch(session, own, T0, limit=3)
            claims.append([c.dispatch_id for c in batch])

    threads = [threading.Thread(target=worker, args=(ids[n],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    taken = [identifier for batch in claims for identifier in batch]
    assert len(taken) == len(set(taken)) == 40  # 4 x 5 claims of 3 cover all 40, once each
    with database.sessions() as session:
        assert all(dispatches.get_dispatch(session, i).attempts == 1 for i in ids)


def test_stale_sending_dispatches_become_pending(database: Database) -> None:
    with database.sessions.begin() as session:
        instance = add_instance(session, record(1))
        dispatch_id = dispatches.create_dispatch(session, "PACS", instance_id=instance, now=T0).id
        claim_one(session, dispatch_id, T0)
    with database.sessions.begin() as session:
        stale_after = timedelta(minutes=15)
        assert (
            dispatches.release_stale_sending(session, T0 + timedelta(minutes=5), stale_after) == []
        )
        later = T0 + timedelta(minutes=20)
        assert dispatches.release_stale_sending(session, later, stale_after) == [dispatch_id]
        assert dispatches.dispatches_to_publish(session, later, stale_after) == [dispatch_id]


def test_dispatch_needs_exactly_one_source(database: Database) -> None:
    with database.sessions() as session:
        with pytest.raises(ValueError, match="exactly one"):
            dispatches.create_dispatch(session, "PACS")
        with pytest.raises(ValueError, match="exactly one"):
            dispatches.create_dispatch(session, "PACS", instance_id=1, output_id=1)


def test_outputs_of_a_rerun_replace_rather_than_duplicate(database: Database) -> None:
    with database.sessions.begin() as session:
        instance = add_instance(session, record(1))
        job_id = jobs.create_job(session, instance, "hand-pa", ["PACS"])
        first = outputs.record_output(
            session,
            job_id,
            OutputKind.SEG,
            "2.25.1",
            "1.2.840.10008.5.1.4.1.1.66.4",
            "2.25.9",
            "/out/a.dcm",
        )
        again = outputs.record_output(
            session,
            job_id,
            OutputKind.SEG,
            "2.25.1",
            "1.2.840.10008.5.1.4.1.1.66.4",
            "2.25.9",
            "/out/b.dcm",
        )
        assert again.id == first.id
        dispatches.create_dispatch(session, "PACS", output_id=first.id)
        instance_id = instance
    with database.sessions() as session:
        assert [o.path for o in outputs.outputs_of_job(session, job_id)] == ["/out/b.dcm"]
        assert len(dispatches.dispatches_of_job(session, job_id, instance_id)) == 1
        with pytest.raises(ValueError, match="belongs to job"):
            outputs.record_output(session, job_id + 1, OutputKind.SEG, "2.25.1", "x", "y", "z")


def test_retention_keeps_unfinished_work(database: Database) -> None:
    old, new = T0 - timedelta(days=40), T0
    with database.sessions.begin() as session:
        done = add_instance(session, record(1), now=old)
        done_job = jobs.create_job(session, done, "hand-pa", ["PACS"])
        jobs.mark_done(session, done_job)
        output = outputs.record_output(
            session, done_job, OutputKind.SR, "2.25.5", "1.2", "2.25.6", "/out/sr.dcm"
        )
        sent = dispatches.create_dispatch(session, "PACS", output_id=output.id)
        dispatches.record_sent(session, sent.id, 0, T0)
        queued = add_instance(session, record(2), now=old)
        jobs.create_job(session, queued, "hand-pa", [])
        waiting = add_instance(session, record(3, series="5.5", study="5"), now=old)
        dispatches.create_dispatch(session, "PACS", instance_id=waiting)
        add_instance(session, record(4, series="6.6", study="6"), now=new)
        plain_old = add_instance(session, record(5, series="8.8", study="8"), now=old)
        done_id, plain_id = done, plain_old
    with database.sessions.begin() as session:
        purgeable = retention.purgeable_instances(session, T0 - timedelta(days=30))
        assert purgeable == [done_id, plain_id]
        paths = retention.delete_instances(session, purgeable)
    assert sorted(paths) == ["/out/sr.dcm", "/spool/1.dcm", "/spool/5.dcm"]
    with database.sessions() as session:
        assert count_instances(session) == 3
        assert dispatches.dispatch_counts(session)["sent"] == 0
        # The emptied series 8.8 and study 8 went; study 1.2.3 keeps instance 2.
        assert count_studies_and_series(session) == (3, 3)


def test_destinations_stored_from_the_cli(database: Database) -> None:
    pacs = DestinationSettings(
        name="PACS", ae_title="ORTHANC", host="127.0.0.1", port=4242, send=SendWhat.ALL
    )
    with database.sessions.begin() as session:
        destination_rows.add_destination(session, pacs)
    with database.sessions.begin() as session:
        with pytest.raises(ValueError, match="exists already"):
            destination_rows.add_destination(session, pacs)
        assert destination_rows.stored_destinations(session) == [pacs]
        assert destination_rows.remove_destination(session, "PACS") is True
        assert destination_rows.remove_destination(session, "PACS") is False
    with database.sessions() as session:
        assert destination_rows.stored_destinations(session) == []
    # The kinds of result it takes survive the round trip, in one order, each once.
    fields = pacs.model_dump() | {"name": "VIEWER", "results": ["pr", "sr", "pr"]}
    viewer = DestinationSettings(**fields)
    assert viewer.results == ["sr", "pr"]
    with database.sessions.begin() as session:
        destination_rows.add_destination(session, viewer)
    with database.sessions() as session:
        assert destination_rows.stored_destinations(session) == [viewer]
    with pytest.raises(ValueError, match="leave it out for every kind"):
        DestinationSettings(name="none", ae_title="A", host="h", port=1, results=[])
