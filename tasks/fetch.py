"""Fetch stage: turn sources (local files, RSS/Atom feeds, URL lists) into raw `Document`s.

Every attempt, good or bad, becomes a `FetchAttempt`; a bad item becomes a `Rejection`. Nothing raises
out of `fetch_source` for a bad page, feed or file: the rest of the source goes on.
"""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
from charset_normalizer import from_bytes

from tasks.records import Document, FetchAttempt, Rejection, StageStats
from tasks.settings import Settings
from tasks.sources import FilesSource, RssSource, Source, UrlsSource

TEXTUAL_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml",
                 "application/rss+xml", "application/atom+xml", "application/json", "application/feed+json")


@dataclass(slots=True)
class FetchOutcome:
    """What fetching one source produced."""

    source: str
    documents: list[Document] = field(default_factory=list)
    attempts: list[FetchAttempt] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: StageStats = field(default_factory=lambda: StageStats("fetch"))

    def reject(self, url: str | None, reason: str, **payload: Any) -> None:
        self.rejections.append(Rejection("fetch", self.source, url, [reason], payload))
        self.stats.add("quarantined")


@dataclass(slots=True)
class HttpResult:
    attempt: FetchAttempt
    body: bytes | None = None
    text: str | None = None
    final_url: str | None = None


def decode_body(body: bytes, header_charset: str | None) -> str:
    """Decode with the declared charset if it works, else detect; undecodable bytes never raise."""
    if header_charset:
        try:
            return body.decode(header_charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


class HttpFetcher:
    """One shared HTTP client: timeouts, User-Agent, redirect bound and a response size cap."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=True,
            max_redirects=settings.max_redirects,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HttpFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, source: str) -> HttpResult:
        attempt = FetchAttempt(source=source, url=url)
        started = time.perf_counter()
        try:
            with self.client.stream("GET", url) as response:
                attempt.status_code = response.status_code
                attempt.content_type = response.headers.get("content-type")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.settings.max_response_bytes:
                        attempt.error = f"too large: over {self.settings.max_response_bytes} bytes"
                        break
                    chunks.append(chunk)
                attempt.bytes = size
                body = b"".join(chunks)
                if attempt.error is None and response.status_code >= 400:
                    attempt.error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if attempt.error is None:
                    return HttpResult(attempt, body, decode_body(body, response.charset_encoding),
                                      str(response.url))
                return HttpResult(attempt)
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return HttpResult(attempt)
        finally:
            attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- files -----------------------------------------------------------------------------------


def _record_to_document(record: Any, source: str, location: str) -> Document | str:
    """A JSON record becomes a Document, or the reason it cannot."""
    if not isinstance(record, dict):
        return "JSON record is not an object"
    text, html = record.get("text"), record.get("html")
    if not (isinstance(text, str) and text.strip()) and not (isinstance(html, str) and html.strip()):
        return "JSON record has no 'text' or 'html'"
    hints = {k: record[k] for k in ("title", "authors", "summary") if record.get(k)}
    if published := _parse_date(record.get("published_at")):
        hints["published_at"] = published
    return Document(
        source=source,
        url=str(record.get("url") or location),
        html=html if isinstance(html, str) and html.strip() else None,
        text=text if isinstance(text, str) and not html else None,
        content_type="text/html" if html else "text/plain",
        hints=hints,
    )


def read_file(path: Path, source: str, outcome: FetchOutcome, max_bytes: int) -> Iterator[Document]:
    """Yield the documents one local file holds (.txt/.html one each, .json/.jsonl one per record)."""
    url = path.resolve().as_uri()
    attempt = FetchAttempt(source=source, url=url, content_type=path.suffix.lstrip("."))
    outcome.attempts.append(attempt)
    started = time.perf_counter()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"
        outcome.reject(url, f"unreadable file: {exc}")
        return
    finally:
        attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)
    attempt.bytes = len(raw)
    if len(raw) > max_bytes:
        attempt.error = f"too large: over {max_bytes} bytes"
        outcome.reject(url, attempt.error)
        return
    content = decode_body(raw, None)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        yield Document(source=source, url=url, html=content, content_type="text/html")
    elif suffix == ".txt":
        yield Document(source=source, url=url, text=content, content_type="text/plain")
    elif suffix == ".jsonl":
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            location = f"{url}#L{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                outcome.reject(location, f"malformed JSON at line {number}: {exc.msg}", line=line[:2000])
                continue
            document = _record_to_document(record, source, location)
            if isinstance(document, str):
                outcome.reject(location, document, record=record)
            else:
                yield document
    elif suffix == ".json":
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            attempt.error = f"malformed JSON: {exc.msg}"
            outcome.reject(url, f"malformed JSON: {exc.msg} at line {exc.lineno}")
            return
        records = data if isinstance(data, list) else [data]
        for number, record in enumerate(records):
            location = f"{url}#{number}"
            document = _record_to_document(record, source, location)
            if isinstance(document, str):
                outcome.reject(location, document, record=record)
            else:
                yield document
    else:
        attempt.error = f"unsupported file type {suffix!r}"
        outcome.reject(url, f"unsupported file type {suffix!r}")


def fetch_files(source: FilesSource, settings: Settings, outcome: FetchOutcome) -> None:
    paths = sorted(Path(p) for p in glob.glob(source.path, recursive=True) if Path(p).is_file())
    if not paths:
        outcome.attempts.append(FetchAttempt(source.name, source.path, error="no file matches"))
        outcome.reject(source.path, "no file matches the path")
        return
    limit = source.max_items or settings.max_items_per_source
    for path in paths:
        for document in read_file(path, source.name, outcome, settings.max_response_bytes):
            outcome.stats.add("in")
            if len(outcome.documents) >= limit:
                outcome.stats.add("over_limit")
                continue
            outcome.documents.append(document)


# --- http ------------------------------------------------------------------------------------


def _fetch_page(
    fetcher: HttpFetcher, url: str, source: str, hints: dict[str, Any]
) -> tuple[HttpResult, Document | None]:
    result = fetcher.get(url, source)
    if result.text is None:
        return result, None
    media = _media_type(result.attempt.content_type)
    if media and media not in TEXTUAL_TYPES:
        result.attempt.error = f"unsupported content type {media}"
        return result, None
    document = Document(
        source=source,
        url=result.final_url or url,
        html=result.text if media != "text/plain" else None,
        text=result.text if media == "text/plain" else None,
        content_type=media or "text/html",
        status_code=result.attempt.status_code,
        fetched_at=result.attempt.fetched_at,
        hints=dict(hints),
    )
    return result, document


def fetch_pages(fetcher: HttpFetcher, items: list[tuple[str, dict[str, Any]]], source: Source,
                settings: Settings, outcome: FetchOutcome) -> None:
    """Fetch article pages concurrently; each failure is an attempt with its error and a rejection."""
    limit = source.max_items or settings.max_items_per_source
    items = items[:limit]
    outcome.stats.add("in", len(items))
    with ThreadPoolExecutor(max_workers=max(1, settings.fetch_concurrency)) as pool:
        results = pool.map(lambda item: _fetch_page(fetcher, item[0], source.name, item[1]), items)
        for (url, _), (result, document) in zip(items, results, strict=True):
            outcome.attempts.append(result.attempt)
            if document is None:
                outcome.reject(url, result.attempt.error or "fetch failed",
                               status_code=result.attempt.status_code)
            else:
                outcome.documents.append(document)


def feed_items(feed_text: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """Article links of an RSS/Atom feed with their hints, or the reason the feed is unusable."""
    parsed = feedparser.parse(feed_text)
    if parsed.bozo and not parsed.entries:
        return [], f"malformed feed: {parsed.get('bozo_exception')}"
    items: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        link = entry.get("link")
        if not link or link in seen:
            continue
        seen.add(link)
        hints: dict[str, Any] = {}
        if entry.get("title"):
            hints["title"] = entry["title"]
        if entry.get("summary"):
            hints["summary"] = entry["summary"]
        if entry.get("author"):
            hints["authors"] = [entry["author"]]
        if entry.get("published_parsed"):
            hints["published_at"] = datetime(*entry.published_parsed[:6], tzinfo=UTC)
        items.append((link, hints))
    return items, None


def fetch_rss(source: RssSource, fetcher: HttpFetcher, settings: Settings, outcome: FetchOutcome) -> None:
    result = fetcher.get(source.url, source.name)
    outcome.attempts.append(result.attempt)
    if result.text is None:
        outcome.reject(source.url, f"feed unavailable: {result.attempt.error}")
        return
    items, problem = feed_items(result.text)
    if problem:
        result.attempt.error = problem
        outcome.reject(source.url, problem, body=result.text[:2000])
        return
    fetch_pages(fetcher, items, source, settings, outcome)


def fetch_source(source: Source, settings: Settings, fetcher: HttpFetcher | None = None) -> FetchOutcome:
    """Fetch everything one source lists. Never raises for bad input: it is recorded instead."""
    outcome = FetchOutcome(source=source.name)
    if isinstance(source, FilesSource):
        fetch_files(source, settings, outcome)
    else:
        owned = fetcher is None
        fetcher = fetcher or HttpFetcher(settings)
        try:
            if isinstance(source, RssSource):
                fetch_rss(source, fetcher, settings, outcome)
            elif isinstance(source, UrlsSource):
                fetch_pages(fetcher, [(u, {}) for u in source.urls], source, settings, outcome)
        finally:
            if owned:
                fetcher.close()
    outcome.stats.add("out", len(outcome.documents))
    return outcome
