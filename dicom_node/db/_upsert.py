"""``INSERT ... ON CONFLICT`` on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect {dialect!r}")


def upsert_id(session: Session, table: Table, values: dict[str, Any], key: str) -> int:
    """Insert ``values`` unless a row with the same ``key`` exists; return the row's id.

    Two associations can bring the first instances of one series at the same moment: one
    statement that inserts or finds the row avoids an error and a retry. The conflict
    branch rewrites the key with itself so that ``RETURNING`` yields the existing id.
    """
    statement = _insert(session, table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={key: statement.excluded[key]}
    ).returning(table.c.id)
    return int(session.execute(statement).scalar_one())
