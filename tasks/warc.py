"""WARC files (warcio), as Common Crawl's CC-NEWS publishes them: each `response` record is a fetch that
already happened; other records (request, metadata, warcinfo, revisit) are skipped and counted. A file is
read from a record's offset, so that a run can go on where the last one stopped (see `tasks.localfiles`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord

from tasks.http import media_type
from tasks.rawstore import RawDocument
from tasks.records import FetchAttempt


@dataclass(slots=True)
class WarcItem:
    """One response record: its attempt row, and its raw page when it is a usable textual 2xx."""

    attempt: FetchAttempt
    raw: RawDocument | None = None
    offset: int = 0  # where the record starts in the file: a later run can start there


def _capture_time(value: str | None) -> datetime:
    try:
        parsed = datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _records(stream: BinaryIO, start: int) -> Iterator[tuple[int, ArcWarcRecord]]:
    """(offset, record) from `start` on (a record's offset: gzip members and plain records both resume)."""
    stream.seek(start)
    records = ArchiveIterator(stream)
    for record in records:
        if record.format != "warc":  # warcio reads anything as an old ARC record; we want WARC
            raise ValueError(f"not a WARC file (looks like {record.format})")
        yield records.offset, record  # (warcio moves `offset` on once the record is read)


def read_warc(path: Path, source: str, max_bytes: int, accept: Callable[[str], bool],
              skipped: Callable[[str], None], start: int = 0) -> Iterator[WarcItem]:
    """Yield an item per response record from offset `start`; `skipped(record_type)` is told about the
    others. At most `max_bytes + 1` bytes of a body are read, whatever its size. A damaged file ends with
    an attempt carrying the error (records before it are kept)."""
    started = time.perf_counter()
    try:
        with path.open("rb") as stream:
            for offset, record in _records(stream, start):
                if record.rec_type != "response" or record.http_headers is None:
                    skipped(record.rec_type or "unknown")
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI") or ""
                content_type = record.http_headers.get_header("Content-Type")
                status = record.http_headers.get_statuscode()
                attempt = FetchAttempt(source=source, url=url, status_code=int(status) if status.isdigit() else None,
                                       content_type=content_type,
                                       fetched_at=_capture_time(record.rec_headers.get_header("WARC-Date")))
                body = record.content_stream().read(max_bytes + 1)  # content_stream undoes transfer/content encoding
                attempt.bytes = len(body)
                attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                media = media_type(content_type)
                if attempt.status_code is None or not 200 <= attempt.status_code < 300:
                    attempt.error_kind, attempt.error = "http_status", f"archived response is HTTP {status}"
                elif len(body) > max_bytes:
                    attempt.error_kind, attempt.error = "too_large", f"too large: over {max_bytes} bytes"
                elif not accept(media):
                    attempt.error_kind, attempt.error = "content_type", f"unsupported content type {media or '(none)'}"
                elif not url.startswith(("http://", "https://")):
                    attempt.error_kind, attempt.error = "bad_url", f"record has no http(s) target URI: {url!r}"
                if attempt.error:
                    yield WarcItem(attempt, offset=offset)
                    continue
                charset = None
                if "charset=" in (content_type or "").lower():
                    charset = content_type.lower().split("charset=", 1)[1].split(";")[0].strip(" \"'") or None
                raw = RawDocument(source=source, url=url, body=body, content_type=media or "text/html",
                                  charset=charset, fetched_at=attempt.fetched_at, status_code=attempt.status_code)
                attempt.content_hash = raw.content_hash
                yield WarcItem(attempt, raw, offset)
    except (ArchiveLoadFailed, OSError, ValueError) as exc:
        attempt = FetchAttempt(source=source, url=path.resolve().as_uri(), error_kind="bad_warc",
                               error=f"unreadable WARC: {type(exc).__name__}: {exc}"[:1000])
        yield WarcItem(attempt)


def count_responses(path: Path, start: int = 0) -> int:
    """Response records from offset `start` to the end (what a run leaves for the next ones); bodies are
    skipped, not kept. A damaged tail counts as nothing more."""
    count = 0
    try:
        with path.open("rb") as stream:
            for _, record in _records(stream, start):
                count += record.rec_type == "response"
    except (ArchiveLoadFailed, OSError, ValueError):
        pass
    return count
