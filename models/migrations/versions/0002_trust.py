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
    with op.batch_alter_table('approval') as batch:
        batch.add_column(sa.Column('capacity', sa.String(length=200), nullable=False,
                                   server_default=''))
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
    op.create_table('inbox',
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('chat_key', sa.BigInteger(), nullable=True),
    sa.Column('received_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('processed_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('update_id', name=op.f('pk_inbox'))
    )
    op.create_index('ix_inbox_unprocessed', 'inbox', ['processed_at', 'update_id'], unique=False)
    # the inbox replaces it: an update is processed once because its inbox row is marked
    op.drop_table('processed_update')
    # -- audit -------------------------------------------------------------------
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('mode', sa.String(length=20), server_default='sha256',
                                   nullable=False))
        batch.add_column(sa.Column('keyed_from', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    # -- uploads -----------------------------------------------------------------
    with op.batch_alter_table('evidence') as batch:
        batch.add_column(sa.Column('added_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_evidence_added_by_id_person'), 'person',
                                 ['added_by_id'], ['id'])
    # -- signature (issue 14) ----------------------------------------------------
    with op.batch_alter_table('document') as batch:
        batch.add_column(sa.Column('approved_sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('signature', sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('approval') as batch:
        batch.add_column(sa.Column('workbook_sha256', sa.String(length=64), nullable=False,
                                   server_default=''))
    # -- aggregation (issue 15) --------------------------------------------------
    with op.batch_alter_table('indicator') as batch:
        batch.add_column(sa.Column('aggregation', sa.String(length=10), nullable=True))
    pass


def downgrade() -> None:
    # -- aggregation (issue 15) --------------------------------------------------
    with op.batch_alter_table('indicator') as batch:
        batch.drop_column('aggregation')
    # -- signature (issue 14) ----------------------------------------------------
    with op.batch_alter_table('approval') as batch:
        batch.drop_column('workbook_sha256')
    with op.batch_alter_table('document') as batch:
        batch.drop_column('signature')
        batch.drop_column('approved_sha256')
    # -- uploads -----------------------------------------------------------------
    with op.batch_alter_table('evidence') as batch:
        batch.drop_constraint(op.f('fk_evidence_added_by_id_person'), type_='foreignkey')
        batch.drop_column('added_by_id')
    # -- audit -------------------------------------------------------------------
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('key_id')
        batch.drop_column('keyed_from')
        batch.drop_column('mode')
    # -- durable intake ----------------------------------------------------------
    op.create_table('processed_update',
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('update_id', name=op.f('pk_processed_update'))
    )
    op.drop_index('ix_inbox_unprocessed', table_name='inbox')
    op.drop_table('inbox')
    op.drop_table('group_chat')
    # -- outbox failures ---------------------------------------------------------
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('failed_reason')
    # -- signing capacity --------------------------------------------------------
    with op.batch_alter_table('approval') as batch:
        batch.drop_column('capacity')
    pass
