"""compile jobs: a "Susun dokumen" press is built in the background

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compile_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", models.base.UTCDateTime(), nullable=False),
        sa.Column("finished_at", models.base.UTCDateTime(), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"],
                                name=op.f("fk_compile_job_document_id_document")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"],
                                name=op.f("fk_compile_job_person_id_person")),
        sa.ForeignKeyConstraint(["run_id"], ["step_run.id"],
                                name=op.f("fk_compile_job_run_id_step_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compile_job")),
    )
    op.create_index("ix_compile_job_open", "compile_job", ["finished_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_compile_job_open", table_name="compile_job")
    op.drop_table("compile_job")
