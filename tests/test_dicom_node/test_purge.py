"""``blsnode purge``: finished, old instances go with their files; unfinished work stays."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from node_testing import CT_IMAGE, hand_dataset, store_datasets
from sqlalchemy import select, update

from blsnode.cli.main import cli
from dicom_node.db import Instance, Job
from dicom_node.db import jobs as job_rows
from dicom_node.db.types import utc_now


def test_purge_applies_retention(start_node) -> None:
    node = start_node()
    ct = hand_dataset(SOPClassUID=CT_IMAGE, Modality="CT")
    ct.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    done, waiting, recent = hand_dataset(seed=1), hand_dataset(seed=2), hand_dataset(seed=3)
    assert store_datasets(node.port, [done, waiting, ct, recent]) == [0, 0, 0, 0]
    old = utc_now() - timedelta(days=40)
    with node.database.sessions.begin() as session:
        uids = [done.SOPInstanceUID, waiting.SOPInstanceUID, ct.SOPInstanceUID]
        session.execute(
            update(Instance).where(Instance.sop_instance_uid.in_(uids)).values(received_at=old)
        )
        instance_of = {i.sop_instance_uid: i for i in session.scalars(select(Instance))}
        job = session.scalars(
            select(Job).where(Job.instance_id == instance_of[done.SOPInstanceUID].id)
        ).one()
        job_rows.mark_running(session, job.id)
        job_rows.mark_done(session, job.id)
    paths = {uid: Path(instance.path) for uid, instance in instance_of.items()}
    runner = CliRunner()
    base = ["--data-dir", str(node.settings.data_dir), "purge"]

    refused = runner.invoke(cli, base)
    assert refused.exit_code == 2
    assert "retention" in refused.output

    dry = runner.invoke(cli, [*base, "--older-than-days", "30", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["instances"] == 2
    assert all(path.exists() for path in paths.values())

    done_run = runner.invoke(cli, [*base, "--older-than-days", "30", "--json"])
    assert done_run.exit_code == 0, done_run.output
    report = json.loads(done_run.stdout)
    assert (report["instances"], report["files_removed"]) == (2, 2)
    assert report["bytes_freed"] > 0
    assert not paths[done.SOPInstanceUID].exists()
    assert not paths[ct.SOPInstanceUID].exists()
    # The CT's study folder is emptied and removed; the waiting job's file stays.
    assert not paths[ct.SOPInstanceUID].parent.parent.exists()
    assert paths[waiting.SOPInstanceUID].exists()
    assert paths[recent.SOPInstanceUID].exists()
    with node.database.sessions() as session:
        left = {i.sop_instance_uid for i in session.scalars(select(Instance))}
    assert left == {waiting.SOPInstanceUID, recent.SOPInstanceUID}
    # A store after the purge still works (the node keeps its folders).
    assert store_datasets(node.port, [hand_dataset(seed=4)]) == [0]
