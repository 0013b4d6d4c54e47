"""offices as data: each office's own settings (``office.settings``, JSON); a Telegram
account bound to a person in each of several offices (unique per office, not globally)

An existing office gets ``{}``: it keeps working with config.toml's values, which are
now the regency-wide defaults; ``sopbot setup import`` (its set-up workbook) or
``sopbot office settings`` writes its own.

Revision ID: 0008_offices
Revises: 0007
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0008_offices"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("office") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=False,
                                   server_default="{}"))
    with op.batch_alter_table("person") as batch:
        batch.drop_constraint("uq_person_telegram_user_id", type_="unique")
        batch.create_unique_constraint("uq_person_office_id_telegram_user_id",
                                       ["office_id", "telegram_user_id"])
        batch.create_index("ix_person_telegram_user_id", ["telegram_user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_index("ix_person_telegram_user_id")
        batch.drop_constraint("uq_person_office_id_telegram_user_id", type_="unique")
        batch.create_unique_constraint("uq_person_telegram_user_id", ["telegram_user_id"])
    with op.batch_alter_table("office") as batch:
        batch.drop_column("settings")
