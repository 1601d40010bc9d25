"""What the fetch stage remembers between runs: URLs already in the warehouse (not fetched again), the
validators of every feed, sitemap and page (conditional GET), how far each local file was read, and what
each stored article or copy was cleaned from (a page fetched again the same is unchanged)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, select, update

from tasks import schema
from tasks.db import upsert
from tasks.http import Validators
from tasks.records import Document, FileProgress, utcnow


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class FetchState(Protocol):
    def known_urls(self, urls: Iterable[str]) -> dict[str, datetime]:
        """URL -> when it was last seen, for the given URLs already in the warehouse."""
        ...

    def validators(self, urls: Iterable[str]) -> dict[str, Validators]: ...

    def file_progress(self, paths: Iterable[str]) -> dict[str, FileProgress]:
        """file:// URI -> how far earlier runs read it, for the given local files read before."""
        ...

    def unchanged(self, documents: Iterable[Document]) -> set[tuple[str, str]]:
        """(URL, input hash) of the given documents whose article or copy in the warehouse was cleaned from
        that same input (`Document.input_hash`)."""
        ...


class NoState:
    """A first crawl: nothing known, nothing conditional."""

    def known_urls(self, urls: Iterable[str]) -> dict[str, datetime]:
        return {}

    def validators(self, urls: Iterable[str]) -> dict[str, Validators]:
        return {}

    def file_progress(self, paths: Iterable[str]) -> dict[str, FileProgress]:
        return {}

    def unchanged(self, documents: Iterable[Document]) -> set[tuple[str, str]]:
        return set()


def _chunks(values: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    values = list(dict.fromkeys(values))
    for start in range(0, len(values), size):
        yield values[start:start + size]


class WarehouseState:
    """`FetchState` read from the warehouse: articles and duplicates by URL, `http_cache` validators."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def known_urls(self, urls: Iterable[str]) -> dict[str, datetime]:
        a, d = schema.articles, schema.duplicates
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(urls):
                for column in (a.c.url, a.c.canonical_url):
                    for url, seen in conn.execute(select(column, a.c.last_seen_at).where(column.in_(chunk))):
                        found[url] = max(filter(None, (found.get(url), _aware(seen))))
                for url, seen in conn.execute(select(d.c.url, d.c.detected_at).where(d.c.url.in_(chunk))):
                    found[url] = max(filter(None, (found.get(url), _aware(seen))))
        return found

    def validators(self, urls: Iterable[str]) -> dict[str, Validators]:
        c = schema.http_cache
        found: dict[str, Validators] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(urls):
                for row in conn.execute(select(c).where(c.c.url.in_(chunk))):
                    found[row.url] = Validators(row.etag, row.last_modified, _aware(row.fetched_at))
        return found

    def file_progress(self, paths: Iterable[str]) -> dict[str, FileProgress]:
        f = schema.local_files
        found: dict[str, FileProgress] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(paths):
                for row in conn.execute(select(f.c.path, f.c.fingerprint, f.c.position, f.c.items_read)
                                        .where(f.c.path.in_(chunk))):
                    found[row.path] = FileProgress(row.fingerprint, row.position, row.items_read)
        return found

    def unchanged(self, documents: Iterable[Document]) -> set[tuple[str, str]]:
        wanted = {(d.url, d.input_hash) for d in documents if d.input_hash}
        found: set[tuple[str, str]] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(h for _, h in wanted):
                for table in (schema.articles, schema.duplicates):
                    found.update((url, h) for url, h in conn.execute(
                        select(table.c.url, table.c.input_hash).where(table.c.input_hash.in_(chunk))))
        return found & wanted


def store_validators(engine: Engine, validators: Mapping[str, Validators]) -> int:
    """Remember the validators of good responses; the next run sends them back."""
    rows = [{"url": url, "etag": v.etag, "last_modified": v.last_modified, "fetched_at": v.fetched_at}
            for url, v in validators.items() if v.fetched_at is not None]
    if rows:
        with engine.begin() as conn:
            upsert(conn, schema.http_cache, rows, ["url"], ["etag", "last_modified", "fetched_at"])
    return len(rows)


def store_file_progress(engine: Engine, progress: Mapping[str, FileProgress]) -> int:
    """Remember how far local files were read: the next run goes on from there."""
    now = utcnow()
    rows = [{"path": path, "fingerprint": p.fingerprint, "position": p.position, "items_read": p.items, "read_at": now}
            for path, p in progress.items()]
    if rows:
        with engine.begin() as conn:
            upsert(conn, schema.local_files, rows, ["path"], ["fingerprint", "position", "items_read", "read_at"])
    return len(rows)


def store_seen(engine: Engine, urls: Iterable[str]) -> int:
    """Pages fetched again unchanged: their articles and copies are marked as seen now (what a source's
    `refresh_interval` counts from), as loading them again would have."""
    urls = list(dict.fromkeys(urls))
    if not urls:
        return 0
    now = utcnow()
    a, d = schema.articles, schema.duplicates
    with engine.begin() as conn:
        for chunk in _chunks(urls):
            conn.execute(update(a).where(a.c.url.in_(chunk)).values(last_seen_at=now))
            conn.execute(update(d).where(d.c.url.in_(chunk)).values(detected_at=now))
    return len(urls)


def state_for(engine: Engine, full_refresh: bool = False) -> FetchState:
    """What a run knows of earlier ones: the warehouse, or nothing for a full refresh (every page is
    fetched again, unconditionally; what it learns is still stored for the next run)."""
    return NoState() if full_refresh else WarehouseState(engine)
