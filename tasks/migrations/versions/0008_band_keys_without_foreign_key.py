"""LSH band keys without a foreign key, indexed by article.

A load writes 32 band keys per article; with the foreign key, PostgreSQL ran one referential check per key
(a trigger and an index probe of `articles` each), about a third of a batch's load time. The keys are a
derived lookup: dedupe joins them to `articles` and `article_signatures`, so a key left behind by a deleted
article finds nothing. The index on `article_id` serves the load's deletion of a refreshed article's keys
(the primary key starts with the band key and could not).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _rebuild_on_sqlite(foreign_key: str) -> None:
    """SQLite cannot drop or add a constraint: copy the table (nothing else refers to it)."""
    op.execute("ALTER TABLE article_band_keys RENAME TO article_band_keys_old")
    op.execute(f"""CREATE TABLE article_band_keys (
                     band_key VARCHAR(24) NOT NULL,
                     article_id INTEGER NOT NULL{foreign_key},
                     PRIMARY KEY (band_key, article_id))""")
    op.execute("INSERT INTO article_band_keys (band_key, article_id) "
               "SELECT band_key, article_id FROM article_band_keys_old")
    op.execute("DROP TABLE article_band_keys_old")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite("")
    else:
        inspector = sa.inspect(op.get_bind())
        for key in inspector.get_foreign_keys("article_band_keys"):
            op.drop_constraint(key["name"], "article_band_keys", type_="foreignkey")
    op.create_index("ix_article_band_keys_article_id", "article_band_keys", ["article_id"])


def downgrade() -> None:
    op.drop_index("ix_article_band_keys_article_id", "article_band_keys")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(" REFERENCES articles (id) ON DELETE CASCADE")
    else:
        op.execute("DELETE FROM article_band_keys k WHERE NOT EXISTS "
                   "(SELECT 1 FROM articles a WHERE a.id = k.article_id)")
        op.create_foreign_key("article_band_keys_article_id_fkey", "article_band_keys", "articles",
                              ["article_id"], ["id"], ondelete="CASCADE")
