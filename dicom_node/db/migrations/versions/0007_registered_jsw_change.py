"""Joint measurements keep the JSW change found by registering the prior's layers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("joint_measurements") as batch_op:
        batch_op.add_column(sa.Column("jsw_registered_change", sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("joint_measurements") as batch_op:
        batch_op.drop_column("jsw_registered_change")
