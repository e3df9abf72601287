"""Alembic environment: always online, on the connection the caller passes in."""

from __future__ import annotations

from alembic import context

from dicom_node.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through dicom_node.db.migrate.upgrade_to_head (no connection given)"
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
