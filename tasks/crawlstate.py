"""What the fetch stage remembers between runs: URLs already in the warehouse (not fetched again), the
validators of every feed, sitemap and page (conditional GET), and how far each local file was read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Engine, select

from tasks import schema
from tasks.db import upsert
from tasks.http import Validators
from tasks.records import FileProgress, utcnow


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


class NoState:
    """A first crawl: nothing known, nothing conditional."""

    def known_urls(self, urls: Iterable[str]) -> dict[str, datetime]:
        return {}

    def validators(self, urls: Iterable[str]) -> dict[str, Validators]:
        return {}

    def file_progress(self, paths: Iterable[str]) -> dict[str, FileProgress]:
        return {}


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


def state_for(engine: Engine, full_refresh: bool = False) -> FetchState:
    """What a run knows of earlier ones: the warehouse, or nothing for a full refresh (every page is
    fetched again, unconditionally; what it learns is still stored for the next run)."""
    return NoState() if full_refresh else WarehouseState(engine)
