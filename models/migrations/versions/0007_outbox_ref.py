"""chat: what an outbox message's buttons act on (``ref``), so they can be removed

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=60), nullable=False,
                                   server_default=""))
        batch.create_index("ix_outbox_ref", ["ref", "chat_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_ref")
        batch.drop_column("ref")
