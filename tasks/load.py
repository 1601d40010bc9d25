"""Load stage: upsert articles, their dedup signatures and the duplicates found, idempotently.

A batch is one transaction holding the warehouse's load lock (tasks.warehouse.write_transaction):
concurrent runs take turns, so an article re-fetched with a changed text keeps its id and gets its
previous text stored in `article_versions`, and an article whose exact text another run loaded
meanwhile under another URL is recorded as a duplicate instead of loaded twice (with the settings given,
near copies too: the dedupe stage's check is run again under the lock).
Keys are de-duplicated and sorted before each statement (PostgreSQL rejects a key twice in one
INSERT ... ON CONFLICT, SQLite would silently keep the last and hide the bug; one key order avoids
deadlocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from tasks import schema
from tasks.dedupe import Fingerprint, deduplicate
from tasks.records import Article, Duplicate, StageStats, utcnow
from tasks.settings import Settings
from tasks.stories import link_stories
from tasks.warehouse import WarehouseIndex, write_transaction

ARTICLE_UPDATE_COLUMNS = ("url", "source", "title", "authors", "published_at", "language", "text",
                          "word_count", "content_hash", "description", "site_name", "modified_at", "image",
                          "tags", "last_seen_at", "last_run_id", "version")


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
    unique = dict(sorted(unique.items()))
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in update_columns})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(statement, list(unique.values()))


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows known to be new, the fastest way each database takes them: COPY on PostgreSQL (in the
    connection's transaction), the driver's executemany on SQLite."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with conn.connection.dbapi_connection.cursor() as cursor, \
                cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))


def article_row(article: Article, run_id: str, now: Any, version: int = 1) -> dict[str, Any]:
    return {
        "url": article.url, "canonical_url": article.canonical_url, "source": article.source,
        "title": article.title, "authors": article.authors, "published_at": article.published_at,
        "language": article.language, "text": article.text, "word_count": article.word_count,
        "content_hash": article.content_hash, "description": article.description,
        "site_name": article.site_name, "modified_at": article.modified_at, "image": article.image,
        "tags": article.tags, "first_seen_at": now, "last_seen_at": now, "last_run_id": run_id,
        "version": version,
    }


def _ids_by_canonical_url(conn: Connection, urls: Sequence[str]) -> dict[str, int]:
    a = schema.articles
    found: dict[str, int] = {}
    urls = list(set(urls))
    for start in range(0, len(urls), 500):
        query = select(a.c.canonical_url, a.c.id).where(a.c.canonical_url.in_(urls[start:start + 500]))
        found.update({row.canonical_url: row.id for row in conn.execute(query)})
    return found


@dataclass(slots=True, frozen=True)
class _Current:
    id: int
    canonical_url: str
    content_hash: str
    version: int


def _current(conn: Connection, column: Any, values: Sequence[str]) -> list[_Current]:
    a = schema.articles
    values = sorted(set(values))
    found: list[_Current] = []
    for start in range(0, len(values), 500):
        query = (select(a.c.id, a.c.canonical_url, a.c.content_hash, a.c.version)
                 .where(column.in_(values[start:start + 500])))
        found.extend(_Current(*row) for row in conn.execute(query))
    return found


def _keep_previous_texts(conn: Connection, changed: Sequence[_Current], run_id: str, now: Any) -> None:
    """Copy the current text of each changed article into `article_versions` (in the database)."""
    if not changed:
        return
    a, v = schema.articles, schema.article_versions
    ids = sorted(c.id for c in changed)
    for start in range(0, len(ids), 500):
        rows = select(a.c.id, a.c.version, a.c.title, a.c.text, a.c.word_count, a.c.content_hash,
                      a.c.last_seen_at, _literal(now, v.c.replaced_at), _literal(run_id, v.c.replaced_by_run_id)
                      ).where(a.c.id.in_(ids[start:start + 500]))
        conn.execute(insert(v).from_select(
            ["article_id", "version", "title", "text", "word_count", "content_hash", "seen_at", "replaced_at",
             "replaced_by_run_id"], rows))


def _literal(value: Any, column: Any) -> Any:
    return literal(value, column.type)


def _late_near_copies(conn: Connection, fresh: Sequence[Article], settings: Settings | None) -> dict[str, Duplicate]:
    """Near copies of articles another run loaded since this batch was deduplicated, by canonical URL."""
    if settings is None or not fresh:
        return {}
    recheck = deduplicate(fresh, WarehouseIndex(conn), settings)
    return {d.canonical_url: d for d in recheck.duplicates if d.kept_article_id is not None}


def load_batch(engine: Engine, run_id: str, articles: Sequence[Article], fingerprints: dict[str, Fingerprint],
               duplicates: Sequence[Duplicate], settings: Settings | None = None) -> LoadOutcome:
    """Write one batch in one transaction: all of it, or (on error) none of it."""
    outcome = LoadOutcome()
    outcome.stats.add("in", len(articles))
    now = utcnow()
    by_url = {a.canonical_url: a for a in articles}  # one row per key; the last copy wins
    a = schema.articles
    with write_transaction(engine) as conn:
        current = {c.canonical_url: c for c in _current(conn, a.c.canonical_url, list(by_url))}
        # Loaded meanwhile by another run under another URL: a copy of that article, not a new one.
        new_hashes = {art.content_hash for url, art in by_url.items() if url not in current}
        same_text = {c.content_hash: c for c in _current(conn, a.c.content_hash, list(new_hashes))}
        late_copies = {url: same_text[art.content_hash] for url, art in by_url.items()
                       if url not in current and art.content_hash in same_text}
        late_near = _late_near_copies(conn, [art for url, art in by_url.items()
                                             if url not in current and url not in late_copies], settings)
        changed = [c for url, c in current.items() if c.content_hash != by_url[url].content_hash]
        _keep_previous_texts(conn, changed, run_id, now)
        changed_urls = {c.canonical_url for c in changed}
        rows = [article_row(art, run_id, now, current[url].version + (url in changed_urls) if url in current else 1)
                for url, art in by_url.items() if url not in late_copies and url not in late_near]
        upsert(conn, schema.articles, rows, ["canonical_url"], ARTICLE_UPDATE_COLUMNS)
        ids = _ids_by_canonical_url(conn, [r["canonical_url"] for r in rows] + [d.kept_url for d in duplicates])
        ids.update({url: c.id for url, c in late_copies.items()})  # copies of them point at the original
        ids.update({url: d.kept_article_id for url, d in late_near.items()})
        outcome.article_ids = {row["canonical_url"]: ids[row["canonical_url"]] for row in rows}
        signatures, band_keys = [], []
        for url, print_ in fingerprints.items():
            if url in outcome.article_ids:
                signatures.append({"article_id": ids[url], "signature": print_.sketch})
                band_keys.extend({"band_key": key, "article_id": ids[url]} for key in print_.band_keys)
        upsert(conn, schema.article_signatures, signatures, ["article_id"], ["signature"])
        # A refreshed article's text may have changed: its old band keys go.
        stale = [row["article_id"] for row in signatures]
        for start in range(0, len(stale), 500):
            conn.execute(delete(schema.article_band_keys)
                         .where(schema.article_band_keys.c.article_id.in_(stale[start:start + 500])))
        # Those deleted just above, the rest new: plain bulk insert, no conflict possible.
        bulk_insert(conn, schema.article_band_keys, ["band_key", "article_id"],
                    sorted({(row["band_key"], row["article_id"]) for row in band_keys}))
        late = [Duplicate(url=art.url, source=art.source, kept_url=late_copies[url].canonical_url, kind="exact",
                          kept_article_id=late_copies[url].id, canonical_url=url)
                for url, art in by_url.items() if url in late_copies] + list(late_near.values())
        duplicate_rows = []
        for duplicate in [*duplicates, *late]:
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
        if settings is not None:  # same-story links for articles new to the warehouse
            stories = link_stories(conn, [by_url[row["canonical_url"]] for row in rows], outcome.article_ids,
                                   now, settings)
            outcome.stats.add("stories_linked", len(stories))
    outcome.stats.add("out", len(rows))
    outcome.stats.add("versions", len(changed))
    outcome.stats.add("late_duplicates", len(late))
    outcome.stats.add("duplicates", len(duplicate_rows))
    return outcome
