"""a bidang's items of a cycle in order by an index (read at every data-entry update;
before, all the cycle's items were read and sorted)

Revision ID: 0012
Revises: 0011_claims
Create Date: 2026-11-28
"""
from __future__ import annotations

from alembic import op


revision = "0012"
down_revision = "0011_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cycle_indicator_bidang", "cycle_indicator",
                    ["cycle_id", "unit_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_cycle_indicator_bidang", table_name="cycle_indicator")
