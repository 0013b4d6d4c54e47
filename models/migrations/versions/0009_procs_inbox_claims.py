"""inbox: which process claimed an unprocessed row (several processes on PostgreSQL)

Revision ID: 0009
Revises: 0008_offices
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = "0009"
down_revision = "0008_offices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_at", models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
