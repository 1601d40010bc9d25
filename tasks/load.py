"""Load stage: upsert articles, their dedup signatures and the duplicates found, idempotently.

A batch is one transaction. Keys are de-duplicated before each statement (PostgreSQL rejects a key
twice in one INSERT ... ON CONFLICT; SQLite would silently keep the last and hide the bug).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from tasks import schema
from tasks.dedupe import Fingerprint
from tasks.records import Article, Duplicate, StageStats, utcnow
from tasks.warehouse import pack_signature

ARTICLE_UPDATE_COLUMNS = ("url", "source", "title", "authors", "published_at", "language", "text",
                          "word_count", "content_hash", "description", "site_name", "last_seen_at",
                          "last_run_id")


@dataclass(slots=True)
class LoadOutcome:
    article_ids: dict[str, int] = field(default_factory=dict)  # canonical URL -> id
    orphans: list[Duplicate] = field(default_factory=list)  # duplicates whose kept article is missing
    stats: StageStats = field(default_factory=lambda: StageStats("load"))


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str],
           update_columns: Sequence[str] = ()) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE/NOTHING on SQLite and PostgreSQL, keys unique per statement."""
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unique[tuple(row[k] for k in keys)] = row
    if not unique:
        return
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in update_columns})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(statement, list(unique.values()))


def article_row(article: Article, run_id: str, now: Any) -> dict[str, Any]:
    return {
        "url": article.url, "canonical_url": article.canonical_url, "source": article.source,
        "title": article.title, "authors": article.authors, "published_at": article.published_at,
        "language": article.language, "text": article.text, "word_count": article.word_count,
        "content_hash": article.content_hash, "description": article.description,
        "site_name": article.site_name, "first_seen_at": now, "last_seen_at": now, "last_run_id": run_id,
    }


def _ids_by_canonical_url(conn: Connection, urls: Sequence[str]) -> dict[str, int]:
    a = schema.articles
    found: dict[str, int] = {}
    urls = list(set(urls))
    for start in range(0, len(urls), 500):
        query = select(a.c.canonical_url, a.c.id).where(a.c.canonical_url.in_(urls[start:start + 500]))
        found.update({row.canonical_url: row.id for row in conn.execute(query)})
    return found


def load_batch(engine: Engine, run_id: str, articles: Sequence[Article], fingerprints: dict[str, Fingerprint],
               duplicates: Sequence[Duplicate]) -> LoadOutcome:
    """Write one batch in one transaction: all of it, or (on error) none of it."""
    outcome = LoadOutcome()
    outcome.stats.add("in", len(articles))
    now = utcnow()
    with engine.begin() as conn:
        upsert(conn, schema.articles, [article_row(a, run_id, now) for a in articles],
               ["canonical_url"], ARTICLE_UPDATE_COLUMNS)
        ids = _ids_by_canonical_url(conn, [a.canonical_url for a in articles] + [d.kept_url for d in duplicates])
        outcome.article_ids = {a.canonical_url: ids[a.canonical_url] for a in articles}
        signatures, band_keys = [], []
        for url, print_ in fingerprints.items():
            if url in ids:
                signatures.append({"article_id": ids[url], "signature": pack_signature(print_.signature)})
                band_keys.extend({"band_key": key, "article_id": ids[url]} for key in print_.band_keys)
        upsert(conn, schema.article_signatures, signatures, ["article_id"], ["signature"])
        upsert(conn, schema.article_band_keys, band_keys, ["band_key", "article_id"])
        duplicate_rows = []
        for duplicate in duplicates:
            article_id = duplicate.kept_article_id or ids.get(duplicate.kept_url)
            if article_id is None:
                outcome.orphans.append(duplicate)  # never an orphan row: the caller quarantines it
                continue
            duplicate_rows.append({
                "url": duplicate.url, "canonical_url": duplicate.canonical_url, "source": duplicate.source,
                "article_id": article_id, "kind": duplicate.kind, "similarity": duplicate.similarity,
                "run_id": run_id, "detected_at": now})
        upsert(conn, schema.duplicates, duplicate_rows, ["url"],
               ["canonical_url", "source", "article_id", "kind", "similarity", "run_id", "detected_at"])
    outcome.stats.add("out", len(articles))
    outcome.stats.add("duplicates", len(duplicate_rows))
    return outcome
