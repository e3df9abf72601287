"""Alembic, run programmatically: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

VERSION_TABLE = "alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: serialises concurrent start-ups (listener and workers) on PostgreSQL.
_PG_MIGRATION_LOCK = 0x626C736E


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations, no ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema at ``engine`` to the newest revision (idempotent).

    On SQLite, foreign keys are off while migrations run: a migration that changes a
    table there copies it and drops the original, which other tables refer to (Alembic's
    batch mode). The pragma only takes effect outside a transaction, so it is set on the
    driver's connection before the migration's transaction begins; the references are
    checked before that transaction commits.
    """
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database.

    Read straight from Alembic's version table: cheap enough for every metrics scrape.
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
