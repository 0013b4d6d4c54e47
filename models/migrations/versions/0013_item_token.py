"""a random token of each cycle's items, written anew by triggers at every change of its
cycle_indicator rows or their indicator rows: a process keeps a bidang's items while
the token stays the same (read at every data-entry update before)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.workflow import drop_item_token_ddl, item_token_ddl


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_token",
        sa.Column("cycle_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", name=op.f("pk_item_token")),
    )
    dialect = op.get_bind().dialect.name
    for statement in item_token_ddl(dialect):
        op.execute(statement)
    # the cycles that have items now get a token, as if their items were just written
    # (from here on, a cycle with no row is one that never had items)
    op.execute("UPDATE cycle_indicator SET position = position")


def downgrade() -> None:
    for statement in drop_item_token_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("item_token")
