"""``INSERT ... ON CONFLICT`` on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def _insert(connection: Connection, table: Table) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect {dialect!r}")


def upsert_id(connection: Connection, table: Table, values: dict[str, Any], key: str) -> int:
    """Insert ``values`` unless a row with the same ``key`` exists; return the row's id.

    Two associations can bring the first instances of one series at the same moment: one
    statement that inserts or finds the row avoids an error and a retry. The conflict
    branch rewrites the key with itself so that ``RETURNING`` yields the existing id.
    """
    statement = _insert(connection, table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_={key: statement.excluded[key]}
    ).returning(table.c.id)
    return int(connection.execute(statement).scalar_one())
