"""Views for analysts (`latest_articles`, `source_health`, `daily_counts`) and full-text search over
titles and texts: an FTS5 table kept in step by triggers on SQLite, a GIN expression index on PostgreSQL.

A later revision that rebuilds `articles` on SQLite (batch mode, recreate) drops its triggers: env.py
puts them back after every upgrade (tasks.search.ensure_sqlite_fts_triggers). A revision changing a view
drops and creates it again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Must stay identical to tasks.search.PG_DOCUMENT, or PostgreSQL cannot use the index.
PG_DOCUMENT = ("(setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
               "setweight(to_tsvector('english'::regconfig, text), 'B'))")

SQLITE_FTS_TRIGGERS = [
    """CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
         INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
       END""",
    """CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
         INSERT INTO articles_fts (articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
       END""",
    """CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, text ON articles
       WHEN old.title IS NOT new.title OR old.text IS NOT new.text BEGIN
         INSERT INTO articles_fts (articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
         INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
       END""",
]

FAILED_FETCH = "(error IS NOT NULL OR status_code >= 400)"


def _day(column: str) -> str:
    """The UTC calendar day of a timestamp column (SQLite stores them as naive UTC text)."""
    if op.get_context().dialect.name == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)"
    return f"date({column})"


def upgrade() -> None:
    op.execute("""
        CREATE VIEW latest_articles AS
        SELECT a.id, a.canonical_url, a.url, a.source, a.title, a.authors, a.published_at, a.language,
               a.word_count, a.version, a.first_seen_at, a.last_seen_at, a.last_run_id,
               COALESCE(d.duplicate_count, 0) AS duplicate_count, d.last_duplicate_at, a.text
          FROM articles a
          LEFT JOIN (SELECT article_id, COUNT(*) AS duplicate_count, MAX(detected_at) AS last_duplicate_at
                       FROM duplicates GROUP BY article_id) d ON d.article_id = a.id
    """)
    op.execute(f"""
        CREATE VIEW source_health AS
        WITH names AS (
            SELECT source FROM fetches WHERE source IS NOT NULL
            UNION SELECT source FROM quarantine WHERE source IS NOT NULL
            UNION SELECT source FROM articles
        ), f AS (
            SELECT source, COUNT(*) AS fetches,
                   SUM(CASE WHEN {FAILED_FETCH} THEN 1 ELSE 0 END) AS failures,
                   MAX(CASE WHEN NOT {FAILED_FETCH} THEN fetched_at END) AS last_success,
                   MAX(CASE WHEN {FAILED_FETCH} THEN fetched_at END) AS last_failure
              FROM fetches GROUP BY source
        ), q AS (
            SELECT source, COUNT(*) AS quarantined, MAX(quarantined_at) AS last_quarantined
              FROM quarantine GROUP BY source
        ), a AS (
            SELECT source, COUNT(*) AS articles, MAX(last_seen_at) AS last_article_seen FROM articles GROUP BY source
        )
        SELECT n.source,
               COALESCE(f.fetches, 0) AS fetches,
               COALESCE(f.failures, 0) AS failures,
               CASE WHEN f.fetches > 0 THEN CAST(f.failures AS FLOAT) / f.fetches END AS failure_rate,
               COALESCE(q.quarantined, 0) AS quarantined,
               COALESCE(a.articles, 0) AS articles,
               f.last_success, f.last_failure, q.last_quarantined, a.last_article_seen
          FROM names n
          LEFT JOIN f ON f.source = n.source
          LEFT JOIN q ON q.source = n.source
          LEFT JOIN a ON a.source = n.source
    """)
    op.execute(f"""
        CREATE VIEW daily_counts AS
        WITH events AS (
            SELECT {_day("first_seen_at")} AS day, source, 1 AS new_articles, 0 AS published, 0 AS duplicates,
                   0 AS quarantined, 0 AS fetches, 0 AS failed_fetches FROM articles
            UNION ALL SELECT {_day("published_at")}, source, 0, 1, 0, 0, 0, 0 FROM articles
             WHERE published_at IS NOT NULL
            UNION ALL SELECT {_day("detected_at")}, source, 0, 0, 1, 0, 0, 0 FROM duplicates
            UNION ALL SELECT {_day("quarantined_at")}, source, 0, 0, 0, 1, 0, 0 FROM quarantine
            UNION ALL SELECT {_day("fetched_at")}, source, 0, 0, 0, 0, 1,
                             CASE WHEN {FAILED_FETCH} THEN 1 ELSE 0 END FROM fetches
        )
        SELECT day, source, SUM(new_articles) AS new_articles, SUM(published) AS published,
               SUM(duplicates) AS duplicates, SUM(quarantined) AS quarantined, SUM(fetches) AS fetches,
               SUM(failed_fetches) AS failed_fetches
          FROM events GROUP BY day, source
    """)

    if op.get_context().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_articles_fts ON articles USING gin ({PG_DOCUMENT})")
    else:
        op.execute("CREATE VIRTUAL TABLE articles_fts USING fts5(title, text, content='articles', "
                   "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')")
        for trigger in SQLITE_FTS_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_articles_fts")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER articles_fts_{name}")
        op.execute("DROP TABLE articles_fts")
    for view in ("daily_counts", "source_health", "latest_articles"):
        op.execute(f"DROP VIEW {view}")
