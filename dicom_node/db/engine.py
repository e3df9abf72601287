"""Engines and sessions: SQLite (WAL, immediate transactions) or PostgreSQL by URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.db.migrate import upgrade_to_head
from dicom_node.settings import Settings

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "blsnode_read_only"
# Connections that run one SELECT at a time need no transaction of their own: SQLite
# gives a lone statement its own consistent snapshot (saves BEGIN and ROLLBACK).
SINGLE_STATEMENT_OPTION = "blsnode_single_statement"


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    """WAL, the sync level, foreign keys, and ``BEGIN IMMEDIATE`` for writing transactions.

    pysqlite opens transactions lazily (``BEGIN DEFERRED``); two writers that both read
    first then deadlock on the upgrade to a write lock and fail at once instead of
    waiting. Taking the write lock at ``BEGIN`` makes them queue on ``busy_timeout``.
    Sessions from ``Database.reader`` only read and begin deferred, so they never wait
    for a writer (WAL lets readers and one writer run side by side).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(SINGLE_STATEMENT_OPTION):
            return
        if options.get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, sqlite_synchronous: str = "normal") -> Engine:
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
        # LIFO: a listener thread gets back the connection it used last, whose page cache
        # is still valid; FIFO handed out the connection that another thread's write had
        # made stale, so every C-STORE re-read its index pages.
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            pool_use_lifo=True,
        )
        if sqlite_synchronous not in ("normal", "full"):
            raise ValueError(
                f"sqlite_synchronous must be normal or full, not {sqlite_synchronous!r}"
            )
        _configure_sqlite(engine, sqlite_synchronous)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


@dataclass(frozen=True)
class Database:
    """An engine and its session factories, built once per process and passed down.

    ``sessions`` for work that writes; ``reader`` for work that only reads (on SQLite it
    does not take the write lock). The C-STORE path skips the ORM: ``engine.begin()``
    for its one write transaction and ``lookups.connect()`` for single-statement reads
    (outside any transaction: autocommit on PostgreSQL, no ``BEGIN`` on SQLite).
    """

    engine: Engine
    sessions: sessionmaker[Session]
    reader: sessionmaker[Session]
    lookups: Engine

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_database(url: str, migrate: bool = True, sqlite_synchronous: str = "normal") -> Database:
    """Connect to ``url`` and, unless ``migrate`` is false, upgrade the schema to head."""
    engine = create_db_engine(url, sqlite_synchronous)
    if migrate:
        upgrade_to_head(engine)
    reading = engine.execution_options(**{READ_ONLY_OPTION: True})
    if engine.dialect.name == "sqlite":
        lookups = engine.execution_options(**{SINGLE_STATEMENT_OPTION: True})
    else:
        lookups = engine.execution_options(isolation_level="AUTOCOMMIT")
    return Database(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        reader=sessionmaker(reading, expire_on_commit=False),
        lookups=lookups,
    )


def database_error(error: SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and web link."""
    original = getattr(error, "orig", None)
    return str(original) if original is not None else type(error).__name__


def open_node_database(settings: Settings, migrate: bool = True) -> Database:
    """The node's database as the settings describe it; a fresh data folder is created.

    Raises ``ValueError`` naming the folder when it cannot be created.
    """
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cannot create the data folder {settings.data_dir}: {error.strerror or error}"
        ) from error
    return open_database(settings.database_url, migrate, settings.database.sqlite_synchronous.value)
