"""The raw store: the bytes of every fetched document, gzip-compressed and keyed by content hash, in the
warehouse (`raw_blobs`, `raw_documents`). `reprocess` rebuilds documents from it without fetching."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from tasks import schema
from tasks.db import upsert
from tasks.http import decode_body
from tasks.records import Document, utcnow

PLAIN_TEXT = "text/plain"


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(slots=True)
class RawDocument:
    """A fetched body as received (decompressed), with what is needed to make a `Document` of it again."""

    source: str
    url: str
    body: bytes
    content_type: str = "text/html"  # media type, no parameters
    charset: str | None = None  # the charset the server declared, if any
    hints: dict[str, Any] = field(default_factory=dict)
    fetched_at: datetime = field(default_factory=utcnow)
    status_code: int | None = None
    kind: str = "page"  # page (becomes a Document), feed, sitemap
    content_hash: str = ""

    def __post_init__(self) -> None:
        self.content_hash = self.content_hash or content_hash(self.body)

    @property
    def input_hash(self) -> str:
        """What cleaning makes an article of: the body, how it is decoded, and the hints (a feed item's or
        a JSON record's title, date, authors). Equal inputs make the same article."""
        parts = [self.content_hash, self.content_type or "", self.charset or "",
                 json.dumps(_jsonable(self.hints), sort_keys=True)]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def to_document(raw: RawDocument) -> Document:
    """The Document a raw page makes (the same one the fetch stage passed on)."""
    text = decode_body(raw.body, raw.charset)
    plain = raw.content_type == PLAIN_TEXT
    return Document(source=raw.source, url=raw.url, html=None if plain else text, text=text if plain else None,
                    content_type=raw.content_type or "text/html", fetched_at=raw.fetched_at,
                    status_code=raw.status_code, hints=dict(raw.hints), input_hash=raw.input_hash)


def from_document(document: Document, body: bytes | None = None, charset: str | None = "utf-8") -> RawDocument:
    """A raw entry for a document read from a file or record (its text is the raw document)."""
    if body is None:
        body = (document.html if document.html is not None else document.text or "").encode("utf-8")
    return RawDocument(source=document.source, url=document.url, body=body,
                       content_type=PLAIN_TEXT if document.html is None else document.content_type,
                       charset=charset, hints=document.hints, fetched_at=document.fetched_at,
                       status_code=document.status_code)


def _jsonable(hints: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(hints, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def store_raw(engine: Engine, raws: Sequence[RawDocument], compression_level: int = 1) -> int:
    """Keep the bodies (each distinct body once, gzip at `compression_level`) and one row per (URL, body);
    idempotent."""
    if not raws:
        return 0
    blobs = {r.content_hash: {"content_hash": r.content_hash, "size": len(r.body),
                              "data": gzip.compress(r.body, compresslevel=compression_level)} for r in raws}
    rows = [{"url": r.url, "content_hash": r.content_hash, "source": r.source, "kind": r.kind,
             "content_type": r.content_type, "charset": r.charset, "status_code": r.status_code,
             "hints": _jsonable(r.hints), "first_fetched_at": r.fetched_at, "last_fetched_at": r.fetched_at}
            for r in raws]
    with engine.connect() as conn, conn.execution_options(sqlite_immediate=True).begin():
        # IMMEDIATE: this transaction reads, then writes; SQLite must not fail it on the upgrade.
        known = set(conn.scalars(select(schema.raw_blobs.c.content_hash)
                                 .where(schema.raw_blobs.c.content_hash.in_(list(blobs)))))
        upsert(conn, schema.raw_blobs, [b for h, b in blobs.items() if h not in known], ["content_hash"])
        upsert(conn, schema.raw_documents, rows, ["url", "content_hash"],
               ["source", "hints", "status_code", "last_fetched_at"])
    return len(rows)


def select_raw(engine: Engine, sources: Iterable[str] | None = None, urls: Iterable[str] | None = None,
               since: datetime | None = None, kind: str = "page") -> list[RawDocument]:
    """The latest stored body of every page matching all the given filters (none: every page).

    Other selections (e.g. the URLs of quarantined records) come in as `urls`.
    """
    return [raw for _, raw in select_raw_page(engine, sources, urls, since, kind)]


def select_raw_page(engine: Engine, sources: Iterable[str] | None = None, urls: Iterable[str] | None = None,
                    since: datetime | None = None, kind: str = "page", after_id: int = 0,
                    limit: int | None = None) -> list[tuple[int, RawDocument]]:
    """Like `select_raw`, a page at a time: (row id, document) of at most `limit` pages stored under a row id
    above `after_id`, in row order (the last id is where the next page starts)."""
    r, b = schema.raw_documents, schema.raw_blobs
    latest = select(r.c.url, func.max(r.c.last_fetched_at).label("at")).where(r.c.kind == kind)
    if sources is not None:
        latest = latest.where(r.c.source.in_(list(sources)))
    if since is not None:
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        latest = latest.where(r.c.last_fetched_at >= since)
    url_list = list(urls) if urls is not None else None
    if url_list is not None:
        latest = latest.where(r.c.url.in_(url_list))
    latest = latest.group_by(r.c.url).subquery()
    query = (select(r, b.c.data).join(b, b.c.content_hash == r.c.content_hash)
             .join(latest, (latest.c.url == r.c.url) & (latest.c.at == r.c.last_fetched_at))
             .where(r.c.kind == kind, r.c.id > after_id).order_by(r.c.id))
    if limit is not None:
        query = query.limit(limit)
    found: dict[str, tuple[int, RawDocument]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            found[row["url"]] = (row["id"], RawDocument(
                source=row["source"], url=row["url"], body=gzip.decompress(row["data"]),
                content_type=row["content_type"] or "text/html", charset=row["charset"],
                hints=row["hints"] or {}, fetched_at=row["last_fetched_at"], status_code=row["status_code"],
                kind=row["kind"], content_hash=row["content_hash"]))
    return sorted(found.values(), key=lambda item: item[0])
