"""Fetch stage: turn sources (local files, RSS/Atom/JSON feeds, sitemaps, URL lists, WARC files) into raw
`Document`s (local files: see `tasks/localfiles.py`), politely (see `tasks/http.py`) and without losing anything.

Every attempt, good or bad, becomes a `FetchAttempt`; a bad item becomes a `Rejection`; every document's
raw bytes are kept for `reprocess`. Nothing raises out of `fetch_source` for a bad page, feed or file:
the rest of the source goes on.

A source with many new pages is fetched in parts (`max_pages`): the first call reads its listing and up to
that many pages, and leaves the other links on the outcome (`remaining`) for `fetch_links`, so that no task
holds a whole source's pages at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, zip_longest
from typing import Any

from tasks.crawlstate import FetchState, NoState
from tasks.feeds import FeedError, Link, parse_feed
from tasks.http import FetchResult, HttpSession, PoliteClient, Validators, decode_body
from tasks.kinds import CliOption, fetcher, source_kind
from tasks.localfiles import fetch_files, fetch_warc
from tasks.outcome import FetchOutcome
from tasks.rawstore import RawDocument, to_document
from tasks.records import Document, FetchAttempt, utcnow
from tasks.settings import Settings
from tasks.sitemaps import GZIP_TYPES, parse_sitemap
from tasks.sources import FilesSource, HttpSource, RssSource, SitemapSource, Source, UrlsSource, WarcSource
from tasks.spool import warehouse_unavailable
from tasks.urls import canonicalize_url, host_allowed, host_of

__all__ = ["FetchOutcome", "decode_body", "fetch_links", "fetch_source"]

TEXTUAL_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml",
                 "application/rss+xml", "application/atom+xml", "application/json", "application/feed+json")
FEED_TYPES = (*TEXTUAL_TYPES, "application/rdf+xml", "text/rss+xml", "text/atom+xml")


def is_textual(media: str) -> bool:
    """Worth downloading as a page: HTML, XML, text or JSON (a missing Content-Type is given a chance)."""
    return not media or media in TEXTUAL_TYPES or media.startswith("text/") or media.endswith(("+xml", "+json"))


# --- http ------------------------------------------------------------------------------------


@dataclass(slots=True)
class FetchJob:
    """What a kind's fetcher (see tasks.kinds) works with: the source's outcome to fill, what earlier runs saw,
    how many pages to fetch now (the other links go on `outcome.remaining`), and for kinds read over HTTP
    the source's polite client."""

    settings: Settings
    state: FetchState
    outcome: FetchOutcome
    max_pages: int | None = None
    client: PoliteClient | None = None


def interleave_by_host(links: list[Link]) -> list[Link]:
    """Round-robin over hosts, so workers are not all queued behind one host's politeness delay."""
    by_host: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        by_host[host_of(link[0])].append(link)
    return [link for group in zip_longest(*by_host.values()) for link in group if link is not None]


@dataclass(slots=True)
class PageResult:
    result: FetchResult
    robots_attempts: list[FetchAttempt]
    document: Document | None = None
    raw: RawDocument | None = None


def fetch_page(client: PoliteClient, url: str, source: str, hints: dict[str, Any],
               validators: Validators | None, trusted: bool) -> PageResult:
    """One article page: a Document keyed by its canonical URL, or the attempt saying why not."""
    robots: list[FetchAttempt] = []
    result = client.fetch(url, source, trusted=trusted, validators=validators, accept=is_textual,
                          extra_attempts=robots)
    page = PageResult(result, robots)
    if result.body is None:
        return page
    raw = RawDocument(source=source, url=canonicalize_url(result.final_url or url), body=result.body,
                      content_type=result.media_type or "text/html", charset=result.charset, hints=dict(hints),
                      fetched_at=result.attempt.fetched_at, status_code=result.attempt.status_code)
    result.attempt.content_hash = raw.content_hash
    page.raw, page.document = raw, to_document(raw)
    return page


def _refresh_due(last_seen: datetime, source: HttpSource, now: datetime) -> bool:
    return source.refresh_interval is not None and now - last_seen >= source.refresh_interval


def select_links(links: Iterable[Link], source: HttpSource, settings: Settings, state: FetchState,
                 outcome: FetchOutcome) -> list[Link]:
    """The links worth fetching: canonical, once each, on allowed hosts, not already in the warehouse
    (unless the source's refresh interval says so), at most `max_items` (the source's per-run budget: the
    others are counted as deferred, and fetched by the next runs once these are in the warehouse)."""
    unique: dict[str, Link] = {}
    for url, hints in links:
        if not url:
            outcome.reject(None, "feed item without a link", title=hints.get("title"), guid=hints.get("guid"))
            continue
        key = canonicalize_url(url)
        if key in unique:
            continue
        if not host_allowed(url, source.allowed_hosts):
            outcome.reject(url, f"host not in the source's allowed_hosts {source.allowed_hosts}")
            continue
        unique[key] = (url, hints)
    known = state.known_urls(chain(unique, (url for url, _ in unique.values())))
    now = utcnow()
    selected: list[Link] = []
    for key, (url, hints) in unique.items():
        last_seen = known.get(key) or known.get(url)
        if last_seen is not None and not _refresh_due(last_seen, source, now):
            outcome.stats.add("known")
            continue
        selected.append((url, hints))
    limit = source.max_items or settings.max_items_per_source
    if len(selected) > limit:  # left for the next runs (the listing is read again, its validators not kept)
        outcome.stats.add("deferred", len(selected) - limit)
    return selected[:limit]


def fetch_pages(client: PoliteClient, links: list[Link], source: HttpSource, settings: Settings,
                state: FetchState, outcome: FetchOutcome, trusted: bool = False, max_pages: int | None = None) -> None:
    """Fetch the listed pages worth fetching, the first `max_pages` of them now (the rest are left on
    `outcome.remaining`)."""
    links = interleave_by_host(select_links(links, source, settings, state, outcome))
    if max_pages is not None and len(links) > max_pages:
        links, outcome.remaining, outcome.trusted = links[:max_pages], links[max_pages:], trusted
    fetch_selected(client, links, source, state, outcome, trusted)


def fetch_selected(client: PoliteClient, links: list[Link], source: HttpSource, state: FetchState,
                   outcome: FetchOutcome, trusted: bool) -> None:
    """Fetch article pages concurrently (hosts interleaved); each failure is an attempt and a rejection."""
    settings = client.settings
    outcome.stats.add("in", len(links))
    validators = state.validators(url for url, _ in links)
    with ThreadPoolExecutor(max_workers=max(1, settings.fetch_concurrency)) as pool:
        pages = pool.map(lambda link: fetch_page(client, link[0], source.name, link[1],
                                                 validators.get(link[0]), trusted), links)
        for (url, _), page in zip(links, pages, strict=True):
            outcome.attempts.extend(page.robots_attempts)
            attempt = page.result.attempt
            outcome.attempts.append(attempt)
            if attempt.not_modified:
                outcome.stats.add("not_modified")
            elif page.document is None or page.raw is None:
                outcome.reject(url, attempt.error or "fetch failed", status_code=attempt.status_code,
                               error_kind=attempt.error_kind)
            else:
                outcome.add(page.document, page.raw)
                if page.result.validators:
                    outcome.validators[url] = page.result.validators


def _fetch_listing(client: PoliteClient, url: str, source: HttpSource, state: FetchState, outcome: FetchOutcome,
                   kind: str, trusted: bool, accept: Any) -> tuple[FetchResult, Validators | None]:
    """Fetch a feed or sitemap conditionally; its attempt and raw body are recorded."""
    previous = state.validators([url]).get(url)
    robots: list[FetchAttempt] = []
    result = client.fetch(url, source.name, trusted=trusted, validators=previous, accept=accept,
                          extra_attempts=robots)
    outcome.attempts.extend(robots)
    outcome.attempts.append(result.attempt)
    if result.not_modified:
        outcome.stats.add(f"{kind}_not_modified")
    elif result.body is None:
        outcome.reject(url, f"{kind} unavailable: {result.attempt.error}", error_kind=result.attempt.error_kind)
    else:
        raw = RawDocument(source=source.name, url=url, body=result.body, content_type=result.media_type,
                          charset=result.charset, fetched_at=result.attempt.fetched_at,
                          status_code=result.attempt.status_code, kind=kind)
        result.attempt.content_hash = raw.content_hash
        outcome.raw.append(raw)
    return result, previous


def _listing_failed(result: FetchResult, error: FeedError, url: str, outcome: FetchOutcome) -> None:
    result.attempt.error_kind, result.attempt.error = error.kind, str(error)
    outcome.reject(url, str(error), error_kind=error.kind, body=decode_body(result.body or b"", None)[:2000])


def fetch_rss(source: RssSource, client: PoliteClient, settings: Settings, state: FetchState,
              outcome: FetchOutcome, max_pages: int | None = None) -> None:
    result, _ = _fetch_listing(client, source.url, source, state, outcome, "feed", True,
                               lambda media: not media or media in FEED_TYPES or is_textual(media))
    if result.body is None:  # unchanged (304) or unavailable (recorded)
        if not result.not_modified:
            outcome.unavailable = f"feed {source.url} unavailable: {result.attempt.error}"
        return
    try:
        links = parse_feed(result.body, result.attempt.content_type)
    except FeedError as error:
        _listing_failed(result, error, source.url, outcome)
        outcome.unavailable = f"feed {source.url} unreadable: {error}"
        return
    outcome.stats.add("feed_items", len(links))
    fetch_pages(client, links, source, settings, state, outcome, max_pages=max_pages)
    if result.validators and not outcome.deferred:  # else the next run must read the listing again
        outcome.listing_validators[source.url] = result.validators


def fetch_sitemaps(source: SitemapSource, client: PoliteClient, settings: Settings, state: FetchState,
                   outcome: FetchOutcome, max_pages: int | None = None) -> None:
    """Walk a sitemap (index) breadth-first, bounded in depth and count; pages whose `lastmod` is older
    than the last time their sitemap was read are not new."""
    queue: list[tuple[str, int]] = [(source.url, 0)]
    seen: set[str] = set()
    links: list[Link] = []
    listing_validators: dict[str, Validators] = {}
    read = 0
    while queue:
        url, depth = queue.pop(0)
        if canonicalize_url(url) in seen:
            continue
        seen.add(canonicalize_url(url))
        if read >= settings.max_sitemaps_per_source:
            outcome.reject(url, f"more than {settings.max_sitemaps_per_source} sitemaps in one source")
            continue
        read += 1
        result, previous = _fetch_listing(client, url, source, state, outcome, "sitemap", url == source.url,
                                          lambda media: is_textual(media) or media in GZIP_TYPES)
        if result.body is None:
            if url == source.url and not result.not_modified:  # the source's own (an index's child: no)
                outcome.unavailable = f"sitemap {url} unavailable: {result.attempt.error}"
            continue
        try:
            sitemap = parse_sitemap(result.body, settings.max_response_bytes)
        except FeedError as error:
            _listing_failed(result, error, url, outcome)
            if url == source.url:
                outcome.unavailable = f"sitemap {url} unreadable: {error}"
            continue
        since = previous.fetched_at if previous else None
        for child in sitemap.sitemaps:
            if since and child.lastmod and child.lastmod <= since:
                outcome.stats.add("sitemap_unchanged")
            elif depth + 1 > settings.max_sitemap_depth:
                outcome.reject(child.url, f"sitemap nested deeper than {settings.max_sitemap_depth} levels")
            else:
                queue.append((child.url, depth + 1))
        for entry in sitemap.pages:
            if since and entry.lastmod and entry.lastmod <= since:
                outcome.stats.add("unchanged")
                continue
            hints = dict(entry.hints)
            if entry.lastmod:
                hints.setdefault("modified_at", entry.lastmod)
            links.append((entry.url, hints))
        if result.validators:
            listing_validators[url] = result.validators
    outcome.stats.add("sitemap_items", len(links))
    fetch_pages(client, links, source, settings, state, outcome, max_pages=max_pages)
    if not outcome.deferred:  # else the next run must read the sitemaps again for the pages left
        outcome.listing_validators.update(listing_validators)


def fetch_source(source: Source, settings: Settings, state: FetchState | None = None,
                 client: PoliteClient | None = None, max_pages: int | None = None,
                 http: HttpSession | None = None) -> FetchOutcome:
    """Fetch what one source lists: everything, or with `max_pages` its first pages, the other links left
    on `outcome.remaining` for `fetch_links` (files and WARC archives are read whole). Never raises for bad
    input: it is recorded instead.

    `state` tells what earlier runs saw (known URLs, validators); without it, everything is new. `http` is
    the run's politeness state, shared with its other sources' clients.
    """
    outcome = FetchOutcome(source=source.name)
    job = FetchJob(settings, state or NoState(), outcome, max_pages)
    kind = source_kind(source.kind)
    if not kind.over_http:
        kind.fetch(source, job)
    else:
        with _client_for(source, settings, client, http) as job.client:
            kind.fetch(source, job)
    if not outcome.remaining:  # every page the listings name is fetched: their validators may be kept
        outcome.validators.update(outcome.listing_validators)
        outcome.listing_validators = {}
    set_aside_unchanged(outcome, job.state)
    outcome.stats.add("out", len(outcome.documents))
    return outcome


def set_aside_unchanged(outcome: FetchOutcome, state: FetchState) -> None:
    """Documents read again the same as their article or copy in the warehouse was cleaned from (a page
    refreshed with a 200 and the same body, a touched file): unchanged, like a 304, and passed on no further
    (cleaning them again would make the same article). Their raw bodies stay on the outcome, to be kept."""
    if not outcome.documents:
        return
    try:
        same = state.unchanged(outcome.documents)
    except Exception as exc:
        if not warehouse_unavailable(exc):
            raise
        return  # the warehouse went away: every document goes on (the run spools what it cannot load)
    if not same:
        return
    kept: list[Document] = []
    for document in outcome.documents:
        if (document.url, document.input_hash) in same:
            outcome.unchanged.append(document.url)
        else:
            kept.append(document)
    outcome.documents = kept
    outcome.stats.add("same_input", len(outcome.unchanged))


def fetch_links(source: HttpSource, links: list[Link], settings: Settings, state: FetchState | None = None,
                trusted: bool = False, client: PoliteClient | None = None,
                http: HttpSession | None = None) -> FetchOutcome:
    """Fetch a part of a source's pages, selected by an earlier `fetch_source` (its `remaining` links)."""
    outcome = FetchOutcome(source=source.name)
    state = state or NoState()
    with _client_for(source, settings, client, http) as polite:
        fetch_selected(polite, links, source, state, outcome, trusted)
    set_aside_unchanged(outcome, state)
    outcome.stats.add("out", len(outcome.documents))
    return outcome


@contextmanager
def _client_for(source: HttpSource, settings: Settings, client: PoliteClient | None,
                http: HttpSession | None) -> Iterator[PoliteClient]:
    """The caller's client, or one of the source's own (in the run's `http` session), closed at the end."""
    if client is not None:
        yield client
        return
    with PoliteClient(settings, allow_private_network=source.allow_private_network, session=http) as own:
        yield own


# --- the built-in kinds of source (tasks.kinds): a kind's fetcher fills the job's outcome ---------------


@fetcher(FilesSource, over_http=False,
         cli=CliOption("--files", "GLOB", "local .txt/.html/.json/.jsonl files", "path", "files"))
def _files(source: FilesSource, job: FetchJob) -> None:
    fetch_files(source, job.settings, job.state, job.outcome)


@fetcher(RssSource, cli=CliOption("--feed", "URL", "an RSS/Atom feed", "url", "feed"))
def _rss(source: RssSource, job: FetchJob) -> None:
    assert job.client is not None
    fetch_rss(source, job.client, job.settings, job.state, job.outcome, job.max_pages)


@fetcher(SitemapSource, cli=CliOption("--sitemap", "URL", "a sitemap or sitemap index", "url", "sitemap"))
def _sitemap(source: SitemapSource, job: FetchJob) -> None:
    assert job.client is not None
    fetch_sitemaps(source, job.client, job.settings, job.state, job.outcome, job.max_pages)


@fetcher(UrlsSource, cli=CliOption("--url", "URL", "an article page", "urls", "urls", one_source=True))
def _urls(source: UrlsSource, job: FetchJob) -> None:
    """The pages listed in the sources file itself (trusted: they may point at private addresses)."""
    assert job.client is not None
    fetch_pages(job.client, [(u, {}) for u in source.urls], source, job.settings, job.state, job.outcome,
                trusted=True, max_pages=job.max_pages)


@fetcher(WarcSource, over_http=False,
         cli=CliOption("--warc", "GLOB", "local WARC files (e.g. CC-NEWS)", "path", "warc"))
def _warc(source: WarcSource, job: FetchJob) -> None:
    fetch_warc(source, job.settings, job.state, job.outcome, is_textual)
