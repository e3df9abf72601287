"""Instances and their study/series grouping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.orm import Session

from dicom_node.db._upsert import upsert_id
from dicom_node.db.models import Instance, Series, Study
from dicom_node.db.types import Executor, core_connection, utc_now


@dataclass(frozen=True)
class InstanceRecord:
    """What the bookkeeping keeps of a received instance (no patient identifiers)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    path: str
    size_bytes: int
    modality: str | None = None
    study_date: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part_examined: str | None = None
    view_position: str | None = None
    calling_ae_title: str | None = None
    own_output: bool = False


def find_instance(session: Session, sop_instance_uid: str) -> Instance | None:
    """The instance with this SOP Instance UID, if stored."""
    return session.scalars(
        select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
    ).one_or_none()


# Built once: statement construction costs more than SQLite's execution of it, and these
# run on every C-STORE while the sender waits.
_INSTANCE_ID = select(Instance.id).where(Instance.sop_instance_uid == bindparam("uid"))
_SERIES_ID = select(Series.id).where(Series.series_instance_uid == bindparam("uid"))
_INSERT_INSTANCE = insert(Instance).returning(Instance.id)


def instance_id(executor: Executor, sop_instance_uid: str) -> int | None:
    """The id of the instance with this SOP Instance UID, if stored (one cheap query)."""
    found = core_connection(executor).execute(_INSTANCE_ID, {"uid": sop_instance_uid}).scalar()
    return None if found is None else int(found)


def known_uids(session: Session, sop_instance_uids: list[str]) -> set[str]:
    """Which of these SOP Instance UIDs are stored (queried in chunks)."""
    known: set[str] = set()
    for start in range(0, len(sop_instance_uids), 500):
        chunk = sop_instance_uids[start : start + 500]
        known.update(
            session.scalars(
                select(Instance.sop_instance_uid).where(Instance.sop_instance_uid.in_(chunk))
            )
        )
    return known


def _series_id(connection: Connection, record: InstanceRecord, now: datetime) -> int:
    # Nearly every instance belongs to a known series: one read, and no write, then.
    known = connection.execute(_SERIES_ID, {"uid": record.series_instance_uid}).scalar()
    if known is not None:
        return int(known)
    study_id = upsert_id(
        connection,
        Study.__table__,  # type: ignore[arg-type]
        {
            "study_instance_uid": record.study_instance_uid,
            "study_date": record.study_date,
            "created_at": now,
        },
        "study_instance_uid",
    )
    return upsert_id(
        connection,
        Series.__table__,  # type: ignore[arg-type]
        {
            "series_instance_uid": record.series_instance_uid,
            "study_id": study_id,
            "modality": record.modality,
            "series_number": record.series_number,
            "series_description": record.series_description,
            "body_part_examined": record.body_part_examined,
            "created_at": now,
        },
        "series_instance_uid",
    )


def add_instance(executor: Executor, record: InstanceRecord, now: datetime | None = None) -> int:
    """Add an instance, creating its study and series rows on first sight; return its id.

    Core statements rather than ORM objects: this runs once per C-STORE, and every
    round trip is time the sender waits for its response.
    """
    when = now or utc_now()
    connection = core_connection(executor)
    values = {
        "sop_instance_uid": record.sop_instance_uid,
        "sop_class_uid": record.sop_class_uid,
        "series_id": _series_id(connection, record, when),
        "transfer_syntax_uid": record.transfer_syntax_uid,
        "view_position": record.view_position,
        "path": record.path,
        "size_bytes": record.size_bytes,
        "calling_ae_title": record.calling_ae_title,
        "own_output": record.own_output,
        "received_at": when,
    }
    return int(connection.execute(_INSERT_INSTANCE, values).scalar_one())


def count_instances(session: Session) -> int:
    """How many instances are stored."""
    return int(session.scalar(select(func.count(Instance.id))) or 0)


def count_studies_and_series(session: Session) -> tuple[int, int]:
    """How many studies and series the stored instances form."""
    studies = int(session.scalar(select(func.count(Study.id))) or 0)
    series = int(session.scalar(select(func.count(Series.id))) or 0)
    return studies, series


def replace_instance_file(
    session: Session,
    instance_id: int,
    size_bytes: int,
    transfer_syntax_uid: str,
    calling_ae_title: str | None,
    now: datetime | None = None,
) -> None:
    """Record that the instance's spooled file now holds a resend's content."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise ValueError(f"no instance with id {instance_id}")
    instance.size_bytes = size_bytes
    instance.transfer_syntax_uid = transfer_syntax_uid
    instance.calling_ae_title = calling_ae_title
    instance.received_at = now or utc_now()
