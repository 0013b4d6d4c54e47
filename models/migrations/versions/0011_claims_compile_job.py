"""compile jobs claimed by one process (several processes on PostgreSQL); the version of
an office's settings (every process sees a set-up import at once)

Revision ID: 0011_claims
Revises: 0010
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = "0011_claims"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compile_job") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_at", models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table("office") as batch:
        batch.add_column(sa.Column("settings_version", sa.Integer(), nullable=False,
                                   server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("office") as batch:
        batch.drop_column("settings_version")
    with op.batch_alter_table("compile_job") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
