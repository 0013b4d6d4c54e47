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
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('mode', sa.String(length=20), server_default='sha256',
                                   nullable=False))
        batch.add_column(sa.Column('keyed_from', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    # -- uploads -----------------------------------------------------------------
    pass


def downgrade() -> None:
    # -- uploads -----------------------------------------------------------------
    # -- audit -------------------------------------------------------------------
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('key_id')
        batch.drop_column('keyed_from')
        batch.drop_column('mode')
    # -- durable intake ----------------------------------------------------------
    op.drop_table('group_chat')
    # -- outbox failures ---------------------------------------------------------
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('failed_reason')
    # -- signing capacity --------------------------------------------------------
    pass
