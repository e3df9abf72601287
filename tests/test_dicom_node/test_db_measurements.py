"""Per-joint measurements: recorded per job, replaced on re-run, exported with UIDs."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dicom_node.admin.results import ExportFormat, _render
from dicom_node.db import Database
from dicom_node.db import jobs as job_rows
from dicom_node.db.instances import InstanceRecord, add_instance
from dicom_node.db.measurements import (
    EXPORT_COLUMNS,
    JointRow,
    export_rows,
    prior_joints,
    record_joint_measurements,
)


def _job(database: Database, n: int, study: str, date: str | None = None) -> int:
    with database.sessions.begin() as session:
        instance_id = add_instance(
            session,
            InstanceRecord(
                sop_instance_uid=f"1.2.3.9.{n}",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
                study_instance_uid=study,
                series_instance_uid=f"{study}.0",
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                path=f"/spool/{n}.dcm",
                size_bytes=1000,
                study_date=date,
            ),
        )
        return job_rows.create_job(session, instance_id, "hand-pa", [])


def _row(joint: str, jsw: float | None, side: str = "L", patient: str | None = None) -> JointRow:
    return JointRow(
        side=side,
        joint=joint,
        model_name="BLS-GAN",
        model_version="1",
        jsw_min=jsw,
        jsw_mean=None if jsw is None else jsw + 0.3,
        overlap_depth=None if jsw is None else max(0.0, -jsw),
        length_unit="mm",
        spacing_source="PixelSpacing",
        overlap_area=4.5,
        area_unit="mm2",
        k=0.75,
        patient_pseudonym=patient,
    )


def test_rows_are_replaced_on_rerun_and_exported_per_study(database: Database) -> None:
    first, second = _job(database, 1, "1.2.3.1"), _job(database, 2, "1.2.3.2")
    with database.sessions.begin() as session:
        record_joint_measurements(session, first, [_row("MCP2", 1.2), _row("MCP3", -0.4)])
        record_joint_measurements(session, second, [_row("MCP2", 0.9, side="R")])
    with database.sessions.begin() as session:  # the re-run of the first job
        record_joint_measurements(session, first, [_row("MCP2", 1.1), _row("MCP3", None)])
    with database.sessions.begin() as session:
        everything = export_rows(session)
        one = export_rows(session, "1.2.3.1")
    assert [(r["sop_instance_uid"], r["joint"]) for r in everything] == [
        ("1.2.3.9.1", "MCP2"),
        ("1.2.3.9.1", "MCP3"),
        ("1.2.3.9.2", "MCP2"),
    ]
    assert [r["jsw_min"] for r in one] == [1.1, None]
    assert one[1]["overlap_depth"] is None and one[0]["overlap_depth"] == 0.0
    assert set(everything[0]) == set(EXPORT_COLUMNS)
    table = list(csv.DictReader(io.StringIO(_render(everything, ExportFormat.CSV))))
    assert (
        len(table) == 3
        and table[1]["jsw_min"] == ""
        and float(table[0]["jsw_mean"]) == pytest.approx(1.4)
    )
    assert json.loads(_render(one, ExportFormat.JSON))[0]["study_instance_uid"] == "1.2.3.1"


def test_bad_rows_are_refused(database: Database) -> None:
    job = _job(database, 3, "1.2.3.3")
    with database.sessions.begin() as session, pytest.raises(ValueError, match="twice"):
        record_joint_measurements(session, job, [_row("MCP2", 1.0), _row("MCP2", 1.0)])
    with database.sessions.begin() as session, pytest.raises(ValueError, match="no job"):
        record_joint_measurements(session, 999, [_row("MCP2", 1.0)])


def test_prior_is_the_latest_earlier_radiograph_of_the_same_patient_and_hand(
    database: Database,
) -> None:
    dates = {1: "20220105", 2: "20230110", 3: "20240101", 4: "20230601", 5: ""}
    jobs = {n: _job(database, 10 + n, f"1.2.4.{n}", date or None) for n, date in dates.items()}
    with database.sessions.begin() as session:
        record_joint_measurements(session, jobs[1], [_row("MCP2", 1.5, patient="p")])
        record_joint_measurements(
            session, jobs[2], [_row("MCP2", 1.3, patient="p"), _row("MCP3", 1.0, patient="p")]
        )
        record_joint_measurements(session, jobs[4], [_row("MCP2", 0.2, patient="other")])
        record_joint_measurements(session, jobs[5], [_row("MCP2", 0.1, patient="p")])
        record_joint_measurements(session, jobs[3], [_row("MCP2", 1.2, patient="p")])
    with database.sessions.begin() as session:
        priors = prior_joints(session, "p", "20240101", "1.2.3.9.13")
        first = prior_joints(session, "p", "20220105", "1.2.3.9.11")
        other_hand = prior_joints(session, "p", "20240101", "1.2.3.9.13")
    # Job 2 (2023) is the latest earlier one; job 1 is older, job 4 another patient,
    # job 5 undated, job 3 the radiograph itself.
    assert set(priors) == {("L", "MCP2"), ("L", "MCP3")}
    assert priors[("L", "MCP2")].jsw_min == 1.3
    assert priors[("L", "MCP2")].sop_instance_uid == "1.2.3.9.12"
    assert priors[("L", "MCP2")].study_date == "20230110"
    assert first == {} and ("R", "MCP2") not in other_hand
