"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

# The C-STORE path books on a Core ``Connection`` (an ORM ``Session`` costs about as much
# as the statements themselves); every other caller passes a ``Session``.
Executor = Session | Connection


def core_connection(executor: Executor) -> Connection:
    """The Core connection behind ``executor`` (a session's, in its transaction)."""
    if isinstance(executor, Session):
        return executor.connection()
    if isinstance(executor, Connection):
        return executor
    raise TypeError(f"expected a Session or a Connection, not {type(executor).__name__}")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of time the database holds)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone and returns naive values; without this, comparisons between
    stored and fresh times would raise on SQLite and work on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the database holds UTC-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
