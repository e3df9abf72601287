"""The bookkeeping tables: what arrived, what is to be done with it, and where it went.

States are Python enums stored by value (portable ``VARCHAR`` + ``CHECK``), timestamps are
UTC-aware. Patient identifiers are not stored: the spooled file is the source of truth.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dicom_node.db.types import UTCDateTime, utc_now
from dicom_node.settings import SendWhat

# Deterministic constraint names, so Alembic migrations can refer to them on every back end.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UID_LENGTH = 64
AE_TITLE_LENGTH = 16
PATH_LENGTH = 1024


class JobState(enum.StrEnum):
    """Life of a processing job; ``queued`` until a worker takes it."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DispatchState(enum.StrEnum):
    """Life of one file sent to one destination; ``dead`` after the last failed attempt."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


class OutputKind(enum.StrEnum):
    """The derived objects a job writes."""

    SEG = "seg"
    SC = "sc"
    SR = "sr"
    PR = "pr"  # Grayscale Softcopy Presentation State


def _enum(enum_class: type[enum.Enum], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Study(Base):
    """A study seen by the node (grouping only; no patient data)."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    study_date: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    series: Mapped[list[Series]] = relationship(back_populates="study")


class Series(Base):
    """A series within a study, with the attributes routing rules look at."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(64))
    body_part_examined: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series")


class Instance(Base):
    """One received SOP instance, spooled durably at ``path`` exactly as it arrived."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    view_position: Mapped[str | None] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    calling_ae_title: Mapped[str | None] = mapped_column(String(AE_TITLE_LENGTH))
    own_output: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)

    series: Mapped[Series] = relationship(back_populates="instances")
    job: Mapped[Job | None] = relationship(back_populates="instance")


class Job(Base):
    """Processing of one instance; the broker carries only its id."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_published", "state", "published_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    rule: Mapped[str] = mapped_column(String(64))
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), default=JobState.QUEUED)
    # Destination names for the results, fixed when the job is created.
    result_destinations: Mapped[list[str]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    instance: Mapped[Instance] = relationship(back_populates="job")
    outputs: Mapped[list[Output]] = relationship(back_populates="job")


class Output(Base):
    """A derived DICOM object written by a job."""

    __tablename__ = "outputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    kind: Mapped[OutputKind] = mapped_column(_enum(OutputKind, "output_kind"))
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    job: Mapped[Job] = relationship(back_populates="outputs")


class JointMeasurement(Base):
    """One MCP joint's numbers from one processed radiograph (the export's rows).

    Widths are in ``length_unit`` (UCUM ``mm``, or ``{pixels}`` without spacing) on the
    scale ``spacing_source`` names; negative widths are overlaps; ``None`` when the
    joint's masks share no column. With a follow-up, the change since the prior
    radiograph of the same hand. A re-run replaces the job's rows.
    """

    __tablename__ = "joint_measurements"
    __table_args__ = (UniqueConstraint("job_id", "side", "joint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    side: Mapped[str] = mapped_column(String(1))
    joint: Mapped[str] = mapped_column(String(8))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    jsw_min: Mapped[float | None] = mapped_column(Float)
    jsw_mean: Mapped[float | None] = mapped_column(Float)
    overlap_depth: Mapped[float | None] = mapped_column(Float)
    length_unit: Mapped[str] = mapped_column(String(16))
    spacing_source: Mapped[str] = mapped_column(String(32))
    overlap_area: Mapped[float] = mapped_column(Float)
    area_unit: Mapped[str] = mapped_column(String(16))
    k: Mapped[float] = mapped_column(Float)
    # Keyed pseudonym of the patient (HMAC, see settings.followup); never the Patient ID.
    patient_pseudonym: Mapped[str | None] = mapped_column(String(64), index=True)
    prior_sop_instance_uid: Mapped[str | None] = mapped_column(String(UID_LENGTH))
    interval_days: Mapped[int | None] = mapped_column(Integer)
    jsw_min_change: Mapped[float | None] = mapped_column(Float)
    jsw_mean_change: Mapped[float | None] = mapped_column(Float)
    # Change at the joint centre from registering the prior's layers (same unit).
    jsw_registered_change: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    job: Mapped[Job] = relationship()


class Dispatch(Base):
    """One file (an original instance or an output) to be sent to one destination."""

    __tablename__ = "dispatches"
    __table_args__ = (
        CheckConstraint("(instance_id IS NULL) <> (output_id IS NULL)", name="exactly_one_source"),
        UniqueConstraint("destination", "instance_id", name="uq_dispatches_destination_instance"),
        UniqueConstraint("destination", "output_id", name="uq_dispatches_destination_output"),
        Index("ix_dispatches_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    output_id: Mapped[int | None] = mapped_column(ForeignKey("outputs.id"), index=True)
    state: Mapped[DispatchState] = mapped_column(
        _enum(DispatchState, "dispatch_state"), default=DispatchState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column()

    instance: Mapped[Instance | None] = relationship()
    output: Mapped[Output | None] = relationship()


class Destination(Base):
    """A destination added from the command line (the settings file holds the others)."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    ae_title: Mapped[str] = mapped_column(String(AE_TITLE_LENGTH))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    send: Mapped[SendWhat] = mapped_column(_enum(SendWhat, "send_what"), default=SendWhat.RESULTS)
    transfer_syntax: Mapped[str | None] = mapped_column(String(UID_LENGTH))
    # The result kinds it takes, comma-separated ("pr,sr"); None: every kind.
    results: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Role(enum.StrEnum):
    """What a dashboard user may do: ``viewer`` reads, ``admin`` also changes things."""

    ADMIN = "admin"
    VIEWER = "viewer"


class User(Base):
    """A person who may log in to the web dashboard; only an Argon2 hash of the password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    password_changed_at: Mapped[datetime] = mapped_column(default=utc_now)


class WebLogin(Base):
    """A logged-in dashboard session, so that it outlives a restart of ``serve``.

    Only a SHA-256 of the cookie's token is stored: whoever reads the database cannot
    present it. Logging out deletes the row; an expired one is ignored and swept.
    """

    __tablename__ = "web_logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(_enum(Role, "web_login_role"))
    logged_in_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)
