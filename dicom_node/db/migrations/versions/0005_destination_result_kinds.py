"""Destinations added from the command line or the dashboard may take some result kinds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade schema: ``results``, the kinds taken, comma-separated; NULL = every kind."""
    with op.batch_alter_table("destinations") as batch_op:
        batch_op.add_column(sa.Column("results", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Downgrade schema (such destinations then take every kind)."""
    with op.batch_alter_table("destinations") as batch_op:
        batch_op.drop_column("results")
