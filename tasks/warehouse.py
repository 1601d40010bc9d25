"""Connecting to the warehouse and writing the run's bookkeeping rows (runs, fetches, quarantine, DQ)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, insert, or_, select, update

from tasks import schema
from tasks.db import WarehouseError as WarehouseError  # (re-exported: what callers of the warehouse catch)
from tasks.db import dumps, make_engine, without_nul
from tasks.db import safe_url as safe_url
from tasks.db import write_transaction as write_transaction
from tasks.migrate import upgrade
from tasks.records import FetchAttempt, KnownArticle, Rejection, utcnow
from tasks.runs import mark_crashed_runs, start_heartbeat, stop_heartbeat, this_process

_log = logging.getLogger(__name__)


def open_warehouse(url: str, migrate: bool = True) -> Engine:
    """An engine for the warehouse URL, its schema first brought to the newest migration."""
    if migrate:
        upgrade(url)
    return make_engine(url)


# --- run bookkeeping -------------------------------------------------------------------------


def start_run(engine: Engine, run_id: str, flow_run_id: str | None = None) -> None:
    """Record a run as `running` where it runs, keep its heartbeat, and mark earlier runs that died as
    `crashed` (tasks.runs)."""
    from tasks.settings import get_settings

    host, pid = this_process()
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(schema.pipeline_runs).values(
            run_id=run_id, flow_run_id=None if flow_run_id is None else str(flow_run_id), started_at=now,
            status="running", host=host, pid=pid, heartbeat_at=now))
    every = get_settings().run_heartbeat_seconds
    start_heartbeat(engine, run_id, every)
    try:
        crashed = mark_crashed_runs(engine, every, except_run=run_id)
    except Exception as exc:  # bookkeeping about other runs must not stop this one
        _log.warning("could not look for crashed runs: %s: %s", type(exc).__name__, exc)
    else:
        if crashed:
            _log.warning("marked %d earlier run(s) crashed: %s", len(crashed), ", ".join(crashed))


def finish_run(engine: Engine, run_id: str, status: str, counts: dict[str, Any], message: str | None = None,
               deferred_sources: dict[str, int] | None = None,
               stage_counts: list[dict[str, Any]] | None = None) -> None:
    """How the run ended, with its figures: every stage's in `stage_counts` (any stage of the pipeline), the
    flat ones that have a column of their own (`fetch_in`, ..., `quarantined`, `duplicates`, `deferred`), and
    what the sources' budgets left for the next runs."""
    allowed = set(schema.STAGE_COUNT_COLUMNS) | {"quarantined", "duplicates", "deferred"}
    values: dict[str, Any] = {k: int(v) for k, v in counts.items() if k in allowed}
    if stage_counts is not None:
        values["stage_counts"] = stage_counts
    stop_heartbeat(run_id)
    with engine.begin() as conn:
        conn.execute(update(schema.pipeline_runs).where(schema.pipeline_runs.c.run_id == run_id).values(
            finished_at=utcnow(), status=status, message=message, deferred_sources=deferred_sources or None,
            **values))


def record_fetches(engine: Engine, run_id: str, attempts: Iterable[FetchAttempt]) -> int:
    rows = [without_nul({"run_id": run_id, "source": a.source, "url": a.url, "status_code": a.status_code,
             "error": a.error, "bytes": a.bytes, "elapsed_ms": a.elapsed_ms,
             "content_type": a.content_type, "fetched_at": a.fetched_at, "error_kind": a.error_kind,
             "retries": a.retries, "not_modified": a.not_modified, "content_hash": a.content_hash})
            for a in attempts]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(schema.fetches), rows)
    return len(rows)


def record_rejections(engine: Engine, run_id: str, rejections: Iterable[Rejection]) -> int:
    now = utcnow()
    rows = [without_nul({"run_id": run_id, "stage": r.stage, "source": r.source, "url": r.url,
                         "reasons": list(r.reasons), "payload": json.loads(dumps(r.payload)),
                         "quarantined_at": now})
            for r in rejections]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(schema.quarantine), rows)
    return len(rows)


def record_dq_results(engine: Engine, run_id: str, results: Iterable[dict[str, Any]]) -> int:
    now = utcnow()
    rows = [{"run_id": run_id, "checked_at": now, **r} for r in results]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(schema.dq_results), rows)
    return len(rows)


# --- what dedupe needs to know ---------------------------------------------------------------


class WarehouseIndex:
    """The dedupe stage's view of articles already loaded (implements `tasks.dedupe.DedupIndex`).

    Works on an engine, or on a connection inside a transaction (the load stage's last check, which
    only looks at articles with an id above `after_id`: those loaded since the dedupe stage looked).
    """

    def __init__(self, bind: Engine | Connection, after_id: int | None = None) -> None:
        self.bind = bind
        self.after_id = after_id

    def newest_id(self) -> int:
        """The largest article id committed so far (0 when there is none). Loads take turns under the load
        lock and ids only grow, so an article committed later has a larger id: the load stage passes this,
        read before deduplicating, as `seen_up_to` and checks again only what came after it."""
        with self._connect() as conn:
            return conn.execute(select(func.max(schema.articles.c.id))).scalar() or 0

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            yield self.bind
        else:
            with self.bind.connect() as conn:
                yield conn

    def _known(self, column: Any, values: Iterable[str]) -> dict[str, KnownArticle]:
        values = list(set(values))
        found: dict[str, KnownArticle] = {}
        a = schema.articles
        with self._connect() as conn:
            for start in range(0, len(values), 500):
                query = select(a.c.id, a.c.canonical_url, column).where(column.in_(values[start:start + 500]))
                if self.after_id is not None:
                    query = query.where(a.c.id > self.after_id)
                rows = conn.execute(query)
                for row in rows:
                    found[row[2]] = KnownArticle(row.id, row.canonical_url)
        return found

    def by_canonical_url(self, urls: Iterable[str]) -> dict[str, KnownArticle]:
        return self._known(schema.articles.c.canonical_url, urls)

    def by_content_hash(self, hashes: Iterable[str]) -> dict[str, KnownArticle]:
        return self._known(schema.articles.c.content_hash, hashes)

    def band_key_matches(self, keys: Iterable[str], per_key: int | None = None) -> list[tuple[str, int]]:
        """(band key, article id) of the stored articles with any of `keys` (above `after_id`): of each key
        only its `per_key` newest (all when None), each key read by its own index scan (the primary key
        band_key, article_id, backwards) that stops there, however many articles share the key.

        Without the bound, keys that many stored texts share (a common lead, an outlet's standard phrasing,
        a generated corpus's templates) brought all of them, and the work per batch grew with the warehouse.
        """
        b, keys, found = schema.article_band_keys, sorted(set(keys)), []
        after = -1 if self.after_id is None else self.after_id
        with self._connect() as conn:
            if per_key is None:
                for start in range(0, len(keys), 2000):
                    query = select(b.c.band_key, b.c.article_id).where(b.c.band_key.in_(keys[start:start + 2000]))
                    found += conn.execute(query.where(b.c.article_id > after)).tuples().all()
            else:  # tens of thousands of (key, id) rows a batch: read as plain tuples from the driver's cursor
                cursor = conn.connection.cursor()
                try:
                    found += _newest_per_key(cursor, conn.dialect.name, keys, after, per_key)
                finally:
                    cursor.close()
        return found

    def signatures(self, ids: Iterable[int], since: datetime | None = None) -> list[KnownArticle]:
        """Articles by id (first seen since `since`) with their signatures.

        A lookup by id apart from the band keys': one statement joining the three let PostgreSQL, before its
        first ANALYZE of a fast-growing warehouse, hash-join a sequential scan of `articles`, and the time per
        batch grew with the warehouse.
        """
        a, s = schema.articles, schema.article_signatures
        ordered, found = sorted(set(ids)), []
        with self._connect() as conn:
            for start in range(0, len(ordered), 500):
                query = (select(a.c.id, a.c.canonical_url, s.c.signature).join(s, s.c.article_id == a.c.id)
                         .where(a.c.id.in_(ordered[start:start + 500])))
                if since is not None:
                    query = query.where(a.c.first_seen_at >= since)
                found += [KnownArticle(r.id, r.canonical_url, r.signature) for r in conn.execute(query)]
        return found


def _newest_per_key(cursor: Any, dialect: str, keys: list[str], after: int, per_key: int) -> list[tuple[str, int]]:
    """The newest articles of each band key, each key read by its own index scan that stops after `per_key`
    rows: a lateral join on PostgreSQL (2,000 keys a statement), elsewhere a union of per-key scans."""
    found: list[tuple[str, int]] = []
    if dialect == "postgresql":
        for start in range(0, len(keys), 2000):
            cursor.execute(_NEWEST_PER_KEY_PG, {"keys": keys[start:start + 2000], "after": after, "per_key": per_key})
            found += cursor.fetchall()
        return found
    for start in range(0, len(keys), _KEYS_PER_UNION):
        chunk = keys[start:start + _KEYS_PER_UNION]
        cursor.execute(_newest_per_key_union(len(chunk)), [value for key in chunk for value in (key, after, per_key)])
        found += cursor.fetchall()
    return found


_NEWEST_PER_KEY_PG = (
    "SELECT wanted.band_key, newest.article_id FROM unnest(CAST(%(keys)s AS text[])) AS wanted(band_key) "
    "CROSS JOIN LATERAL (SELECT b.article_id FROM article_band_keys AS b WHERE b.band_key = wanted.band_key "
    "AND b.article_id > %(after)s ORDER BY b.article_id DESC LIMIT %(per_key)s) AS newest")
_KEYS_PER_UNION = 200  # SQLite allows 500 terms in a compound SELECT


@lru_cache(maxsize=4)
def _newest_per_key_union(count: int) -> str:
    return " UNION ALL ".join(
        ["SELECT band_key, article_id FROM (SELECT band_key, article_id FROM article_band_keys "
         "WHERE band_key = ? AND article_id > ? ORDER BY article_id DESC LIMIT ?)"] * count)


# One engine per warehouse URL per process: making one brings the schema up to date (migrations checked), not
# to be paid per task. What an engine holds open, its pooled connections, lasts a run (`dispose_engines`).
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process's engine for a warehouse URL, its schema brought to the newest migration on first use."""
    with _ENGINES_LOCK:  # (held while migrating: two tasks starting together must not both migrate)
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = open_warehouse(url)
        return engine


def dispose_engines(forget: bool = False) -> None:
    """Close the pooled connections of every engine `get_engine` made: a run does when it ends, so that a
    process serving runs one after another keeps no connection open between them. The engines stay usable
    (the next run connects again, without migrating again) unless `forget`. A connection checked out
    meanwhile, by a run still going on another thread, is closed when it is given back."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        if forget:
            _ENGINES.clear()
    for engine in engines:
        engine.dispose()


def held_back_urls(engine: Engine, stage: str | None = None) -> list[str]:
    """URLs of quarantined records not loaded since (neither as an article nor as a duplicate)."""
    q, a, d = schema.quarantine, schema.articles, schema.duplicates
    query = (select(q.c.url).distinct()
             .where(q.c.url.is_not(None))
             .where(~exists().where(or_(a.c.url == q.c.url, a.c.canonical_url == q.c.url)))
             .where(~exists().where(d.c.url == q.c.url)))
    if stage:
        query = query.where(q.c.stage == stage)
    with engine.connect() as conn:
        return sorted(conn.execute(query).scalars())
