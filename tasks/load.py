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

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, literal, select, text

from tasks import schema
from tasks.db import dumps, upsert, without_nul, write_transaction
from tasks.dedupe import Fingerprint, deduplicate
from tasks.records import Article, Duplicate, StageStats, utcnow
from tasks.settings import Settings
from tasks.stories import assign_stories
from tasks.warehouse import WarehouseIndex

ARTICLE_UPDATE_COLUMNS = ("url", "source", "title", "authors", "published_at", "language", "text",
                          "word_count", "content_hash", "description", "site_name", "modified_at", "image",
                          "tags", "last_seen_at", "last_run_id", "version", "undecodable_share", "input_hash")


@dataclass(slots=True)
class LoadOutcome:
    article_ids: dict[str, int] = field(default_factory=dict)  # canonical URL -> id
    stories_opened: list[int] = field(default_factory=list)  # stories this batch started
    joined: dict[str, int] = field(default_factory=dict)  # canonical URL -> a story started before the run
    orphans: list[Duplicate] = field(default_factory=list)  # duplicates whose kept article is missing
    stats: StageStats = field(default_factory=lambda: StageStats("load"))


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows known to be new, the fastest way each database takes them: COPY on PostgreSQL (in the
    connection's transaction), the driver's executemany on SQLite."""
    _copy(conn, table.name, columns, rows)


def _copy(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with conn.connection.dbapi_connection.cursor() as cursor, \
                cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))


def article_row(article: Article, run_id: str, now: Any, version: int = 1,
                story_id: int | None = None) -> dict[str, Any]:
    return {
        "url": article.url, "canonical_url": article.canonical_url, "source": article.source,
        "title": article.title, "authors": article.authors, "published_at": article.published_at,
        "language": article.language, "text": article.text, "word_count": article.word_count,
        "content_hash": article.content_hash, "description": article.description,
        "site_name": article.site_name, "modified_at": article.modified_at, "image": article.image,
        "tags": article.tags, "first_seen_at": now, "last_seen_at": now, "last_run_id": run_id,
        "version": version, "story_id": story_id, "undecodable_share": article.undecodable_share,
        "input_hash": article.input_hash or None,
    }


ARTICLE_COLUMNS = tuple(article_row(Article("", "", "", ""), "", None))
JSON_COLUMNS = frozenset({"authors", "tags"})


def _ids_by_canonical_url(conn: Connection, urls: Sequence[str]) -> dict[str, int]:
    a = schema.articles
    found: dict[str, int] = {}
    urls = list(set(urls))
    for start in range(0, len(urls), 500):
        query = select(a.c.canonical_url, a.c.id).where(a.c.canonical_url.in_(urls[start:start + 500]))
        found.update({row.canonical_url: row.id for row in conn.execute(query)})
    return found


def _upsert_articles(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert new articles and refresh known ones (keyed by canonical URL, unique and sorted in `rows`);
    returns their ids by canonical URL. A known article keeps its story.

    PostgreSQL: the batch goes by COPY into a temporary table dropped at commit, then one
    INSERT ... SELECT ... ON CONFLICT DO UPDATE ... RETURNING: one round trip for the rows, none per row.
    SQLite: the driver's executemany of the same upsert, then the ids in one query per 500.
    """
    if not rows:
        return {}
    update = {c: "excluded." + c for c in ARTICLE_UPDATE_COLUMNS}
    update["story_id"] = "COALESCE(articles.story_id, excluded.story_id)"
    assignments = ", ".join(f"{column} = {value}" for column, value in update.items())
    names = ", ".join(ARTICLE_COLUMNS)
    if conn.dialect.name != "postgresql":
        marks = ", ".join(f":{c}" for c in ARTICLE_COLUMNS)
        statement = (f"INSERT INTO articles ({names}) VALUES ({marks}) "
                     f"ON CONFLICT (canonical_url) DO UPDATE SET {assignments}")
        conn.execute(text(statement).bindparams(
            *[bindparam(c, type_=schema.articles.c[c].type) for c in ARTICLE_COLUMNS]), list(rows))
        return _ids_by_canonical_url(conn, [row["canonical_url"] for row in rows])
    columns = schema.articles.c
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE load_articles ("
        + ", ".join(f"{c} {columns[c].type.compile(dialect=conn.dialect)}" for c in ARTICLE_COLUMNS)
        + ") ON COMMIT DROP")
    _copy(conn, "load_articles", ARTICLE_COLUMNS, [
        tuple(dumps(row[c]) if c in JSON_COLUMNS else without_nul(row[c]) for c in ARTICLE_COLUMNS)
        for row in rows])
    returned = conn.exec_driver_sql(
        f"INSERT INTO articles ({names}) SELECT {names} FROM load_articles ORDER BY canonical_url "
        f"ON CONFLICT (canonical_url) DO UPDATE SET {assignments} RETURNING canonical_url, id")
    return dict(returned.tuples().all())


def _upsert_signatures(conn: Connection, signatures: Sequence[tuple[int, bytes]]) -> None:
    if conn.dialect.name != "postgresql":
        upsert(conn, schema.article_signatures,
               [{"article_id": i, "signature": s} for i, s in signatures], ["article_id"], ["signature"])
        return
    if signatures:
        ids, sketches = zip(*sorted(signatures), strict=True)
        conn.exec_driver_sql(
            "INSERT INTO article_signatures (article_id, signature) "
            "SELECT * FROM unnest(%(ids)s::bigint[], %(sketches)s::bytea[]) "
            "ON CONFLICT (article_id) DO UPDATE SET signature = excluded.signature",
            {"ids": list(ids), "sketches": list(sketches)})


@dataclass(slots=True, frozen=True)
class _Current:
    id: int
    canonical_url: str
    content_hash: str
    version: int
    story_id: int | None


def _current(conn: Connection, column: Any, values: Sequence[str]) -> list[_Current]:
    a = schema.articles
    values = sorted(set(values))
    found: list[_Current] = []
    for start in range(0, len(values), 500):
        query = (select(a.c.id, a.c.canonical_url, a.c.content_hash, a.c.version, a.c.story_id)
                 .where(column.in_(values[start:start + 500])).order_by(a.c.id))
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


def _late_near_copies(conn: Connection, fresh: Sequence[Article], settings: Settings | None,
                      seen_up_to: int | None) -> dict[str, Duplicate]:
    """Near copies of articles another run loaded since this batch was deduplicated, by canonical URL.

    `seen_up_to`: the newest article id the dedupe stage could see (loads take turns under the load lock,
    so an article committed after that has a larger id); without it, every article of the window counts.
    """
    if settings is None or not fresh:
        return {}
    if seen_up_to is not None:
        a = schema.articles
        if conn.execute(select(a.c.id).where(a.c.id > seen_up_to).limit(1)).first() is None:
            return {}  # nothing loaded since the dedupe stage looked: its verdict stands
    recheck = deduplicate(fresh, WarehouseIndex(conn, after_id=seen_up_to), settings)
    return {d.canonical_url: d for d in recheck.duplicates if d.kept_article_id is not None}


def _record_writes(conn: Connection, run_id: str, now: Any, article_ids: Sequence[int],
                   duplicate_urls: Sequence[str], stories_opened: Sequence[int] = (),
                   joined: Sequence[int] = ()) -> None:
    """`run_writes`: the articles and duplicates this run wrote, for its loaded checks; the stories it
    opened, and its articles that joined a story opened before it, for its summary."""
    rows = [{"run_id": run_id, "kind": kind, "row_id": i, "written_at": now}
            for kind, ids in (("article", article_ids), ("story", stories_opened), ("story_join", joined))
            for i in ids]
    d = schema.duplicates
    urls = sorted(set(duplicate_urls))
    for start in range(0, len(urls), 500):
        rows += [{"run_id": run_id, "kind": "duplicate", "row_id": i, "written_at": now}
                 for i in conn.execute(select(d.c.id).where(d.c.url.in_(urls[start:start + 500]))).scalars()]
    upsert(conn, schema.run_writes, rows, ["run_id", "kind", "row_id"])


def _joined(conn: Connection, run_id: str, story_of: dict[str, int], opened: Sequence[int]) -> dict[str, int]:
    """The articles of a batch that joined a story opened before this run (not by this batch, nor by an
    earlier batch of the run: `run_writes`)."""
    earlier = set(opened)
    candidates = sorted({story for story in story_of.values() if story not in earlier})
    w = schema.run_writes
    for start in range(0, len(candidates), 500):
        earlier.update(conn.execute(select(w.c.row_id).where(
            w.c.run_id == run_id, w.c.kind == "story", w.c.row_id.in_(candidates[start:start + 500]))).scalars())
    return {url: story for url, story in story_of.items() if story not in earlier}


def load_batch(engine: Engine, run_id: str, articles: Sequence[Article], fingerprints: dict[str, Fingerprint],
               duplicates: Sequence[Duplicate], settings: Settings | None = None,
               seen_up_to: int | None = None) -> LoadOutcome:
    """Write one batch in one transaction: all of it, or (on error) none of it.

    With `settings`, articles new to the warehouse are checked again for near copies loaded meanwhile by
    another run (those with an id above `seen_up_to`, the dedupe stage's `WarehouseIndex.newest_id()`, when
    given) and linked to their story.
    """
    outcome = LoadOutcome()
    outcome.stats.add("in", len(articles))
    by_url = {a.canonical_url: a for a in articles}  # one row per key; the last copy wins
    by_url = dict(sorted(by_url.items()))  # one key order for every statement: no deadlocks
    a = schema.articles
    with write_transaction(engine) as conn:
        now = utcnow()
        current = {c.canonical_url: c for c in _current(conn, a.c.canonical_url, list(by_url))}
        # Loaded meanwhile by another run under another URL: a copy of that article, not a new one.
        new_hashes = {art.content_hash for url, art in by_url.items() if url not in current}
        same_text: dict[str, _Current] = {}
        for c in _current(conn, a.c.content_hash, list(new_hashes)):
            same_text.setdefault(c.content_hash, c)  # the first loaded
        late_copies = {url: same_text[art.content_hash] for url, art in by_url.items()
                       if url not in current and art.content_hash in same_text}
        late_near = _late_near_copies(conn, [art for url, art in by_url.items()
                                             if url not in current and url not in late_copies], settings, seen_up_to)
        changed = [c for url, c in current.items() if c.content_hash != by_url[url].content_hash]
        _keep_previous_texts(conn, changed, run_id, now)
        changed_urls = {c.canonical_url for c in changed}
        kept = [art for url, art in by_url.items() if url not in late_copies and url not in late_near]
        story_of: dict[str, int] = {}
        if settings is not None:  # same-story links for articles without one (new to the warehouse)
            story_of, outcome.stories_opened = assign_stories(
                conn, [art for art in kept if art.canonical_url not in current
                       or current[art.canonical_url].story_id is None], now, settings)
            outcome.stats.add("stories_linked", len(story_of))
            outcome.joined = _joined(conn, run_id, story_of, outcome.stories_opened)
        rows = [article_row(art, run_id, now,
                            current[art.canonical_url].version + (art.canonical_url in changed_urls)
                            if art.canonical_url in current else 1, story_of.get(art.canonical_url))
                for art in kept]
        ids = _upsert_articles(conn, rows)
        missing = {d.kept_url for d in duplicates if not d.kept_article_id and d.kept_url not in ids}
        if missing:
            ids.update(_ids_by_canonical_url(conn, list(missing)))
        ids.update({url: c.id for url, c in late_copies.items()})  # copies of them point at the original
        ids.update({url: d.kept_article_id for url, d in late_near.items()})
        outcome.article_ids = {row["canonical_url"]: ids[row["canonical_url"]] for row in rows}
        signatures: list[tuple[int, bytes]] = []
        band_keys: set[tuple[str, int]] = set()
        for url, print_ in fingerprints.items():
            if url in outcome.article_ids:
                article_id = outcome.article_ids[url]
                signatures.append((article_id, print_.sketch))
                band_keys.update((key, article_id) for key in print_.band_keys)
        _upsert_signatures(conn, signatures)
        # An article stored before may have a changed text: its old band keys go (new ones have none).
        stale = sorted(outcome.article_ids[url] for url in outcome.article_ids if url in current)
        for start in range(0, len(stale), 500):
            conn.execute(delete(schema.article_band_keys)
                         .where(schema.article_band_keys.c.article_id.in_(stale[start:start + 500])))
        # Those deleted just above, the rest new: plain bulk insert, no conflict possible.
        bulk_insert(conn, schema.article_band_keys, ["band_key", "article_id"], sorted(band_keys))
        late = [Duplicate(url=art.url, source=art.source, kept_url=late_copies[url].canonical_url, kind="exact",
                          kept_article_id=late_copies[url].id, canonical_url=url, input_hash=art.input_hash)
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
                "run_id": run_id, "detected_at": now, "input_hash": duplicate.input_hash or None})
        upsert(conn, schema.duplicates, duplicate_rows, ["url"],
               ["canonical_url", "source", "article_id", "kind", "similarity", "run_id", "detected_at", "input_hash"])
        _record_writes(conn, run_id, now, list(outcome.article_ids.values()), [r["url"] for r in duplicate_rows],
                       outcome.stories_opened, [outcome.article_ids[url] for url in outcome.joined])
    outcome.stats.add("out", len(rows))
    outcome.stats.add("versions", len(changed))
    # What became of the articles taken in (they add up to "in"): written new or with a changed text, seen
    # again with the text they had (unchanged), or copies of an article another run loaded meanwhile.
    outcome.stats.add("new", sum(1 for row in rows if row["canonical_url"] not in current))
    outcome.stats.add("changed", len(changed))
    outcome.stats.add("unchanged", len(rows) - outcome.stats.counts["new"] - len(changed))
    outcome.stats.add("copies", len(articles) - len(rows))
    outcome.stats.add("stories_opened", len(outcome.stories_opened))
    outcome.stats.add("stories_joined", len(outcome.joined))
    outcome.stats.add("late_duplicates", len(late))
    outcome.stats.add("duplicates", len(duplicate_rows))
    return outcome
