"""The fetch stage's parts without Prefect: URLs, charsets, caps, politeness, feeds, sitemaps, state."""

from __future__ import annotations

import gzip
import io
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from crawl_server import CrawlServer, Reply, article_html, html

from tasks.crawlstate import NoState, WarehouseState, store_validators
from tasks.feeds import FeedError, parse_feed
from tasks.fetch import fetch_source
from tasks.http import PoliteClient, TooLarge, Validators, decode_body, read_capped
from tasks.rawstore import RawDocument, select_raw, store_raw, to_document
from tasks.settings import Settings
from tasks.sitemaps import parse_sitemap
from tasks.sources import SourcesError, parse_sources
from tasks.urls import canonicalize_url, host_allowed, host_of, unsafe_url_reason
from tasks.warehouse import open_warehouse

FAST = {"host_delay_seconds": 0.0, "retry_backoff_seconds": 0.01, "read_timeout": 2.0, "connect_timeout": 1.0}


def source(**entry):
    return parse_sources([{"name": "s", **entry}])[0]



@pytest.mark.parametrize(("url", "expected"), [
    ("HTTP://Example.ORG:80/a?b=2&a=1#frag", "http://example.org/a?a=1&b=2"),
    ("https://example.org:443", "https://example.org/"),
    ("https://example.org:8443/x?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=1&mc_cid=9",
     "https://example.org:8443/x?id=7"),
    ("https://example.org/x?ref=home", "https://example.org/x?ref=home"),  # not a known tracker: kept
    ("mailto:someone@example.org", "mailto:someone@example.org"),
    ("ftp://Example.org/x", "ftp://Example.org/x"),  # not http(s): as it was
    ("http:///x", "http:///x"),  # no host
    (" http://e.org:99999/", " http://e.org:99999/"),  # unparsable: as it was
    ("HTTP://user:pw@Example.ORG/x", "http://user:pw@example.org/x"),
    ("http://user@Example.org", "http://user@example.org/"),
    ("http://:pw@Example.org/", "http://:pw@example.org/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://e.org/x?b=&a=1", "https://e.org/x?a=1&b="),  # blank values kept
])
def test_canonical_urls(url, expected):
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize(("url", "host"), [("http://User:pw@Example.ORG:8080/x", "example.org:8080"),
                                           ("http://a@b@Host.org/", "host.org")])
def test_the_host_of_a_url_is_where_its_requests_go(url, host):
    assert host_of(url) == host


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://News.Example.org/x", True), ("https://example.org/", True), ("https://example.org.evil.net/", False),
    ("https://notexample.org/", False), ("mailto:xxxx", False),
])
def test_allowed_hosts_take_their_subdomains(url, allowed):
    assert host_allowed(url, ["Example.ORG", "xxxx"]) is allowed


@pytest.mark.parametrize(("url", "reason"), [
    ("//example.org/x", ("scheme", "scheme '(none)' is not http or https")),
    ("http:///x", ("bad_url", "URL has no host")),
    ("http://e.org:99999/", ("bad_url", "malformed URL: Port out of range 0-65535")),
    (f"http://{'a' * 64}.example/", ("dns", f"cannot resolve {'a' * 64}.example: encoding with 'idna' codec failed "
                                          "(UnicodeError: label empty or too long)")),  # no lookup: too long
    ("http://127.0.0.1/", ("private_network", "127.0.0.1 resolves to non-public address 127.0.0.1 "
                                              "(set allow_private_network: true on the source to allow it)")),
])
def test_an_unsafe_url_says_why(url, reason):
    assert unsafe_url_reason(url) == reason


@pytest.mark.parametrize(("url", "allowed", "kind"), [
    ("http://127.0.0.1/x", False, "private_network"),
    ("http://169.254.169.254/latest/meta-data/", False, "private_network"),
    ("http://10.1.2.3/", False, "private_network"),
    ("http://[::1]:8080/", False, "private_network"),
    ("http://[::ffff:192.168.0.1]/", False, "private_network"),
    ("http://224.0.0.1/", False, "private_network"),
    ("http://localhost:9/", False, "private_network"),
    ("http://127.0.0.1/x", True, None),
    ("file:///etc/passwd", True, "scheme"),  # never, whatever the allowance
    ("gopher://example.org/", True, "scheme"),
    ("http://8.8.8.8/", False, None),
])
def test_private_network_and_scheme_check(url, allowed, kind):
    result = unsafe_url_reason(url, allowed)
    assert (result[0] if result else None) == kind


def test_charsets_never_crash():
    text = "Café naïve façade, déjà vu."
    assert decode_body(text.encode("utf-8"), "iso-8859-1") == text  # mislabelled UTF-8
    assert decode_body(f'<meta charset="windows-1252"><p>{text}'.encode("cp1252"), None).endswith(text)
    assert decode_body(b"<p>caf\xe9 \x00\xff\xfe</p>", "no-such-charset")  # something, no exception
    assert "\x00" not in decode_body(b"a\x00b", "utf-8")


def test_gzip_bomb_stops_at_the_cap_while_decompressing():
    bomb = gzip.compress(b"\0" * 50_000_000)
    chunks = (bomb[i:i + 8192] for i in range(0, len(bomb), 8192))
    with pytest.raises(TooLarge):
        read_capped(chunks, "gzip", 100_000, deadline=float("inf"))
    assert read_capped(iter([gzip.compress(b"hello")]), "gzip", 100, float("inf")) == b"hello"


def watched_client(settings: Settings) -> tuple[PoliteClient, dict[int, list[float]]]:
    """A polite client and the moment each of its requests really went out, per host (an httpx hook:
    the server's own clock is blurred by thread scheduling on a busy machine)."""
    client = PoliteClient(settings, allow_private_network=True)
    sent: dict[int, list[float]] = defaultdict(list)
    client.client.event_hooks = {"request": [lambda request: sent[request.url.port].append(time.monotonic())]}
    return client, sent


def test_per_host_delay_and_parallel_hosts():
    settings = Settings(**{**FAST, "host_delay_seconds": 0.3, "fetch_concurrency": 4})
    pages = {f"/p{n}.html": html(article_html(n)) for n in range(4)}
    with CrawlServer(pages) as one, CrawlServer(pages) as two:
        urls = [one.url(p) for p in pages] + [two.url(p) for p in pages]
        client, sent = watched_client(settings)
        with client:
            outcome = fetch_source(source(kind="urls", urls=urls), settings, client=client)
        assert len(outcome.documents) == 8
        for server in (one, two):
            assert len(server.log) == 5  # robots.txt and four pages
            times = sent[int(server.base.rsplit(":", 1)[1])]
            # The hook fires a little after the client's own slot is taken, and thread scheduling on a busy
            # machine blurs it (by over 60 ms at a load of 20); without the delay the gaps would be about a
            # millisecond.
            assert len(times) == 5 and min(b - a for a, b in pairwise(times)) >= 0.3 * 0.5
        # The two hosts were served side by side, not one after the other.
        assert min(two.times("/p0.html")) < max(one.times("/p3.html"))


def test_redirect_to_a_private_address_is_refused_even_from_a_trusted_url():
    routes = {"/go": Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}),
              "/robots.txt": Reply(404, b"")}
    with CrawlServer(routes) as server:
        outcome = fetch_source(source(kind="urls", urls=[server.url("/go")]), Settings(**FAST))
    attempt = outcome.attempts[-1]
    assert (attempt.url, attempt.error_kind) == (server.url("/go"), "private_network")
    assert "169.254.169.254" in attempt.error and outcome.rejections


def test_too_many_redirects():
    routes = {f"/r{n}": Reply(302, b"", {"Location": f"/r{n + 1}"}) for n in range(10)}
    with CrawlServer(routes) as server:
        outcome = fetch_source(source(kind="urls", urls=[server.url("/r0")], allow_private_network=True),
                               Settings(**FAST, max_redirects=3))
        kinds = {a.url.removeprefix(server.base): (a.error_kind, a.retries) for a in outcome.attempts}
        assert kinds["/r0"] == ("too_many_redirects", 0)
        assert server.hits["/r3"] == 1 and server.hits["/r4"] == 0


def test_an_unreachable_robots_txt_disallows_the_host():
    with CrawlServer({"/robots.txt": Reply(503, b"down"), "/a.html": html(article_html(1))}) as down:
        outcome = fetch_source(source(kind="urls", urls=[down.url("/a.html")]), Settings(**FAST, max_retries=0))
        assert outcome.attempts[-1].error_kind == "robots" and down.hits["/a.html"] == 0


# Crawl-delay, Retry-After and the other safeguards one by one: tests/test_fetch_safeguards.py.


def test_feeds_atom_json_and_billion_laughs():
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
      <entry><title>One</title><link href="https://example.org/1"/><id>urn:1</id>
      <updated>2026-11-09T07:30:00Z</updated><author><name>Ann</name></author><summary>S</summary></entry></feed>"""
    (url, hints), = parse_feed(atom, "application/atom+xml")
    assert url == "https://example.org/1"
    assert hints["authors"] == ["Ann"] and hints["guid"] == "urn:1"
    assert hints["published_at"] == datetime(2026, 11, 9, 7, 30, tzinfo=UTC)
    json_feed = b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1", "url": "https://e.org/a", ' \
                b'"title": "T", "date_published": "2026-11-09T07:30:00Z", "author": {"name": "Bo"}}]}'
    assert parse_feed(json_feed, "application/json") == [
        ("https://e.org/a", {"title": "T", "guid": "1", "published_at": "2026-11-09T07:30:00Z", "authors": ["Bo"]})]
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><rss><channel>' \
             b"<title>&b;</title></channel></rss>"
    with pytest.raises(FeedError) as error:
        parse_feed(laughs, "application/rss+xml")
    assert error.value.kind == "unsafe_xml" and "billion-laughs" in str(error.value)
    with pytest.raises(FeedError) as error:
        parse_feed(b'{"items": 3}', "application/feed+json")
    assert error.value.kind == "malformed_feed"


def test_sitemap_news_gzip_and_unsafe():
    news = (b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc>https://e.org/a</loc>'
            b"<lastmod>2026-11-09</lastmod><news:news><news:publication><news:name>E</news:name></news:publication>"
            b"<news:publication_date>2026-11-09T07:30:00Z</news:publication_date><news:title>Headline</news:title>"
            b"</news:news></url></urlset>")
    (entry,) = parse_sitemap(gzip.compress(news), 1_000_000).pages
    assert entry.url == "https://e.org/a" and entry.lastmod == datetime(2026, 11, 9, tzinfo=UTC)
    assert entry.hints["title"] == "Headline" and entry.hints["site_name"] == "E"
    with pytest.raises(FeedError) as error:
        parse_sitemap(gzip.compress(b"<urlset>" + b" " * 5000 + b"</urlset>"), 1000)
    assert error.value.kind == "too_large"
    with pytest.raises(FeedError) as error:
        parse_sitemap(b'<!DOCTYPE x [<!ENTITY a "b">]><urlset>&a;</urlset>', 1000)
    assert error.value.kind == "unsafe_xml"


class RememberingState(NoState):
    def __init__(self, known=None, validators=None):
        self._known, self._validators = known or {}, validators or {}

    def known_urls(self, urls):
        return {u: self._known[u] for u in urls if u in self._known}

    def validators(self, urls):
        return {u: self._validators[u] for u in urls if u in self._validators}


def test_sitemap_lastmod_allowed_hosts_known_urls_and_refresh():
    def sitemap(number, headers):
        return Reply(200, (
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{server.url('/old.html')}</loc><lastmod>2020-01-01</lastmod></url>"
            f"<url><loc>{server.url('/new.html')}</loc><lastmod>2099-01-01</lastmod></url>"
            f"<url><loc>{server.url('/known.html')}</loc></url>"
            "<url><loc>https://elsewhere.example/x.html</loc></url></urlset>").encode(), {"Content-Type": "text/xml"})

    server = CrawlServer({"/sitemap.xml": sitemap, **{f"/{n}.html": html(article_html(i))
                                                      for i, n in enumerate(("old", "new", "known"))}})
    with server:
        entry = {"kind": "sitemap", "url": server.url("/sitemap.xml"), "allow_private_network": True,
                 "allowed_hosts": ["127.0.0.1"]}
        last_read = Validators(fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
        state = RememberingState(known={server.url("/known.html"): datetime.now(UTC) - timedelta(hours=2)},
                                 validators={server.url("/sitemap.xml"): last_read})
        outcome = fetch_source(source(**entry), Settings(**FAST), state)
        assert [d.url for d in outcome.documents] == [server.url("/new.html")]
        assert outcome.stats.counts["unchanged"] == 1 and outcome.stats.counts["known"] == 1
        assert [r.url for r in outcome.rejections] == ["https://elsewhere.example/x.html"]
        # A refresh interval shorter than "last seen 2 hours ago" fetches the known page again.
        outcome = fetch_source(source(**entry, refresh_interval="1h"), Settings(**FAST), state)
        assert sorted(d.url for d in outcome.documents) == [server.url("/known.html"), server.url("/new.html")]


def test_refresh_interval_and_warc_paths_are_validated():
    assert source(kind="rss", url="http://e.org/f", refresh_interval="2d").refresh_interval == timedelta(days=2)
    with pytest.raises(SourcesError, match="refresh_interval"):
        source(kind="rss", url="http://e.org/f", refresh_interval="soon")
    with pytest.raises(SourcesError, match="allowed_hosts"):
        source(kind="warc", path="x.warc", allowed_hosts=["a"])


def test_raw_store_and_http_cache_round_trip(warehouse_url):
    engine = open_warehouse(warehouse_url)
    page = RawDocument(source="s", url="https://e.org/a", body="<p>é</p>".encode("cp1252"),
                       content_type="text/html", charset="windows-1252", hints={"title": "T"})
    newer = RawDocument(source="s", url="https://e.org/a", body=b"<p>v2</p>",
                        fetched_at=page.fetched_at + timedelta(minutes=1))
    feed = RawDocument(source="s", url="https://e.org/feed", body=b"<rss/>", kind="feed")
    assert store_raw(engine, [page, newer, feed]) == 3
    assert store_raw(engine, [page]) == 1  # idempotent
    (latest,) = select_raw(engine)
    assert latest.body == b"<p>v2</p>"
    assert select_raw(engine, sources=["other"]) == [] and select_raw(engine, kind="feed")[0].body == b"<rss/>"
    assert to_document(page).html == "<p>é</p>"  # the declared charset is kept with the bytes


def test_raw_store_compresses_at_the_configured_level(warehouse_url):
    from sqlalchemy import text

    from tasks.settings import Settings

    engine = open_warehouse(warehouse_url)
    body = b"<div class='menu'><a href='/x'>Section</a></div>" * 2000
    fast, small = (RawDocument(source="s", url=f"https://e.org/{n}", body=body + str(n).encode()) for n in (1, 9))
    store_raw(engine, [fast], Settings().raw_compression_level)
    store_raw(engine, [small], compression_level=9)
    with engine.connect() as conn:
        blobs = dict(conn.execute(text("SELECT content_hash, data FROM raw_blobs")).tuples().all())
    # The gzip header's XFL byte: 4 for the fastest level, 2 for the best compression.
    assert blobs[fast.content_hash][8] == 4 and blobs[small.content_hash][8] == 2
    assert len(blobs[small.content_hash]) < len(blobs[fast.content_hash])
    assert {r.body for r in select_raw(engine)} == {fast.body, small.body}
    store_validators(engine, {"https://e.org/feed": Validators('"v1"', "Mon, 09 Nov 2026 07:30:00 GMT",
                                                               datetime(2026, 11, 9, tzinfo=UTC))})
    found = WarehouseState(engine).validators(["https://e.org/feed", "https://e.org/none"])
    assert list(found) == ["https://e.org/feed"] and found["https://e.org/feed"].etag == '"v1"'
    assert found["https://e.org/feed"].fetched_at == datetime(2026, 11, 9, tzinfo=UTC)
    engine.dispose()


def test_a_warc_written_here_becomes_documents(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "cc-news.warc.gz"
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=iso-8859-1")],
                                   protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://news.example/a?utm_source=x", "response",
                                                      payload=io.BytesIO("<p>caf\xe9</p>".encode("latin-1")),
                                                      http_headers=headers))
        writer.write_record(writer.create_warc_record("https://news.example/meta", "metadata",
                                                      payload=io.BytesIO(b"x")))
    (tmp_path / "broken.warc").write_bytes(b"not a warc at all")
    outcome = fetch_source(source(kind="warc", path=str(tmp_path / "*.warc*")), Settings(**FAST))
    assert [(d.url, d.html) for d in outcome.documents] == [("https://news.example/a", "<p>café</p>")]
    assert outcome.stats.counts["warc_metadata_skipped"] == 1
    assert [a.error_kind for a in outcome.attempts] == ["bad_warc", None]


def test_a_feed_item_without_a_link_is_reported_not_dropped():
    feed = (b'<rss version="2.0"><channel><title>t</title><item><title>No link here</title><guid isPermaLink="false">'
            b"g1</guid></item></channel></rss>")
    with CrawlServer({"/feed.xml": Reply(200, feed, {"Content-Type": "application/rss+xml"})}) as server:
        outcome = fetch_source(source(kind="rss", url=server.url("/feed.xml")), Settings(**FAST))
    (rejection,) = outcome.rejections
    assert rejection.reasons == ["feed item without a link"] and rejection.payload["title"] == "No link here"


def test_cli_inline_sitemap_and_warc_sources():
    from flows.cli import _inline_sources, build_parser
    from tasks.sources import SitemapSource, WarcSource

    args = build_parser().parse_args(["ingest", "--sitemap", "http://e.org/sitemap.xml", "--warc", "crawl/*.warc.gz",
                                      "--allow-private-network"])
    sitemap, warc = parse_sources(_inline_sources(args))
    assert isinstance(sitemap, SitemapSource) and sitemap.allow_private_network
    assert isinstance(warc, WarcSource) and warc.path == "crawl/*.warc.gz"


def test_sources_starting_together_share_one_tls_context():
    """Sixteen sources start at once on their own threads: one CA bundle load, not one per thread."""
    import threading

    from tasks import http

    http._TLS_CONTEXTS.clear()
    start = threading.Barrier(16)
    contexts = []

    def client() -> None:
        start.wait()
        contexts.append(http._tls_context())

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(contexts) == 16 and len({id(c) for c in contexts}) == 1


def test_a_source_fetched_in_parts_gets_the_same_pages_and_keeps_its_feed_etag_for_the_end():
    from tasks.fetch import fetch_links

    pages = [f"/part-{n}.html" for n in range(5)]
    routes = {p: html(article_html(200 + n)) for n, p in enumerate(pages)}
    with CrawlServer(routes) as server:
        items = "".join(f"<item><title>{p}</title><link>{server.url(p)}</link></item>" for p in pages)
        server.routes["/feed.xml"] = Reply(200, f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
                                           .encode(), {"Content-Type": "application/rss+xml", "ETag": '"f1"'})
        feed = source(kind="rss", url=server.url("/feed.xml"), allow_private_network=True)
        first = fetch_source(feed, Settings(**FAST), max_pages=2)
        rest = fetch_links(feed, first.remaining, Settings(**FAST), trusted=first.trusted)
        whole = fetch_source(feed, Settings(**FAST))
    assert (len(first.documents), len(first.remaining), len(rest.documents)) == (2, 3, 3)
    assert sorted(d.url for d in first.documents + rest.documents) == sorted(d.url for d in whole.documents)
    assert first.stats.taken_in + rest.stats.taken_in == whole.stats.taken_in == 5
    # Pages left to fetch: the feed's ETag waits (a 304 next run would hide them); read whole, it is kept.
    assert server.url("/feed.xml") not in first.validators
    assert first.listing_validators[server.url("/feed.xml")].etag == '"f1"'
    assert whole.validators[server.url("/feed.xml")].etag == '"f1"' and not whole.listing_validators


def test_a_source_whose_listing_fails_is_unavailable_one_unchanged_or_partly_broken_is_not(tmp_path):
    """`unavailable` fails the run: set when the source's own feed or sitemap cannot be read, or no file
    matches; not for a 304, nor for a sitemap index one of whose children is missing."""
    index = ('<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             "<sitemap><loc>{}</loc></sitemap></sitemapindex>")
    routes = {"/robots.txt": Reply(404, b""),
              "/feed.xml": lambda n, h: Reply(304, b"") if h.get("if-none-match") == '"v1"' else
              Reply(200, b"<rss version='2.0'><channel><title>t</title></channel></rss>",
                    {"Content-Type": "application/rss+xml", "ETag": '"v1"'}),
              "/not-a-feed.xml": Reply(200, b"<html><body>moved</body></html>", {"Content-Type": "text/html"})}
    settings = Settings(**FAST)
    with CrawlServer(routes) as server:
        routes["/index.xml"] = Reply(200, index.format(server.url("/gone.xml")).encode(),
                                     {"Content-Type": "application/xml"})

        def fetched(kind: str, path: str, state=None):
            return fetch_source(source(kind=kind, url=server.url(path), allow_private_network=True), settings,
                                state)

        assert fetched("rss", "/missing.xml").unavailable == (
            f"feed {server.url('/missing.xml')} unavailable: HTTP 404 Not Found")
        assert fetched("rss", "/not-a-feed.xml").unavailable.startswith(
            f"feed {server.url('/not-a-feed.xml')} unreadable: ")
        assert fetched("sitemap", "/missing.xml").unavailable.startswith(
            f"sitemap {server.url('/missing.xml')} unavailable: ")
        first = fetched("rss", "/feed.xml")
        assert first.unavailable is None and first.validators  # read, empty: nothing new is no failure

        class Seen(NoState):
            def validators(self, urls):
                return first.validators

        again = fetched("rss", "/feed.xml", Seen())
        assert again.stats.counts.get("feed_not_modified") == 1 and again.unavailable is None
        broken_child = fetched("sitemap", "/index.xml")
        assert broken_child.rejections and broken_child.unavailable is None
    files = fetch_source(source(kind="files", path=str(tmp_path / "*.txt")), settings)
    assert files.unavailable == f"no file matches {tmp_path / '*.txt'}"


def test_a_document_read_again_is_unchanged_only_with_the_input_its_article_or_copy_was_cleaned_from(
        warehouse_url, tmp_path):
    """Unchanged at the fetch stage: the same body with the same hints as the loaded article's (or copy's).
    A JSON Lines record whose text is the same but whose title changed is not; nor is a page whose article
    was never loaded (quarantined, or its run cut short)."""
    from tasks.fetch import set_aside_unchanged
    from tasks.load import load_batch
    from tasks.outcome import FetchOutcome
    from tasks.rawstore import from_document
    from tasks.records import Article, Document, Duplicate

    engine = open_warehouse(warehouse_url)
    text = "The harbour board met on Monday to approve the new ferry timetable for the winter months."

    def read(url: str, title: str, body: str = text) -> Document:
        outcome = FetchOutcome("wire")
        document = Document("wire", url, text=body, content_type="text/plain", hints={"title": title})
        outcome.add(document, from_document(document))
        return document

    loaded, copy = read("file:///in/a.jsonl#L1", "Ferry timetable"), read("file:///in/b.txt", "Ferry timetable")
    article = Article("wire", loaded.url, loaded.url, text, title="Ferry timetable", content_hash="h1",
                      input_hash=loaded.input_hash)
    load_batch(engine, "run-1", [article], {}, [Duplicate(copy.url, "wire", loaded.url, "exact",
                                                          input_hash=copy.input_hash)])

    outcome = FetchOutcome("wire")
    for document in (read(loaded.url, "Ferry timetable"), read(copy.url, "Ferry timetable"),
                     read(loaded.url.replace("L1", "L2"), "Ferry timetable"),  # never loaded
                     read("file:///in/c.jsonl#L1", "Ferry timetable, corrected")):
        outcome.documents.append(document)
    retitled = read(loaded.url, "Winter ferry timetable")  # same text, another title: another article
    outcome.documents.append(retitled)
    assert retitled.input_hash != loaded.input_hash
    set_aside_unchanged(outcome, WarehouseState(engine))
    assert outcome.unchanged == [loaded.url, copy.url]
    assert [d.url for d in outcome.documents] == [loaded.url.replace("L1", "L2"), "file:///in/c.jsonl#L1",
                                                 loaded.url]
    assert outcome.documents[-1] is retitled
    set_aside_unchanged(outcome, NoState())  # a full refresh: nothing is unchanged
    assert len(outcome.documents) == 3
