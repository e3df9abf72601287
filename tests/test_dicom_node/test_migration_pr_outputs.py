"""Migration 0003 on a database with rows: outputs may then be presentation states, and the
dispatches that refer to the copied outputs table keep their rows and foreign keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from dicom_node.db.engine import create_db_engine
from dicom_node.db.migrate import alembic_config, upgrade_to_head

ROWS = (
    "insert into studies (id, study_instance_uid, created_at) values (1, '1.2', '2026-01-01')",
    "insert into series (id, series_instance_uid, study_id, created_at) "
    "values (1, '1.3', 1, '2026-01-01')",
    "insert into instances (id, sop_instance_uid, sop_class_uid, series_id, "
    "transfer_syntax_uid, path, size_bytes, own_output, received_at) "
    "values (1, '1.4', '1.5', 1, '1.2.840.10008.1.2.1', '/x', 1, 0, '2026-01-01')",
    "insert into jobs (id, instance_id, rule, state, result_destinations, attempts, "
    "created_at, updated_at) values (1, 1, 'r', 'done', '[]', 1, '2026-01-01', '2026-01-01')",
    "insert into outputs (id, job_id, kind, sop_instance_uid, sop_class_uid, "
    "series_instance_uid, path, created_at) values (1, 1, 'seg', '1.6', '1.7', '1.8', '/y', "
    "'2026-01-01')",
    "insert into dispatches (id, destination, output_id, state, attempts, next_attempt_at, "
    "created_at, updated_at) values (1, 'd', 1, 'pending', 0, '2026-01-01', '2026-01-01', "
    "'2026-01-01')",
)


def _output(kind: str, number: int) -> str:
    return (
        "insert into outputs (id, job_id, kind, sop_instance_uid, sop_class_uid, "
        f"series_instance_uid, path, created_at) values ({number}, 1, '{kind}', '2.{number}', "
        "'1.7', '1.8', '/y', '2026-01-01')"
    )


def test_presentation_state_kind_is_added_to_a_database_in_use(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
        with pytest.raises(IntegrityError), connection.begin_nested():  # before: no such kind
            connection.execute(text(_output("pr", 2)))
    upgrade_to_head(engine)
    with engine.begin() as connection:
        assert connection.execute(text("select count(*) from dispatches")).scalar() == 1
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA foreign_key_check")).fetchall() == []
        connection.execute(text(_output("pr", 2)))
        # The check still refuses unknown kinds.
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(text(_output("xx", 3)))
    engine.dispose()
