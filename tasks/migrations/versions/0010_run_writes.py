"""What each run wrote: `run_writes` (run, kind, row id).

The loaded-stage checks reconcile a run's rows with its own counts. They found them by `articles.last_run_id`
and `duplicates.run_id`, which the next run to touch a row rewrites: when an hourly and a daily run overlap
and both load a page, the first run's checks counted one article short and failed the run. A row here is
never rewritten by another run. The index on `articles.last_run_id` (0009) served only those checks: it
goes, one index less for every load to maintain.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As the migration wrote them (not imported from tasks.schema, which moves on).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "run_writes",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("row_id", Id, primary_key=True),
        sa.Column("written_at", Timestamp, nullable=False),
    )
    op.create_index("ix_run_writes_written_at", "run_writes", ["written_at"])
    op.drop_index("ix_articles_last_run_id", "articles")


def downgrade() -> None:
    op.create_index("ix_articles_last_run_id", "articles", ["last_run_id"])
    op.drop_index("ix_run_writes_written_at", "run_writes")
    op.drop_table("run_writes")
