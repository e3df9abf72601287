"""Outputs may be Grayscale Softcopy Presentation States (kind ``pr``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_CONSTRAINT = "ck_outputs_output_kind"


def _kinds(*kinds: str) -> None:
    # SQLite cannot alter a CHECK in place: batch mode copies the table (foreign keys are
    # off meanwhile, see dicom_node.db.migrate).
    with op.batch_alter_table("outputs", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(_CONSTRAINT), type_="check")
        listed = ", ".join(f"'{kind}'" for kind in kinds)
        batch_op.create_check_constraint(op.f(_CONSTRAINT), f"kind IN ({listed})")


def upgrade() -> None:
    """Upgrade schema."""
    _kinds("seg", "sc", "sr", "pr")


def downgrade() -> None:
    """Downgrade schema (presentation state rows must be deleted first)."""
    _kinds("seg", "sc", "sr")
