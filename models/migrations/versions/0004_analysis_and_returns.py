"""entry: analysis of an answer (penghambat, upaya, pendukung) and single answers
returned by the Kasubag (issue 13, items 5 and 6)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.add_column(sa.Column("penghambat", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("upaya", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("pendukung", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "returned_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["cycle_indicator.id"],
                                name=op.f("fk_returned_answer_item_id_cycle_indicator")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_returned_answer_person_id_person")),
        sa.ForeignKeyConstraint(["run_id"], ["step_run.id"],
                                name=op.f("fk_returned_answer_run_id_step_run")),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"],
                                name=op.f("fk_returned_answer_submission_id_submission")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returned_answer")),
        sa.UniqueConstraint("run_id", "item_id", name=op.f("uq_returned_answer_run_id_item_id")),
    )


def downgrade() -> None:
    op.drop_table("returned_answer")
    with op.batch_alter_table("submission") as batch:
        batch.drop_column("pendukung")
        batch.drop_column("upaya")
        batch.drop_column("penghambat")
