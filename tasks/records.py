"""Typed records that flow between the stages.

One `Document` is created per fetched or read item and becomes one `Article` after cleaning.
Everything that is not passed on is kept as a `Rejection` (quarantine) or `Duplicate`, never dropped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from tasks.words import count_words

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Document:
    """A raw item as fetched or read, before cleaning. `html` or `text` carries the body."""

    source: str
    url: str
    html: str | None = None
    text: str | None = None
    content_type: str = "text/html"
    fetched_at: datetime = field(default_factory=utcnow)
    status_code: int | None = None
    # Metadata known before cleaning (feed item, JSON record): title, published_at, authors, summary, ...
    hints: dict[str, Any] = field(default_factory=dict)
    # What the document is made of (body, media type, charset, hints: `RawDocument.input_hash`), carried to
    # its article or copy and stored with it: a later fetch of the same input is unchanged at the fetch stage.
    input_hash: str = ""

    # Pickled (to a cleaning process, a Dask worker) with its body as UTF-8 bytes. Pickling a `str` asks
    # CPython for its UTF-8 form, which the string then keeps, as large as the body, for as long as it
    # lives: a page with one character outside ASCII (a `©` in a footer) was held twice in the flow's
    # process from the moment it was sent to be cleaned until its batch let go of it. Encoding it here
    # makes a copy that goes once the pickle is written.
    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(_utf8(getattr(self, name)) if name in _BODIES else getattr(self, name)
                     for name in _DOCUMENT_FIELDS)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(_DOCUMENT_FIELDS, state, strict=True):
            object.__setattr__(self, name, value.decode("utf-8", "surrogatepass")
                               if name in _BODIES and value is not None else value)


_BODIES = frozenset({"html", "text"})
_DOCUMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Document))


def _utf8(body: str | None) -> bytes | None:
    return None if body is None else body.encode("utf-8", "surrogatepass")


@dataclass(slots=True)
class Article:
    """A cleaned article, the unit that is deduplicated, validated and loaded."""

    source: str
    url: str
    canonical_url: str
    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    language: str | None = None
    description: str | None = None
    site_name: str | None = None
    fetched_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    image: str | None = None  # lead image URL
    tags: list[str] = field(default_factory=list)
    content_hash: str = ""  # sha256 of the normalised text, set by the dedupe stage
    word_count: int = 0  # words in any script (tasks.words)
    undecodable_share: float = 0.0  # of the document's characters, undecodable bytes (U+FFFD) before cleaning
    input_hash: str = ""  # of the document it was cleaned from (Document.input_hash)

    def __post_init__(self) -> None:
        if not self.word_count:
            self.word_count = count_words(self.text)

    def as_row(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class FetchAttempt:
    """One fetch attempt, good or bad: a row of `fetches`."""

    source: str
    url: str
    status_code: int | None = None
    error: str | None = None
    bytes: int = 0
    elapsed_ms: int = 0
    content_type: str | None = None
    fetched_at: datetime = field(default_factory=utcnow)
    # timeout, network, http_status, too_large, content_type, robots, private_network, scheme, ...
    error_kind: str | None = None
    retries: int = 0
    not_modified: bool = False  # a 304: nothing changed since the last run, nothing passed on
    content_hash: str | None = None  # sha256 of the body kept in the raw store


@dataclass(slots=True)
class FileProgress:
    """How far a local file has been read: a row of `local_files`. A file whose fingerprint changed is
    read again from its start."""

    fingerprint: str  # "size:mtime_ns"
    position: int | None = None  # byte offset of the first item not read yet; None: read to the end
    items: int = 0  # items (JSON Lines lines, WARC records) before `position`

    @property
    def finished(self) -> bool:
        return self.position is None


@dataclass(slots=True)
class Rejection:
    """A record held back by a stage: a row of `quarantine`."""

    stage: str
    source: str
    url: str | None
    reasons: list[str]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Duplicate:
    """A record dropped as a copy of another article: a row of `duplicates`.

    `kept_url` is the canonical URL of the article kept; its id is resolved when loading.
    """

    url: str
    source: str
    kept_url: str
    kind: str  # "url", "exact" or "near"
    similarity: float = 1.0
    kept_article_id: int | None = None
    canonical_url: str = ""  # the dropped copy's own canonical URL
    input_hash: str = ""  # of the document the copy was cleaned from (Document.input_hash)


@dataclass(slots=True)
class StageStats:
    """Counters a stage keeps about what it took in and what became of it."""

    stage: str
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    @property
    def taken_in(self) -> int:
        return self.counts["in"]

    @property
    def passed_on(self) -> int:
        return self.counts["out"]

    def merge(self, other: StageStats) -> StageStats:
        self.counts.update(other.counts)
        return self


@dataclass(slots=True)
class CleanOutcome:
    """What the clean stage made of a batch: its articles, its rejections (with reasons) and its counts."""

    articles: list[Article] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: StageStats = field(default_factory=lambda: StageStats("clean"))

    @classmethod
    def of(cls, results: list[Article | Rejection]) -> CleanOutcome:
        """Each document's result, in order: an article, or a rejection with its reason."""
        outcome = cls()
        for result in results:
            outcome.stats.add("in")
            if isinstance(result, Rejection):
                outcome.rejections.append(result)
                outcome.stats.add("quarantined")
            else:
                outcome.articles.append(result)
                outcome.stats.add("out")
        return outcome


LANGUAGE_FILTER = "allowed_languages"  # `filtered_by` in a clean rejection's payload: held back by choice


@dataclass(slots=True)
class StageResult(Generic[T]):
    """What a stage's task returns: the records that go on, the rejections (quarantined with their reasons)
    and the stage's stats. The flow merges the stats into the run's ledger and records the rejections."""

    records: list[T] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: StageStats = field(default_factory=lambda: StageStats(""))


@dataclass(slots=True)
class KnownArticle:
    """An article already in the warehouse, as the dedupe stage sees it (with its packed sketch, if read)."""

    id: int
    canonical_url: str
    sketch: bytes | None = None
