"""The schema of the first release: articles, dedup fingerprints, duplicates and run bookkeeping.

Warehouses created before migrations existed (by `metadata.create_all`) have exactly this schema and
are stamped with this revision instead of running it (see env.py).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The types as they were at this revision (tasks/schema.py may move on; this file must not).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("canonical_url", sa.Text(), nullable=False, unique=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("authors", Json, nullable=False),
        sa.Column("published_at", Timestamp),
        sa.Column("language", sa.String(16)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("site_name", sa.Text()),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("last_run_id", sa.String(64)),
    )
    op.create_index("ix_articles_content_hash", "articles", ["content_hash"])
    op.create_index("ix_articles_published_at", "articles", ["published_at"])
    op.create_index("ix_articles_source", "articles", ["source"])

    op.create_table(
        "article_signatures",
        sa.Column("article_id", Id, sa.ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "article_band_keys",
        sa.Column("band_key", sa.String(24), primary_key=True),
        sa.Column("article_id", Id, sa.ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    )

    op.create_table(
        "duplicates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False, unique=True),
        sa.Column("canonical_url", sa.Text()),
        sa.Column("source", sa.String(200)),
        sa.Column("article_id", Id, sa.ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("detected_at", Timestamp, nullable=False),
    )
    op.create_index("ix_duplicates_article_id", "duplicates", ["article_id"])
    op.create_index("ix_duplicates_run", "duplicates", ["run_id"])

    op.create_table(
        "fetches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.Text()),
        sa.Column("fetched_at", Timestamp, nullable=False),
    )
    op.create_index("ix_fetches_run_id", "fetches", ["run_id"])

    op.create_table(
        "quarantine",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("url", sa.Text()),
        sa.Column("reasons", Json, nullable=False),
        sa.Column("payload", Json),
        sa.Column("quarantined_at", Timestamp, nullable=False),
    )
    op.create_index("ix_quarantine_run_id", "quarantine", ["run_id"])

    op.create_table(
        "dq_results",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("suite", sa.String(100), nullable=False),
        sa.Column("expectation", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("unexpected_count", sa.Integer()),
        sa.Column("unexpected_percent", sa.Float()),
        sa.Column("observed_value", sa.Text()),
        sa.Column("checked_at", Timestamp, nullable=False),
    )
    op.create_index("ix_dq_results_run_id", "dq_results", ["run_id"])

    counts = [f"{stage}_{side}" for stage in ("fetch", "clean", "dedupe", "validate", "load")
              for side in ("in", "out")]
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text()),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in counts],
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("pipeline_runs", "dq_results", "quarantine", "fetches", "duplicates", "article_band_keys",
                  "article_signatures", "articles"):
        op.drop_table(table)
