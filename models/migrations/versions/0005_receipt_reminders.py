"""receipt reminders: the agencies' receipts of step 11 are reminded to their contacts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", models.base.UTCDateTime(), nullable=False),
        sa.Column("sent_at", models.base.UTCDateTime(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"],
                                name=op.f("fk_receipt_reminder_delivery_id_delivery")),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"],
                                name=op.f("fk_receipt_reminder_outbox_id_outbox")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_receipt_reminder_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_reminder")),
        sa.UniqueConstraint("delivery_id", "level",
                            name=op.f("uq_receipt_reminder_delivery_id_level")),
    )


def downgrade() -> None:
    op.drop_table("receipt_reminder")
