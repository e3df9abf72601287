"""Engines and sessions: SQLite (WAL, immediate transactions) or PostgreSQL by URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.db.migrate import upgrade_to_head

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL, full sync, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction.

    pysqlite opens transactions lazily (``BEGIN DEFERRED``); two writers that both read
    first then deadlock on the upgrade to a write lock and fail at once instead of
    waiting. Taking the write lock at ``BEGIN`` makes them queue on ``busy_timeout``.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` URLs use psycopg 3."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"database URL must be a non-empty string, not {url!r}")
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise ValueError(f"database URL {url!r}: the node needs an SQLite file, not memory")
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


@dataclass(frozen=True)
class Database:
    """An engine and its session factory, built once per process and passed down."""

    engine: Engine
    sessions: sessionmaker[Session]

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str, migrate: bool = True) -> Database:
    """Connect to ``url`` and, unless ``migrate`` is false, upgrade the schema to head."""
    engine = create_db_engine(url)
    if migrate:
        upgrade_to_head(engine)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
