"""Article versions (earlier texts of changed articles) and indexes for source health and recent runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "article_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("article_id", Id, sa.ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("seen_at", Timestamp, nullable=False),
        sa.Column("replaced_at", Timestamp, nullable=False),
        sa.Column("replaced_by_run_id", sa.String(64)),
        sa.UniqueConstraint("article_id", "version", name="uq_article_versions_article_version"),
    )
    op.create_index("ix_fetches_source_fetched_at", "fetches", ["source", "fetched_at"])
    op.create_index("ix_quarantine_source", "quarantine", ["source"])
    op.create_index("ix_pipeline_runs_started_at", "pipeline_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_runs_started_at", "pipeline_runs")
    op.drop_index("ix_quarantine_source", "quarantine")
    op.drop_index("ix_fetches_source_fetched_at", "fetches")
    op.drop_table("article_versions")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("version")
