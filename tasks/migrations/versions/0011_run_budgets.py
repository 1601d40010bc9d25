"""Per-run budgets instead of silent caps: `local_files` (how far each local file was read) and the items a
run deferred to the next ones (`pipeline_runs.deferred`, `deferred_sources`).

A source's `max_items` used to drop what was over it: a folder of 2,000 files loaded its first 500 on every
run and never the rest. Now each run takes up to `max_items` items not read before and reports the others.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# As the migration wrote them (not imported from tasks.schema, which moves on).
Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "local_files",
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger()),
        sa.Column("items_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("read_at", Timestamp, nullable=False),
    )
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("deferred", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("deferred_sources", Json))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("deferred_sources")
        batch.drop_column("deferred")
    op.drop_table("local_files")
