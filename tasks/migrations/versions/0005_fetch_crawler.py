"""Fetch like a crawler: error kind, retries, not-modified and body hash on `fetches`; `http_cache` for
conditional GET; the raw store (`raw_blobs`, `raw_documents`) that `reprocess` reads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("fetches") as batch:
        batch.add_column(sa.Column("error_kind", sa.String(32)))
        batch.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("not_modified", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("content_hash", sa.String(64)))

    op.create_table(
        "http_cache",
        sa.Column("url", sa.Text(), primary_key=True),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("fetched_at", Timestamp, nullable=False),
    )
    op.create_table(
        "raw_blobs",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "raw_documents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), sa.ForeignKey("raw_blobs.content_hash"), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content_type", sa.Text()),
        sa.Column("charset", sa.String(64)),
        sa.Column("status_code", sa.Integer()),
        sa.Column("hints", Json),
        sa.Column("first_fetched_at", Timestamp, nullable=False),
        sa.Column("last_fetched_at", Timestamp, nullable=False),
        sa.UniqueConstraint("url", "content_hash", name="uq_raw_documents_url_hash"),
    )
    op.create_index("ix_raw_documents_content_hash", "raw_documents", ["content_hash"])
    op.create_index("ix_raw_documents_source", "raw_documents", ["source"])
    op.create_index("ix_raw_documents_last_fetched_at", "raw_documents", ["last_fetched_at"])


def downgrade() -> None:
    for table in ("raw_documents", "raw_blobs", "http_cache"):
        op.drop_table(table)
    with op.batch_alter_table("fetches") as batch:
        for column in ("content_hash", "not_modified", "retries", "error_kind"):
            batch.drop_column(column)
