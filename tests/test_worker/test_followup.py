"""Follow-up: a patient's second radiograph of a hand reports the change in JSW."""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import pytest
from click.testing import CliRunner
from dicom_factory import make_dx, write_dataset
from sqlalchemy import select
from worker_testing import SCALE, add_job, node_settings, promote_blsgan

from blsnode.cli.main import cli
from dicom_node.db import JointMeasurement
from dicom_node.derived import codes
from dicom_node.pseudonym import patient_pseudonym
from dicom_node.queue.broker import PROCESS_TASK
from worker.celery_app import create_app

SECRET = "test-site-secret-0123"


def _dx(atlas_image: Path, folder: Path, seed: str, date: str) -> Path:
    dataset = make_dx(atlas_image, scale=SCALE, uid_seed=seed)
    dataset.StudyDate = date
    return write_dataset(dataset, folder / f"{seed}.dcm")


def test_second_radiograph_reports_the_change_since_the_first(
    tmp_path: Path, atlas_image: Path
) -> None:
    settings = node_settings(tmp_path / "node", followup={"site_secret": SECRET})
    promote_blsgan(settings.model_registry_dir)
    baseline = _dx(atlas_image, tmp_path, "baseline", "20240117")
    followup = _dx(atlas_image, tmp_path, "followup", "20250116")
    app = create_app(settings)
    try:
        for source in (baseline, followup):
            job_id = add_job(settings, source, [])
            assert app.tasks[PROCESS_TASK](job_id)["state"] == "done"
        with app.context.database.sessions() as session:
            stored = list(session.scalars(select(JointMeasurement)))
    finally:
        app.context.close()
    # The raw Patient ID is nowhere; the keyed pseudonym links the two radiographs.
    assert {row.patient_pseudonym for row in stored} == {
        patient_pseudonym("BLSNODE-TEST-0001", "", SECRET)
    }
    export = ["--data-dir", str(settings.data_dir), "results", "export", "--format", "json"]
    result = CliRunner().invoke(cli, export)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 10
    first, second = rows[:5], rows[5:]
    assert all(row["prior_sop_instance_uid"] is None for row in first)
    baseline_uid = first[0]["sop_instance_uid"]
    for row in second:
        assert row["prior_sop_instance_uid"] == baseline_uid
        assert row["interval_days"] == 365
        # The same pixels a year later: the joint space did not change.
        assert row["jsw_min_change"] == pytest.approx(0.0, abs=1e-9)
        assert row["jsw_min_change_per_year"] == pytest.approx(0.0, abs=1e-9)
    folder = settings.output_dir / second[0]["sop_instance_uid"]
    report = hd.sr.srread(next(folder.glob("SR_*.dcm")))
    for row in second:
        # Registering the stored layers of the same pixels finds no motion either.
        assert row["jsw_registered_change"] == pytest.approx(0.0, abs=0.01)
    for group in report.content.get_planar_roi_measurement_groups():
        changes = [m for m in group.get_measurements() if m.name.value == codes.JSW_CHANGE.value]
        rates = [m for m in group.get_measurements() if m.name.value == codes.JSW_CHANGE_RATE.value]
        assert len(changes) == len(rates) == 2  # the masks' minimum, the registration
        assert {m.unit.value for m in changes} == {"mm"}
        assert {m.unit.value for m in rates} == {"mm/a"}
        assert changes[0].value == pytest.approx(0.0, abs=1e-9)
        registered = [
            m for m in changes if m.method and m.method.value == codes.LAYER_REGISTRATION.value
        ]
        assert len(registered) == 1 and abs(registered[0].value) < 0.01
