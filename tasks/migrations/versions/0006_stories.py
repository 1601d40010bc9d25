"""Stories: same-story links between articles of different outlets (`stories`, `articles.story_id`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text()),
        sa.Column("centroid", Json, nullable=False),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("article_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_stories_last_seen_at", "stories", ["last_seen_at"])
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a foreign key in place; Alembic would rebuild the table for it (batch
        # mode), which the views and search triggers of 0004 would not survive untouched.
        op.execute("ALTER TABLE articles ADD COLUMN story_id INTEGER REFERENCES stories (id)")
    else:
        op.add_column("articles", sa.Column("story_id", Id, sa.ForeignKey("stories.id")))
    op.create_index("ix_articles_story_id", "articles", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_articles_story_id", "articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("story_id")
    op.drop_index("ix_stories_last_seen_at", "stories")
    op.drop_table("stories")
