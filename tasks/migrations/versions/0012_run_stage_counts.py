"""Every stage's figures of a run in one JSON column: `pipeline_runs.stage_counts`.

The run's counts had a column per stage and side (`fetch_in`, ..., `load_out`), and a stage the columns
did not know was silently dropped. The flow's pipeline list (flows/pipeline.py) now says which stages
there are, and each run stores what each of them took in, passed on, quarantined and dropped as
`[{"stage": "fetch", "in": 12, "out": 12, "quarantined": 0, "dropped": 0}, ...]` (a list: JSONB does
not keep the order of an object's keys), so a new stage needs no migration. The per-stage columns stay,
filled for the stages they name, for the queries that read them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# As the migration wrote it (not imported from tasks.schema, which moves on).
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column("stage_counts", Json))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("stage_counts")
