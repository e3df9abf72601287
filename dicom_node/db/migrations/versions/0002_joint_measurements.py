"""Joint measurements: one row per MCP joint of every processed radiograph, with follow-up.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "joint_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("joint", sa.String(length=8), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("jsw_min", sa.Float(), nullable=True),
        sa.Column("jsw_mean", sa.Float(), nullable=True),
        sa.Column("overlap_depth", sa.Float(), nullable=True),
        sa.Column("length_unit", sa.String(length=16), nullable=False),
        sa.Column("spacing_source", sa.String(length=32), nullable=False),
        sa.Column("overlap_area", sa.Float(), nullable=False),
        sa.Column("area_unit", sa.String(length=16), nullable=False),
        sa.Column("k", sa.Float(), nullable=False),
        sa.Column("patient_pseudonym", sa.String(length=64), nullable=True),
        sa.Column("prior_sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("interval_days", sa.Integer(), nullable=True),
        sa.Column("jsw_min_change", sa.Float(), nullable=True),
        sa.Column("jsw_mean_change", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_joint_measurements_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_joint_measurements")),
        sa.UniqueConstraint("job_id", "side", "joint", name=op.f("uq_joint_measurements_job_id")),
    )
    op.create_index(
        op.f("ix_joint_measurements_job_id"), "joint_measurements", ["job_id"], unique=False
    )
    op.create_index(
        op.f("ix_joint_measurements_patient_pseudonym"),
        "joint_measurements",
        ["patient_pseudonym"],
        unique=False,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_joint_measurements_patient_pseudonym"), table_name="joint_measurements")
    op.drop_index(op.f("ix_joint_measurements_job_id"), table_name="joint_measurements")
    op.drop_table("joint_measurements")
