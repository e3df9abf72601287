"""Dispatch to a real Orthanc: transfer syntaxes, backoff, dead letter, revival, the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from node_testing import SECONDARY_CAPTURE, hand_dataset, save, store_datasets
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless
from sqlalchemy import select

from blsnode.cli.main import cli
from dicom_node.db import Dispatch, DispatchState, Instance, Job, OutputKind
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db import jobs as job_rows
from dicom_node.db.outputs import record_output
from dicom_node.db.types import utc_now
from dicom_node.send.dispatch import backoff_delay, send_dispatch
from dicom_node.settings import DispatchSettings


def archive(orthanc, **extra) -> dict:
    return {
        "name": "ARCHIVE",
        "ae_title": orthanc.ae_title,
        "host": "127.0.0.1",
        "port": orthanc.dicom_port,
        "send": "all",
        **extra,
    }


def only_dispatch(node) -> Dispatch:
    with node.database.sessions() as session:
        (dispatch,) = session.scalars(select(Dispatch)).all()
        return dispatch


def cli_args(node, tmp_path: Path, *args: str) -> list[str]:
    """The same settings for a CLI process: destinations and dispatch policy in a file."""
    config = tmp_path / "cli.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "destinations": [d.model_dump(mode="json") for d in node.settings.destinations],
                "dispatch": node.settings.dispatch.model_dump(mode="json"),
            }
        )
    )
    return ["--config", str(config), "--data-dir", str(node.settings.data_dir), *args]


def test_backoff_doubles_and_is_capped() -> None:
    policy = DispatchSettings(backoff_initial_s=30, backoff_max_s=100)
    assert [backoff_delay(n, policy).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 100, 100]
    with pytest.raises(ValueError, match="attempts"):
        backoff_delay(0, policy)


def test_original_is_sent_as_stored(start_node, running_orthanc) -> None:
    orthanc = running_orthanc
    node = start_node(destinations=[archive(orthanc)])
    ds = hand_dataset()
    assert store_datasets(node.port, [ds]) == [0]
    outcome = send_dispatch(node.settings, node.database, only_dispatch(node).id)
    assert outcome.state is DispatchState.SENT
    assert outcome.status == 0
    assert orthanc.instances()[ds.SOPInstanceUID] == ExplicitVRLittleEndian
    # A duplicate message for a sent dispatch does nothing.
    again = send_dispatch(node.settings, node.database, outcome.dispatch_id)
    assert (again.attempted, again.state, again.attempts) == (False, DispatchState.SENT, 1)


def test_failing_destination_that_comes_back(start_node, orthanc) -> None:
    node = start_node(destinations=[archive(orthanc)], dispatch={"backoff_initial_s": 30})
    ds = hand_dataset()
    assert store_datasets(node.port, [ds]) == [0]
    dispatch_id = only_dispatch(node).id
    now = utc_now()
    failed = send_dispatch(node.settings, node.database, dispatch_id, now=now)
    assert (failed.attempted, failed.state, failed.attempts) == (True, DispatchState.PENDING, 1)
    assert failed.next_attempt_at == now + timedelta(seconds=30)
    assert "ARCHIVE" in (failed.error or "")
    early = send_dispatch(node.settings, node.database, dispatch_id, now=now + timedelta(seconds=5))
    assert not early.attempted
    with node.database.sessions() as session:
        due = now + timedelta(seconds=31)
        assert dispatch_rows.dispatches_to_publish(session, due, timedelta(hours=1)) == [
            dispatch_id
        ]
    orthanc.start()
    sent = send_dispatch(node.settings, node.database, dispatch_id, now=now + timedelta(seconds=31))
    assert (sent.state, sent.attempts) == (DispatchState.SENT, 2)
    assert set(orthanc.instances()) == {ds.SOPInstanceUID}


def test_dead_letter_and_revival_from_the_cli(start_node, orthanc, tmp_path: Path) -> None:
    node = start_node(
        destinations=[archive(orthanc)], dispatch={"max_attempts": 2, "backoff_initial_s": 1}
    )
    assert store_datasets(node.port, [hand_dataset()]) == [0]
    dispatch_id = only_dispatch(node).id
    now = utc_now()
    first = send_dispatch(node.settings, node.database, dispatch_id, now=now)
    assert first.state is DispatchState.PENDING
    second = send_dispatch(
        node.settings, node.database, dispatch_id, now=now + timedelta(seconds=2)
    )
    assert (second.state, second.attempts, second.next_attempt_at) == (DispatchState.DEAD, 2, None)
    assert (
        send_dispatch(
            node.settings, node.database, dispatch_id, now=now + timedelta(days=1)
        ).attempted
        is False
    )

    runner = CliRunner()
    listed = runner.invoke(cli, cli_args(node, tmp_path, "status", "--json"))
    assert json.loads(listed.stdout)["dispatches"]["dead"] == 1
    revived = runner.invoke(
        cli, cli_args(node, tmp_path, "jobs", "retry", "--dispatch", str(dispatch_id), "--json")
    )
    assert revived.exit_code == 0, revived.output
    report = json.loads(revived.stdout)
    assert report["revived_dispatches"] == [dispatch_id]
    assert report["published"] == 1
    orthanc.start()
    sent = send_dispatch(node.settings, node.database, dispatch_id)
    assert (sent.state, sent.attempts) == (DispatchState.SENT, 1)


@pytest.mark.parametrize(
    ("source", "wanted"),
    [
        (ExplicitVRLittleEndian, JPEG2000Lossless),
        (ExplicitVRLittleEndian, RLELossless),
        (RLELossless, ExplicitVRLittleEndian),
    ],
)
def test_destination_transfer_syntax(start_node, running_orthanc, source: str, wanted: str) -> None:
    orthanc = running_orthanc
    node = start_node(destinations=[archive(orthanc, transfer_syntax=wanted)])
    ds = hand_dataset()
    if source != ExplicitVRLittleEndian:
        ds.compress(source, generate_instance_uid=False)
    assert store_datasets(node.port, [ds]) == [0]
    outcome = send_dispatch(node.settings, node.database, only_dispatch(node).id)
    assert outcome.state is DispatchState.SENT, outcome.error
    assert orthanc.instances()[ds.SOPInstanceUID] == wanted


def test_lossy_transcoding_is_refused_at_once(start_node, running_orthanc) -> None:
    orthanc = running_orthanc
    node = start_node(destinations=[archive(orthanc, transfer_syntax=JPEG2000)])
    ds = hand_dataset()
    assert store_datasets(node.port, [ds]) == [0]
    outcome = send_dispatch(node.settings, node.database, only_dispatch(node).id)
    assert (outcome.state, outcome.attempts) == (DispatchState.DEAD, 1)
    assert "lossy" in (outcome.error or "")
    assert ds.SOPInstanceUID not in orthanc.instances()


def test_outputs_are_sent_through_the_same_path(
    start_node, running_orthanc, tmp_path: Path
) -> None:
    orthanc = running_orthanc
    node = start_node(destinations=[archive(orthanc, send="results")])
    source = hand_dataset()
    assert store_datasets(node.port, [source]) == [0]
    output = hand_dataset(
        SOPClassUID=SECONDARY_CAPTURE, Modality="OT", Manufacturer="blsgan-node",
        StudyInstanceUID=source.StudyInstanceUID,
    )  # fmt: skip
    output.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    path = save(output, tmp_path / "outputs" / "sc.dcm")
    with node.database.sessions.begin() as session:
        (job,) = session.scalars(select(Job)).all()
        assert job.result_destinations == ["ARCHIVE"]
        job_rows.mark_running(session, job.id)
        recorded = record_output(
            session, job.id, OutputKind.SC, output.SOPInstanceUID, SECONDARY_CAPTURE,
            output.SeriesInstanceUID, str(path),
        )  # fmt: skip
        dispatch_id = dispatch_rows.create_dispatch(session, "ARCHIVE", output_id=recorded.id).id
        job_rows.mark_done(session, job.id)
    outcome = send_dispatch(node.settings, node.database, dispatch_id)
    assert outcome.state is DispatchState.SENT
    assert output.SOPInstanceUID in orthanc.instances()
    assert source.SOPInstanceUID not in orthanc.instances()


def test_destinations_cli(start_node, orthanc, tmp_path: Path) -> None:
    node = start_node(
        destinations=[{"name": "FILEDEST", "ae_title": "F", "host": "127.0.0.1", "port": 1}]
    )
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, cli_args(node, tmp_path, "destinations", *args))

    added = run(
        "add", "PACS", "--ae-title", orthanc.ae_title, "--host", "127.0.0.1",
        "--port", str(orthanc.dicom_port), "--send", "all",
        "--transfer-syntax", "RLELossless", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["added"]["transfer_syntax"] == RLELossless
    assert run("add", "PACS", "--ae-title", "X", "--host", "h", "--port", "1").exit_code == 1
    clash = run("add", "FILEDEST", "--ae-title", "X", "--host", "h", "--port", "1")
    assert clash.exit_code == 1 and "settings file" in clash.output
    bad = run("add", "BAD", "--ae-title", "WAY_TOO_LONG_AE_TITLE", "--host", "h", "--port", "1")
    assert bad.exit_code == 2
    viewer = run(
        "add", "VIEWER", "--ae-title", "V", "--host", "h", "--port", "1",
        "--results", "sr", "--results", "pr",
    )  # fmt: skip
    assert viewer.exit_code == 0, viewer.output
    assert run("add", "X", "--ae-title", "X", "--host", "h", "--port", "1", "--results", "jpg")\
        .exit_code == 2  # fmt: skip
    listing = json.loads(run("list", "--json").stdout)["destinations"]
    assert [(d["name"], d["source"], d["results"]) for d in listing] == [
        ("FILEDEST", "settings", None),
        ("PACS", "cli", None),
        ("VIEWER", "cli", ["sr", "pr"]),
    ]
    assert "sr,pr" in run("list").output
    assert run("remove", "VIEWER").exit_code == 0

    down = run("echo", "PACS", "--json")
    assert down.exit_code == 1
    assert json.loads(down.stdout)["ok"] is False
    orthanc.start()
    up = run("echo", "PACS", "--json")
    assert up.exit_code == 0, up.output
    assert json.loads(up.stdout)["status"] == 0
    assert "ok in" in run("echo", "PACS").output

    assert run("remove", "FILEDEST").exit_code == 1
    assert run("remove", "PACS", "--json").exit_code == 0
    assert run("remove", "PACS").exit_code == 1
    assert json.loads(run("list", "--json").stdout)["destinations"][0]["name"] == "FILEDEST"


def test_jobs_cli_lists_shows_and_retries(start_node, tmp_path: Path) -> None:
    node = start_node()
    assert store_datasets(node.port, [hand_dataset(), hand_dataset(seed=3)]) == [0, 0]
    with node.database.sessions.begin() as session:
        first, second = (job.id for job in session.scalars(select(Job).order_by(Job.id)))
        job_rows.mark_running(session, first)
        job_rows.mark_failed(session, first, "no hand found")
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(cli, cli_args(node, tmp_path, "jobs", *args))
        assert result.exit_code == 0, result.output
        return result

    failed = json.loads(run("list", "--state", "failed", "--json").stdout)["jobs"]
    assert [(j["id"], j["reason"]) for j in failed] == [(first, "no hand found")]
    assert len(json.loads(run("list", "--json").stdout)["jobs"]) == 2
    assert "no hand found" in run("list").output
    shown = json.loads(run("show", str(first), "--json").stdout)
    with node.database.sessions() as session:
        instance = session.get(Instance, shown["instance_id"])
        assert shown["instance"]["sop_instance_uid"] == instance.sop_instance_uid
    assert shown["outputs"] == [] and shown["dispatches"] == []
    assert "no hand found" in run("show", str(first)).output
    missing = runner.invoke(cli, cli_args(node, tmp_path, "jobs", "show", "999"))
    assert missing.exit_code == 1
    assert runner.invoke(cli, cli_args(node, tmp_path, "jobs", "retry")).exit_code == 2

    retried = json.loads(run("retry", str(first), str(second), "--json").stdout)
    assert retried["requeued_jobs"] == [first]
    assert retried["published"] == 1
    with node.database.sessions() as session:
        job = job_rows.get_job(session, first)
        assert job.state.value == "queued" and job.published_at is not None
    assert "re-queued jobs none" in run("retry", "--all").output
