"""Runs that died are recorded as such: `pipeline_runs.host`, `pid` and `heartbeat_at`.

A run killed mid-way (kill -9, out of memory, the machine gone) stayed `running` forever. A run now records
where it runs and beats a heartbeat; the next run, or the maintenance flow, marks a `running` row whose
process is gone (or whose heartbeat stopped, or whose Prefect flow run ended) as `crashed`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("pid", sa.Integer()))
        batch.add_column(sa.Column("heartbeat_at", Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
        batch.drop_column("host")
