"""trust: signing capacity, outbox failures, durable intake, audit, upload quota

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import models.base  # noqa: F401


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -- signing capacity --------------------------------------------------------
    # -- outbox failures ---------------------------------------------------------
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('failed_reason', sa.Text(), nullable=False,
                                   server_default=''))
    # -- durable intake ----------------------------------------------------------
    op.create_table('group_chat',
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('chat_type', sa.String(length=20), nullable=False),
    sa.Column('told_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('chat_id', name=op.f('pk_group_chat'))
    )
    # -- audit -------------------------------------------------------------------
    # -- uploads -----------------------------------------------------------------
    pass


def downgrade() -> None:
    # -- uploads -----------------------------------------------------------------
    # -- audit -------------------------------------------------------------------
    # -- durable intake ----------------------------------------------------------
    op.drop_table('group_chat')
    # -- outbox failures ---------------------------------------------------------
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('failed_reason')
    # -- signing capacity --------------------------------------------------------
    pass
