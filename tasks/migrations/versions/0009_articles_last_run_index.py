"""Index the articles a run wrote (`articles.last_run_id`).

The loaded-stage checks select the run's own articles (`WHERE last_run_id = :run`) at the end of every run;
without an index each of them scans the whole table, a cost that grows with the warehouse, not the run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_articles_last_run_id", "articles", ["last_run_id"])


def downgrade() -> None:
    op.drop_index("ix_articles_last_run_id", "articles")
