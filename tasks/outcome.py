"""What fetching one source produced (`FetchOutcome`): filled by the fetchers of every source kind, the
HTTP ones (`tasks/fetch.py`) and the local files (`tasks/localfiles.py`), read by the flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.feeds import Link
from tasks.http import Validators
from tasks.rawstore import RawDocument
from tasks.records import Document, FetchAttempt, FileProgress, Rejection, StageStats


@dataclass(slots=True)
class FetchOutcome:
    """What fetching one source produced."""

    source: str
    documents: list[Document] = field(default_factory=list)
    attempts: list[FetchAttempt] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: StageStats = field(default_factory=lambda: StageStats("fetch"))
    raw: list[RawDocument] = field(default_factory=list)  # bodies to keep in the raw store
    validators: dict[str, Validators] = field(default_factory=dict)  # for the next run's conditional GETs
    # Selected links left for later parts (`fetch_links`), and whether they were listed in the sources file
    # (trusted: may point at private addresses).
    remaining: list[Link] = field(default_factory=list)
    trusted: bool = False
    # The feeds' and sitemaps' validators while parts are left: stored only once every part is fetched, or
    # a run ending in between would leave the next one a 304 for a listing whose pages it never read.
    listing_validators: dict[str, Validators] = field(default_factory=dict)
    # Why the source yielded nothing at all (no file matched, its feed or sitemap unreadable), naming the
    # path or URL: the run fails with it. A listing that is merely unchanged (304) or empty is no failure.
    unavailable: str | None = None

    # How far each local file was read (`tasks.localfiles`), stored with the documents for the next run.
    progress: dict[str, FileProgress] = field(default_factory=dict)
    # URLs of the documents read again the same as their stored article or copy was cleaned from: counted
    # unchanged and passed on no further (their raw bodies are kept; their rows are marked as seen).
    unchanged: list[str] = field(default_factory=list)

    @property
    def deferred(self) -> int:
        """Items over the source's budget, left for the next runs."""
        return self.stats.counts["deferred"]

    def reject(self, url: str | None, reason: str, **payload: Any) -> None:
        self.rejections.append(Rejection("fetch", self.source, url, [reason], payload))
        self.stats.add("quarantined")

    def add(self, document: Document, raw: RawDocument) -> None:
        document.input_hash = raw.input_hash
        self.documents.append(document)
        self.raw.append(raw)
