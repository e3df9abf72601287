"""``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflict(
    session: Session, table: Table, values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """Insert ``values`` unless a row with the same ``conflict_columns`` exists.

    Two associations can bring the first two instances of one series at the same moment;
    an insert that ignores the loser's conflict avoids an error and a retry.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ValueError(f"unsupported database dialect {dialect!r}")
    session.execute(
        statement.values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    )
