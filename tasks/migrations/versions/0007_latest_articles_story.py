"""`latest_articles` shows each article's story (`story_id`, `story_title`) next to its source and
duplicate count, as the analysts' view was meant to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DUPLICATE_COUNTS = """(SELECT article_id, COUNT(*) AS duplicate_count, MAX(detected_at) AS last_duplicate_at
                       FROM duplicates GROUP BY article_id) d ON d.article_id = a.id"""


def upgrade() -> None:
    op.execute("DROP VIEW latest_articles")
    op.execute(f"""
        CREATE VIEW latest_articles AS
        SELECT a.id, a.canonical_url, a.url, a.source, a.title, a.authors, a.published_at, a.language,
               a.word_count, a.version, a.first_seen_at, a.last_seen_at, a.last_run_id,
               a.story_id, s.title AS story_title,
               COALESCE(d.duplicate_count, 0) AS duplicate_count, d.last_duplicate_at, a.text
          FROM articles a
          LEFT JOIN stories s ON s.id = a.story_id
          LEFT JOIN {DUPLICATE_COUNTS}
    """)


def downgrade() -> None:
    op.execute("DROP VIEW latest_articles")
    op.execute(f"""
        CREATE VIEW latest_articles AS
        SELECT a.id, a.canonical_url, a.url, a.source, a.title, a.authors, a.published_at, a.language,
               a.word_count, a.version, a.first_seen_at, a.last_seen_at, a.last_run_id,
               COALESCE(d.duplicate_count, 0) AS duplicate_count, d.last_duplicate_at, a.text
          FROM articles a
          LEFT JOIN {DUPLICATE_COUNTS}
    """)
