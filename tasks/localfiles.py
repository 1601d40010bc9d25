"""Local `files` and `warc` sources, read within a per-run budget from where earlier runs stopped.

A source's `max_items` is a budget, not a filter: each run takes up to that many items it has not read
before and reports the others as deferred, for the next runs. A file is known by its path, size and
modification time (a changed file is read again from its start); JSON Lines and WARC files are read in
parts, from the byte offset where the last run stopped. Nothing is read whole: a file, a JSON Lines line
or a WARC record's body is read up to the size cap and no further, so memory does not grow with the file.
Only files inside the allowed roots are read (see `allowed_roots`): a sources list given as a flow
parameter or a Prefect Variable, which the UI can edit, must not read the worker's files.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from tasks.crawlstate import FetchState
from tasks.http import decode_body
from tasks.outcome import FetchOutcome
from tasks.rawstore import from_document, to_document
from tasks.records import Document, FetchAttempt, FileProgress
from tasks.settings import Settings
from tasks.sources import FilesSource, WarcSource
from tasks.urls import canonicalize_url
from tasks.warc import count_responses, read_warc

READ_CHUNK = 1 << 20  # bytes read at a time when skipping or counting


def allowed_roots(settings: Settings) -> list[Path]:
    """The folders local files may be read from: the working directory, and NEWSFLOW_FILES_ROOTS (to which
    a run adds its sources file's folder)."""
    extra = [Path(p).expanduser() for p in settings.files_roots.split(os.pathsep) if p.strip()]
    return [root.resolve() for root in (Path.cwd(), *extra)]


def with_sources_folder(settings: Settings, sources_file: str | os.PathLike[str] | None) -> Settings:
    """The settings of a run reading `sources_file`: its folder is an allowed root too."""
    if not sources_file:
        return settings
    roots = [p for p in settings.files_roots.split(os.pathsep) if p.strip()]
    folder = str(Path(sources_file).resolve().parent)
    return settings.model_copy(update={"files_roots": os.pathsep.join([*roots, folder])})


def pattern_base(pattern: str) -> Path:
    """The folder a path or glob starts from: its parts before the first wildcard."""
    parts = Path(pattern).parts
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return Path(*fixed) if fixed else Path()


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()  # after `..` and symlinks
    return any(resolved.is_relative_to(root) for root in roots)


def _refuse(outcome: FetchOutcome, path: str, roots: list[Path]) -> None:
    reason = (f"outside the allowed folders ({', '.join(map(str, roots))}): {path}; "
              "add its folder to NEWSFLOW_FILES_ROOTS to read it")
    outcome.attempts.append(FetchAttempt(outcome.source, path, error=reason, error_kind="outside_roots"))
    outcome.reject(path, reason, error_kind="outside_roots")


def matching_files(pattern: str, roots: list[Path], outcome: FetchOutcome) -> list[Path]:
    """The files a source's path or glob names inside the allowed roots, in a stable order (the order runs
    take them in). A pattern starting outside them is not even listed; a file resolving outside them (a
    symlink) is refused: both recorded as failed fetches, never read."""
    if not _inside(pattern_base(pattern), roots):
        _refuse(outcome, pattern, roots)
        return []
    paths = []
    for name in sorted(glob.glob(pattern, recursive=True)):
        path = Path(name)
        if not _inside(path, roots):
            _refuse(outcome, str(path), roots)
        elif path.is_file():
            paths.append(path)
    return paths


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()


def fingerprint(path: Path) -> str:
    status = path.stat()
    return f"{status.st_size}:{status.st_mtime_ns}"


def _parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def record_to_document(record: Any, source: str, location: str) -> Document | str:
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


# --- where each file stands ------------------------------------------------------------------


def _start(path: Path, uri: str, known: dict[str, FileProgress], outcome: FetchOutcome) -> FileProgress | None:
    """Where to read `path` from this run; None when it has nothing new (read to its end before, unchanged)
    or cannot even be looked at (recorded)."""
    try:
        current = fingerprint(path)
    except OSError as exc:
        outcome.attempts.append(FetchAttempt(outcome.source, uri, error=f"{type(exc).__name__}: {exc}"))
        outcome.reject(uri, f"unreadable file: {exc}")
        return None
    previous = known.get(uri)
    if previous is None or previous.fingerprint != current:
        return FileProgress(current, 0, 0)
    if previous.finished:
        outcome.stats.add("known")
        return None
    return previous


def _lines_left(path: Path, position: int) -> int:
    """Lines from `position` to the end, counted a chunk at a time."""
    count, last = 0, b"\n"
    with path.open("rb") as stream:
        stream.seek(position)
        while chunk := stream.read(READ_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _items_left(path: Path, position: int, warc: bool) -> int:
    """What a file still holds for the next runs: its WARC response records or JSON Lines lines from
    `position`, else the file itself (one item)."""
    try:
        if warc:
            return count_responses(path, position)
        if path.suffix.lower() == ".jsonl":
            return _lines_left(path, position)
    except OSError:
        pass
    return 1


def _defer(outcome: FetchOutcome, n: int) -> None:
    if n:
        outcome.stats.add("deferred", n)


# --- files -----------------------------------------------------------------------------------


class TooLarge(Exception):
    pass


def read_capped(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, never more than `max_bytes + 1` of them read: TooLarge past the cap."""
    if path.stat().st_size > max_bytes:
        raise TooLarge
    with path.open("rb") as stream:
        data = stream.read(max_bytes + 1)  # (it may have grown since)
    if len(data) > max_bytes:
        raise TooLarge
    return data


def read_file(path: Path, uri: str, source: str, outcome: FetchOutcome, max_bytes: int) -> list[Document]:
    """The documents one .txt, .html or .json file holds (one each, one per JSON record)."""
    attempt = FetchAttempt(source=source, url=uri, content_type=path.suffix.lstrip("."))
    outcome.attempts.append(attempt)
    started = time.perf_counter()
    try:
        raw = read_capped(path, max_bytes)
    except TooLarge:
        attempt.bytes = path.stat().st_size
        attempt.error_kind, attempt.error = "too_large", f"too large: over {max_bytes} bytes"
        outcome.reject(uri, attempt.error)
        return []
    except OSError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"
        outcome.reject(uri, f"unreadable file: {exc}")
        return []
    finally:
        attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)
    attempt.bytes = len(raw)
    content = decode_body(raw, None)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return [Document(source=source, url=uri, html=content, content_type="text/html")]
    if suffix == ".txt":
        return [Document(source=source, url=uri, text=content, content_type="text/plain")]
    if suffix == ".json":
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            attempt.error = f"malformed JSON: {exc.msg}"
            outcome.reject(uri, f"malformed JSON: {exc.msg} at line {exc.lineno}")
            return []
        documents = []
        for number, record in enumerate(data if isinstance(data, list) else [data]):
            document = record_to_document(record, source, f"{uri}#{number}")
            if isinstance(document, str):
                outcome.reject(f"{uri}#{number}", document, record=record)
            else:
                documents.append(document)
        return documents
    attempt.error = f"unsupported file type {suffix!r}"
    outcome.reject(uri, f"unsupported file type {suffix!r}")
    return []


def _skip_line(stream: BinaryIO) -> None:
    """Read past the end of the current line without holding it."""
    while (chunk := stream.readline(READ_CHUNK)) and not chunk.endswith(b"\n"):
        pass


def read_jsonl(path: Path, uri: str, source: str, start: FileProgress, budget: int, max_bytes: int,
               outcome: FetchOutcome) -> FileProgress:
    """Up to `budget` documents from a JSON Lines file, from `start` on, a line at a time (a line over
    `max_bytes` is rejected without being held); returns where the next run goes on."""
    attempt = FetchAttempt(source=source, url=uri, content_type="jsonl")
    outcome.attempts.append(attempt)
    started = time.perf_counter()
    position: int | None = start.position or 0
    number, taken = start.items, 0
    with path.open("rb") as stream:
        stream.seek(position)
        while True:
            line_start = stream.tell()
            line = stream.readline(max_bytes + 1)
            if not line:
                position = None
                break
            if len(line) > max_bytes and not line.endswith(b"\n"):
                _skip_line(stream)
                outcome.reject(f"{uri}#L{number + 1}", f"line {number + 1} is over {max_bytes} bytes")
                number += 1
                continue
            if not line.strip():
                number += 1
                continue
            document = _jsonl_document(line, number + 1, uri, source, outcome)
            if document is not None and taken >= budget:  # the next run starts at this line
                position = line_start
                break
            number += 1
            if document is not None:
                taken += 1
                _take(outcome, document)
        attempt.bytes = (stream.tell() if position is None else position) - (start.position or 0)
    attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)
    return FileProgress(start.fingerprint, position, number)


def _jsonl_document(line: bytes, number: int, uri: str, source: str, outcome: FetchOutcome) -> Document | None:
    location = f"{uri}#L{number}"
    text = decode_body(line, None)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        outcome.reject(location, f"malformed JSON at line {number}: {exc.msg}", line=text[:2000])
        return None
    document = record_to_document(record, source, location)
    if isinstance(document, str):
        outcome.reject(location, document, record=record)
        return None
    return document


def _take(outcome: FetchOutcome, document: Document) -> None:
    outcome.stats.add("in")
    outcome.add(document, from_document(document))


# --- warc ------------------------------------------------------------------------------------


def read_warc_part(path: Path, source: str, start: FileProgress, budget: int, max_bytes: int,
                   outcome: FetchOutcome, accept: Callable[[str], bool]) -> FileProgress:
    """Up to `budget` documents from a WARC file's response records, from `start` on; returns where the
    next run goes on (the first usable record not taken)."""
    position: int | None = None
    items, taken = start.items, 0
    records = read_warc(path, source, max_bytes, accept,
                        lambda record_type: outcome.stats.add(f"warc_{record_type}_skipped"), start.position or 0)
    with closing(records):
        for item in records:
            if item.raw is not None and taken >= budget:
                position = item.offset
                break
            items += 1
            outcome.attempts.append(item.attempt)
            if item.raw is None:
                outcome.reject(item.attempt.url, item.attempt.error or "unusable record",
                               error_kind=item.attempt.error_kind, status_code=item.attempt.status_code)
                continue
            taken += 1
            outcome.stats.add("in")
            item.raw.url = canonicalize_url(item.raw.url)
            outcome.add(to_document(item.raw), item.raw)
    return FileProgress(start.fingerprint, position, items)


def _read_within_budget(paths: list[Path], budget: int, warc: bool, state: FetchState, outcome: FetchOutcome,
                        read_part: Callable[[Path, str, FileProgress, int], FileProgress]) -> None:
    """Read the files in order, each from where earlier runs stopped, until `budget` documents are taken;
    what is left (in the file where the budget ran out, and in the files after it) is counted as deferred.
    How far each file was read is left on the outcome, stored with its documents."""
    known = state.file_progress(file_uri(p) for p in paths)
    for path in paths:
        uri = file_uri(path)
        start = _start(path, uri, known, outcome)
        if start is None:
            continue
        if budget <= 0:
            _defer(outcome, _items_left(path, start.position or 0, warc))
            continue
        taken = len(outcome.documents)
        try:
            progress = read_part(path, uri, start, budget)
        except OSError as exc:  # not marked as read: the next run tries again
            outcome.reject(uri, f"unreadable file: {exc}")
            continue
        budget -= len(outcome.documents) - taken
        if progress.position is not None:
            _defer(outcome, _items_left(path, progress.position, warc))
        outcome.progress[uri] = progress


def fetch_files(source: FilesSource, settings: Settings, state: FetchState, outcome: FetchOutcome) -> None:
    """Up to the source's budget of documents from files not read before, in path order (a JSON file's
    records come together; a JSON Lines file may stop at a line); the rest is counted as deferred."""
    paths = matching_files(source.path, allowed_roots(settings), outcome)
    if not paths:
        if outcome.rejections:  # outside the allowed roots: refused, and the run fails saying so
            outcome.unavailable = outcome.rejections[0].reasons[0]
        else:
            outcome.attempts.append(FetchAttempt(source.name, source.path, error="no file matches"))
            outcome.reject(source.path, "no file matches the path")
            outcome.unavailable = f"no file matches {source.path}"  # fails the run: a typo is not "nothing new"
        return
    max_bytes = settings.max_response_bytes

    def read_part(path: Path, uri: str, start: FileProgress, budget: int) -> FileProgress:
        if path.suffix.lower() == ".jsonl":
            return read_jsonl(path, uri, source.name, start, budget, max_bytes, outcome)
        for document in read_file(path, uri, source.name, outcome, max_bytes):
            _take(outcome, document)
        return FileProgress(start.fingerprint)

    _read_within_budget(paths, source.max_items or settings.max_items_per_source, False, state, outcome,
                        read_part)


def fetch_warc(source: WarcSource, settings: Settings, state: FetchState, outcome: FetchOutcome,
               accept: Callable[[str], bool]) -> None:
    """Up to the source's budget of response records not read before, file by file from the offset where
    the last run stopped; the rest is counted as deferred."""
    paths = matching_files(source.path, allowed_roots(settings), outcome)
    if not paths:
        if outcome.rejections:
            outcome.unavailable = outcome.rejections[0].reasons[0]
        else:
            outcome.attempts.append(FetchAttempt(source.name, source.path, error="no file matches",
                                                 error_kind="no_file"))
            outcome.reject(source.path, "no WARC file matches the path")
            outcome.unavailable = f"no WARC file matches {source.path}"
        return

    def read_part(path: Path, uri: str, start: FileProgress, budget: int) -> FileProgress:
        return read_warc_part(path, source.name, start, budget, settings.max_response_bytes, outcome, accept)

    _read_within_budget(paths, source.max_items or settings.max_items_per_source, True, state, outcome,
                        read_part)
