"""Full-text search over article titles and texts: FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL.

Queries use web-search syntax on both: words (all must match), "quoted phrases", OR, and -excluded words.
Titles weigh more than texts in the ranking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from tasks.schema import UtcDateTime

# Must stay identical to the expression indexed by migration 0004, or PostgreSQL scans the table.
PG_DOCUMENT = ("(setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
               "setweight(to_tsvector('english'::regconfig, text), 'B'))")

# Keep the FTS5 table in step with `articles` (an external-content table holds no text of its own).
SQLITE_FTS_TRIGGERS = {
    "articles_fts_insert": """CREATE TRIGGER IF NOT EXISTS articles_fts_insert AFTER INSERT ON articles BEGIN
         INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
       END""",
    "articles_fts_delete": """CREATE TRIGGER IF NOT EXISTS articles_fts_delete AFTER DELETE ON articles BEGIN
         INSERT INTO articles_fts (articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
       END""",
    "articles_fts_update": """CREATE TRIGGER IF NOT EXISTS articles_fts_update AFTER UPDATE OF title, text ON articles
       WHEN old.title IS NOT new.title OR old.text IS NOT new.text BEGIN
         INSERT INTO articles_fts (articles_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text);
         INSERT INTO articles_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
       END""",
}

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass(slots=True)
class SearchHit:
    id: int
    title: str | None
    url: str
    source: str
    published_at: datetime | None
    score: float
    snippet: str


def ensure_sqlite_fts_triggers(conn: Connection) -> bool:
    """Create the FTS5 triggers if a migration rebuilt `articles` (SQLite batch mode drops a table's
    triggers), and rebuild the index from `articles`. True when something was missing."""
    names = {"articles_fts", *SQLITE_FTS_TRIGGERS}
    present = {row[0] for row in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE name LIKE 'articles_fts%'")}
    if "articles_fts" not in present or names <= present:
        return False
    for statement in SQLITE_FTS_TRIGGERS.values():
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")
    return True


def fts5_query(query: str) -> str:
    """The web-search query as an FTS5 expression; every term quoted, so no input is a syntax error."""
    wanted: list[str] = []
    excluded: list[str] = []
    for match in _TOKEN.finditer(query):
        minus, phrase, word = match.groups()
        if word is not None:
            if word == "OR":
                if wanted and wanted[-1] != "OR":
                    wanted.append("OR")
                continue
            minus, phrase = ("-", word[1:]) if word.startswith("-") else ("", word)
        terms = " ".join(_WORD.findall(phrase))
        if terms:
            (excluded if minus else wanted).append(f'"{terms}"')
    while wanted and wanted[-1] == "OR":
        wanted.pop()
    if not wanted:
        return ""
    expression = " ".join(wanted)
    for term in excluded:
        expression = f"({expression}) NOT {term}"
    return expression


def search(engine: Engine, query: str, limit: int = 10) -> list[SearchHit]:
    """The best-matching articles for the query, best first."""
    if engine.dialect.name == "postgresql":
        statement = text(f"""
            SELECT a.id, a.title, a.url, a.source, a.published_at, best.score,
                   ts_headline('english', a.text, best.q,
                               'MaxWords=30, MinWords=12, StartSel=[, StopSel=], MaxFragments=1') AS snippet
              FROM (SELECT a.id, ts_rank({PG_DOCUMENT}, q) AS score, q
                      FROM articles a, websearch_to_tsquery('english', :query) q
                     WHERE {PG_DOCUMENT} @@ q
                     ORDER BY score DESC, a.id LIMIT :limit) best
              JOIN articles a ON a.id = best.id
             ORDER BY best.score DESC, a.id""")
        parameters = {"query": query, "limit": limit}
    else:
        expression = fts5_query(query)
        if not expression:
            return []
        statement = text("""
            SELECT a.id, a.title, a.url, a.source, a.published_at, -bm25(articles_fts, 10.0, 1.0) AS score,
                   snippet(articles_fts, 1, '[', ']', '…', 24) AS snippet
              FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid
             WHERE articles_fts MATCH :query
             ORDER BY bm25(articles_fts, 10.0, 1.0), a.id LIMIT :limit""")
        parameters = {"query": expression, "limit": limit}
    statement = statement.columns(published_at=UtcDateTime())
    with engine.connect() as conn:
        return [SearchHit(r.id, r.title, r.url, r.source, r.published_at, float(r.score), r.snippet)
                for r in conn.execute(statement, parameters)]
