"""Per-joint measurements of processed radiographs: recorded by the worker, exported.

One row per MCP joint and job. The export joins each row to its radiograph's study,
series and instance UIDs and study date (never patient data), in a stable order, so
statistics software gets one row per joint of every processed radiograph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicom_node.db.models import Instance, Job, JointMeasurement, Series, Study
from dicom_node.db.types import utc_now


@dataclass(frozen=True)
class JointRow:
    """What the worker records for one joint (see :class:`JointMeasurement`)."""

    side: str
    joint: str
    model_name: str
    model_version: str
    jsw_min: float | None
    jsw_mean: float | None
    overlap_depth: float | None
    length_unit: str
    spacing_source: str
    overlap_area: float
    area_unit: str
    k: float
    patient_pseudonym: str | None = None
    prior_sop_instance_uid: str | None = None
    interval_days: int | None = None
    jsw_min_change: float | None = None
    jsw_mean_change: float | None = None
    jsw_registered_change: float | None = None


@dataclass(frozen=True)
class PriorJoint:
    """A joint as measured on the patient's previous radiograph of that hand."""

    sop_instance_uid: str
    study_date: str | None
    jsw_min: float | None
    jsw_mean: float | None
    length_unit: str
    spacing_source: str


EXPORT_COLUMNS = (
    "study_instance_uid",
    "study_date",
    "series_instance_uid",
    "sop_instance_uid",
    "job_id",
    "side",
    "joint",
    "jsw_min",
    "jsw_mean",
    "overlap_depth",
    "length_unit",
    "spacing_source",
    "overlap_area",
    "area_unit",
    "k",
    "prior_sop_instance_uid",
    "interval_days",
    "jsw_min_change",
    "jsw_mean_change",
    "jsw_min_change_per_year",
    "jsw_registered_change",
    "jsw_registered_change_per_year",
    "model_name",
    "model_version",
    "measured_at",
)


def record_joint_measurements(
    session: Session, job_id: int, rows: Sequence[JointRow], now: datetime | None = None
) -> None:
    """Replace the measurements of ``job_id`` by ``rows`` (a re-run leaves no stale row)."""
    keys = [(row.side, row.joint) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"job {job_id} lists a joint twice: {keys}")
    if session.get(Job, job_id) is None:
        raise ValueError(f"no job with id {job_id}")
    session.execute(delete(JointMeasurement).where(JointMeasurement.job_id == job_id))
    when = now or utc_now()
    session.add_all(JointMeasurement(job_id=job_id, created_at=when, **asdict(r)) for r in rows)
    session.flush()


def export_rows(session: Session, study_instance_uid: str | None = None) -> list[dict[str, Any]]:
    """Every joint row (of one study if given), oldest radiograph first, then side, joint."""
    query = (
        select(JointMeasurement, Instance, Series, Study)
        .join(Job, JointMeasurement.job_id == Job.id)
        .join(Instance, Job.instance_id == Instance.id)
        .join(Series, Instance.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .order_by(JointMeasurement.job_id, JointMeasurement.side, JointMeasurement.joint)
    )
    if study_instance_uid is not None:
        query = query.where(Study.study_instance_uid == study_instance_uid)
    rows = []
    for measurement, instance, series, study in session.execute(query):
        rows.append(
            {
                "study_instance_uid": study.study_instance_uid,
                "study_date": study.study_date,
                "series_instance_uid": series.series_instance_uid,
                "sop_instance_uid": instance.sop_instance_uid,
                "job_id": measurement.job_id,
                "side": measurement.side,
                "joint": measurement.joint,
                "jsw_min": measurement.jsw_min,
                "jsw_mean": measurement.jsw_mean,
                "overlap_depth": measurement.overlap_depth,
                "length_unit": measurement.length_unit,
                "spacing_source": measurement.spacing_source,
                "overlap_area": measurement.overlap_area,
                "area_unit": measurement.area_unit,
                "k": measurement.k,
                "prior_sop_instance_uid": measurement.prior_sop_instance_uid,
                "interval_days": measurement.interval_days,
                "jsw_min_change": measurement.jsw_min_change,
                "jsw_mean_change": measurement.jsw_mean_change,
                "jsw_min_change_per_year": _per_year(
                    measurement.jsw_min_change, measurement.interval_days
                ),
                "jsw_registered_change": measurement.jsw_registered_change,
                "jsw_registered_change_per_year": _per_year(
                    measurement.jsw_registered_change, measurement.interval_days
                ),
                "model_name": measurement.model_name,
                "model_version": measurement.model_version,
                "measured_at": measurement.created_at.isoformat(),
            }
        )
    return rows


def _per_year(change: float | None, days: int | None) -> float | None:
    return None if change is None or not days else change * 365.25 / days


def prior_joints(
    session: Session, pseudonym: str, study_date: str, sop_instance_uid: str
) -> dict[tuple[str, str], PriorJoint]:
    """Each joint of the patient's latest radiograph per hand from before ``study_date``.

    Only radiographs with an earlier study date (DICOM DA, ``YYYYMMDD``) count, so a
    re-send of the same or a later study is never its own baseline. Keys are
    ``(side, joint)``; a hand seen on no earlier radiograph has no keys.
    """
    query = (
        select(JointMeasurement, Instance.sop_instance_uid, Study.study_date)
        .join(Job, JointMeasurement.job_id == Job.id)
        .join(Instance, Job.instance_id == Instance.id)
        .join(Series, Instance.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .where(JointMeasurement.patient_pseudonym == pseudonym)
        .where(Instance.sop_instance_uid != sop_instance_uid)
        .where(Study.study_date.is_not(None), Study.study_date != "")
        .where(Study.study_date < study_date)
        .order_by(Study.study_date, JointMeasurement.job_id)
    )
    latest: dict[str, int] = {}
    found: dict[tuple[str, str], PriorJoint] = {}
    for measurement, uid, date in session.execute(query):
        # Ordered oldest first: a later radiograph of the hand replaces all its joints.
        if latest.get(measurement.side, measurement.job_id) != measurement.job_id:
            found = {key: v for key, v in found.items() if key[0] != measurement.side}
        latest[measurement.side] = measurement.job_id
        found[(measurement.side, measurement.joint)] = PriorJoint(
            sop_instance_uid=uid,
            study_date=date,
            jsw_min=measurement.jsw_min,
            jsw_mean=measurement.jsw_mean,
            length_unit=measurement.length_unit,
            spacing_source=measurement.spacing_source,
        )
    return found
