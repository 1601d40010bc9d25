"""The fetch stage as a crawler, end to end: one local server scripting every hard case the web throws,
two runs of the real flow, then `reprocess` from the raw store. Each case: the run completes, the right
row lands in `fetches`, every good page is loaded.

The crawl runs once per warehouse (a module fixture); each behaviour is a test of its own, so one that
breaks fails alone instead of hiding the assertions after it."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import POSTGRES_URL, _postgres_database
from crawl_server import CrawlServer, Reply, article_html, html
from sqlalchemy import text
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter
from warehouse_sql import query

from tasks.settings import get_settings
from tasks.warehouse import make_engine

# The crawl runs once per warehouse for the module: one worker runs its tests (make test uses xdist).
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("fetch-crawl")]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<rss version="2.0"><channel><title>&lol4;</title><item><title>x</title><link>http://a.example/1</link></item>
</channel></rss>"""


def rss(*links: str) -> bytes:
    items = "".join(f"<item><title>Item {n}</title><link>{link}</link><guid>g{n}</guid>"
                    f"<pubDate>Mon, 09 Nov 2026 07:30:00 +0000</pubDate></item>" for n, link in enumerate(links))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Test</title>'
            f"<link>http://example.org/</link><description>d</description>{items}</channel></rss>").encode()


def urlset(*entries: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + "".join(entries) + "</urlset>").encode()


def conditional(body: bytes, content_type: str, etag: str = '"v1"'):
    """200 with an ETag, then 304 whenever the client sends it back."""
    def route(number: int, headers: dict[str, str]) -> Reply:
        if headers.get("if-none-match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, body, {"Content-Type": content_type, "ETag": etag})
    return route


def endless(number: int, headers: dict[str, str]) -> Reply:
    return Reply(200, itertools.repeat(b"<p>" + b"more words " * 1000 + b"</p>"), {"Content-Type": "text/html"})


def write_warc(path, base: str) -> None:
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "newsflow tests"}))
        for url, status, content_type, body in [
            ("http://warc.example/one.html", "200 OK", "text/html; charset=utf-8", article_html(14).encode()),
            ("http://warc.example/two.html", "200 OK", "text/html", article_html(15).encode()),
            ("http://warc.example/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(200)),
            ("http://warc.example/gone.html", "404 Not Found", "text/html", b"<p>gone</p>"),
        ]:
            headers = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
        request = StatusAndHeaders("GET /one.html HTTP/1.1", [("Host", "warc.example")], is_http_request=True)
        writer.write_record(writer.create_warc_record("http://warc.example/one.html", "request",
                                                      http_headers=request))


def routes(server_base: str) -> dict:
    def url(path: str) -> str:
        return server_base + path

    return {
        "/robots.txt": Reply(200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}),
        "/ok.html": html(article_html(1)),
        "/redirect-1": Reply(301, b"", {"Location": "/redirect-2"}),
        "/redirect-2": Reply(302, b"", {"Location": url("/final.html")}),
        "/final.html": html(article_html(2)),
        "/loop-a": Reply(301, b"", {"Location": "/loop-b"}),
        "/loop-b": Reply(302, b"", {"Location": "/loop-a"}),
        "/missing": Reply(404, b"no", {"Content-Type": "text/plain"}),
        "/gone": Reply(410, b"gone", {"Content-Type": "text/plain"}),
        "/busy": lambda n, h: Reply(429, b"slow down", {"Retry-After": "1"}) if n == 1 else html(article_html(3)),
        "/flaky": lambda n, h: Reply(500, b"oops") if n <= 2 else html(article_html(4)),
        "/stall.html": Reply(200, article_html(20).encode(), {"Content-Type": "text/html"}, stall_after=200),
        "/endless.html": endless,
        "/bomb.html": Reply(200, gzip.compress(b" " * 20_000_000),
                            {"Content-Type": "text/html", "Content-Encoding": "gzip"}),
        # Declared UTF-8, really Windows-1252, no <meta>: detection must get it right.
        "/wrong-charset.html": html(article_html(5, charset_meta=None, extra=" Café naïve façade déjà.")
                                    .encode("cp1252"), charset="utf-8"),
        # No charset in the header: the page's own <meta> says ISO-8859-1.
        "/no-charset.html": html(article_html(6, charset_meta="iso-8859-1", extra=" Crème brûlée à gogo.")
                                 .encode("iso-8859-1"), charset=None),
        "/image.png": Reply(200, b"\x89PNG\r\n\x1a\n" + bytes(5000), {"Content-Type": "image/png"}),
        "/private/secret.html": html(article_html(7)),
        "/etag.html": conditional(article_html(16).encode(), "text/html; charset=utf-8", '"page-v1"'),
        "/feed.xml": conditional(rss(url("/feed-a.html"), url("/feed-b.html?utm_source=x&utm_medium=rss")),
                                 "application/rss+xml"),
        "/feed-a.html": html(article_html(8)),
        "/feed-b.html?utm_source=x&utm_medium=rss": html(article_html(9)),
        "/feed.json": Reply(200, json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J",
                                             "items": [{"id": "j1", "url": url("/json-a.html"),
                                                        "title": "JSON item", "authors": [{"name": "Ada"}]}]})
                            .encode(), {"Content-Type": "application/feed+json"}),
        "/json-a.html": html(article_html(10)),
        "/malformed.xml": Reply(200, b"<rss><channel><item><title>broken \x00\xff", {"Content-Type": "text/xml"}),
        "/bomb-feed.xml": Reply(200, BILLION_LAUGHS, {"Content-Type": "application/rss+xml"}),
        "/ssrf-feed.xml": Reply(200, rss(url("/ok2.html"), "http://169.254.169.254/latest/meta-data/",
                                         "ftp://127.0.0.1/etc/passwd"), {"Content-Type": "application/rss+xml"}),
        "/ok2.html": html(article_html(17)),
        "/sitemap_index.xml": Reply(200, (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{url('/sitemap-pages.xml.gz')}</loc></sitemap>"
            f"<sitemap><loc>{url('/news-sitemap.xml')}</loc><lastmod>2026-11-09</lastmod></sitemap>"
            "</sitemapindex>").encode(), {"Content-Type": "application/xml"}),
        "/sitemap-pages.xml.gz": Reply(200, gzip.compress(urlset(
            f"<url><loc>{url('/sm-a.html')}</loc><lastmod>2026-11-08T10:00:00Z</lastmod></url>",
            f"<url><loc>{url('/sm-b.html')}</loc></url>")), {"Content-Type": "application/gzip"}),
        "/news-sitemap.xml": Reply(200, urlset(
            f"<url><loc>{url('/news-a.html')}</loc><news:news><news:publication><news:name>Test Gazette"
            "</news:name><news:language>en</news:language></news:publication>"
            "<news:publication_date>2026-11-09T07:30:00+00:00</news:publication_date>"
            "<news:title>News sitemap headline</news:title></news:news></url>"), {"Content-Type": "text/xml"}),
        "/sm-a.html": html(article_html(11)),
        "/sm-b.html": html(article_html(12)),
        "/news-a.html": html(article_html(13)),
    }


# Every page that must end as an article, with the seed of its generated text.
GOOD = {"/ok.html": 1, "/final.html": 2, "/busy": 3, "/flaky": 4, "/wrong-charset.html": 5, "/no-charset.html": 6,
        "/etag.html": 16, "/feed-a.html": 8, "/feed-b.html": 9, "/json-a.html": 10, "/sm-a.html": 11,
        "/sm-b.html": 12, "/news-a.html": 13, "http://warc.example/one.html": 14, "http://warc.example/two.html": 15}
PAGES = ["/ok.html", "/redirect-1", "/loop-a", "/missing", "/gone", "/busy", "/flaky", "/stall.html", "/endless.html",
         "/bomb.html", "/wrong-charset.html", "/no-charset.html", "/image.png", "/private/secret.html"]


@dataclass
class Crawl:
    """What the two runs and the reprocess left behind, paths relative to the server."""

    server: CrawlServer
    failure: str  # why the first run failed: sources that yielded nothing
    runs: list[tuple]  # pipeline_runs after the first run: (status, articles loaded)
    rows: dict[str, tuple]  # fetches of the first run: url -> (status, error kind, retries, not modified, bytes)
    articles: dict[str, tuple]  # url -> (title, text) after the first run
    hints: dict[str, Any]  # raw page url -> its hints
    second: list[tuple]  # fetches of the second run: (url, status, not modified)
    restored: dict[str, tuple]  # articles after the load was lost and reprocess ran
    reprocessed: dict[str, Any]  # reprocess's summary


def _relative(server: CrawlServer, rows) -> dict[str, tuple]:
    return {r[0].removeprefix(server.base): tuple(r[1:]) for r in rows}


def _crawl(warehouse_url: str, tmp_path) -> Crawl:
    from flows.ingest import ingest_news
    from flows.reprocess import reprocess_news
    from tasks.sources import SourceUnavailable

    server = CrawlServer({})
    server.routes.update(routes(server.base))
    warc = tmp_path / "news.warc.gz"
    write_warc(warc, server.base)
    with server:
        local = {"allow_private_network": True}
        sources = [
            {"name": "pages", "kind": "urls", "urls": [server.url(p) for p in PAGES], **local},
            {"name": "refresh", "kind": "urls", "urls": [server.url("/etag.html")], "refresh_interval": 0},
            {"name": "feed", "kind": "rss", "url": server.url("/feed.xml"), **local},
            {"name": "jsonfeed", "kind": "rss", "url": server.url("/feed.json"), **local},
            {"name": "malformed", "kind": "rss", "url": server.url("/malformed.xml")},
            {"name": "laughs", "kind": "rss", "url": server.url("/bomb-feed.xml")},
            {"name": "ssrf", "kind": "rss", "url": server.url("/ssrf-feed.xml")},  # no allowance
            {"name": "maps", "kind": "sitemap", "url": server.url("/sitemap_index.xml"), **local},
            {"name": "archive", "kind": "warc", "path": str(warc)},
        ]
        # The two feeds that cannot be read fail the run, after everything else was loaded.
        with pytest.raises(SourceUnavailable) as failed:
            ingest_news(sources=sources, warehouse_url=warehouse_url)
        runs = query(warehouse_url, "SELECT status, load_out FROM pipeline_runs")
        rows = _relative(server, query(
            warehouse_url, "SELECT url, status_code, error_kind, retries, not_modified, bytes FROM fetches"))
        articles = _relative(server, query(warehouse_url, "SELECT url, title, text FROM articles"))
        hints = {url: json.loads(h) if isinstance(h, str) else h for url, h in query(
            warehouse_url, "SELECT url, hints FROM raw_documents WHERE kind = 'page'")}
        # Second run: the feed and the refreshed page answer 304, known articles are not asked for again.
        ingest_news(sources=[sources[0] | {"urls": [server.url("/ok.html")]}, sources[1], sources[2]],
                    warehouse_url=warehouse_url)
        second = [(u.removeprefix(server.base), s, bool(m)) for u, s, m in query(
            warehouse_url, "SELECT url, status_code, not_modified FROM fetches WHERE run_id = "
                           "(SELECT run_id FROM pipeline_runs ORDER BY started_at DESC LIMIT 1)")]

    # The load is lost; the raw store brings every article back without a single request.
    with make_engine(warehouse_url).begin() as conn:
        for table in ("article_band_keys", "article_signatures", "duplicates", "articles"):
            conn.execute(text(f"DELETE FROM {table}"))
    reprocessed = reprocess_news(warehouse_url=warehouse_url)
    restored = _relative(server, query(warehouse_url, "SELECT url, title, text FROM articles"))
    return Crawl(server, str(failed.value), runs, rows, articles, hints, sorted(second), restored, reprocessed)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crawl(request, prefect_server, tmp_path_factory):
    """The crawl, once per warehouse, with tiny timeouts and caps so the hard cases cost little."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"READ_TIMEOUT": "1", "CONNECT_TIMEOUT": "1", "REQUEST_TIMEOUT": "5",
                            "MAX_RESPONSE_BYTES": "300000", "MAX_RETRIES": "2"}.items():
            patch.setenv(f"NEWSFLOW_{name}", value)
        get_settings.cache_clear()
        tmp_path = tmp_path_factory.mktemp("crawl")
        try:
            if request.param == "sqlite":
                yield _crawl(f"sqlite:///{tmp_path / 'warehouse.db'}", tmp_path)
            else:
                if not POSTGRES_URL:
                    pytest.skip("NEWSFLOW_TEST_POSTGRES_URL is not set (.ci/run sets it)")
                for url in _postgres_database():
                    yield _crawl(url, tmp_path)
        finally:
            get_settings.cache_clear()


def test_a_plain_page_is_fetched(crawl):
    assert crawl.rows["/ok.html"][:2] == (200, None)


def test_redirects_are_followed_to_the_final_page(crawl):
    assert crawl.rows["/redirect-1"][:2] == (200, None)
    assert "/final.html" in crawl.articles


def test_a_redirect_loop_is_recorded(crawl):
    assert crawl.rows["/loop-a"][1] == "redirect_loop"


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/gone", 410)])
def test_a_client_error_is_recorded_and_not_retried(crawl, path, status):
    assert crawl.rows[path][:3] == (status, "http_status", 0)
    assert crawl.server.hits[path] == 1


def test_a_429_is_retried_after_its_retry_after(crawl):
    assert crawl.rows["/busy"][:3] == (200, None, 1)
    busy = crawl.server.times("/busy")
    assert busy[1] - busy[0] >= 1.0  # Retry-After: 1 was honoured


def test_a_server_error_is_retried_until_it_succeeds(crawl):
    assert crawl.rows["/flaky"][:3] == (200, None, 2) and crawl.server.hits["/flaky"] == 3


def test_a_stalled_body_times_out_and_is_retried(crawl):
    assert crawl.rows["/stall.html"][1:3] == ("timeout", 2)


def test_an_endless_body_stops_at_the_size_cap(crawl):
    assert crawl.rows["/endless.html"][1] == "too_large"


def test_a_gzip_bomb_stops_at_the_size_cap(crawl):
    assert crawl.rows["/bomb.html"][1] == "too_large"


def test_a_page_of_another_content_type_is_not_downloaded(crawl):
    assert crawl.rows["/image.png"][:2] == (200, "content_type") and crawl.rows["/image.png"][4] == 0


def test_a_page_robots_txt_disallows_is_never_requested(crawl):
    assert crawl.rows["/private/secret.html"][:2] == (None, "robots")
    assert crawl.server.hits["/private/secret.html"] == 0


def test_robots_txt_is_read_once_per_host_per_run_for_all_sources(crawl):
    # Two runs, each reading it once for all its sources (its cache lives as long as the run).
    assert crawl.server.hits["/robots.txt"] == 2


def test_a_malformed_feed_is_recorded(crawl):
    assert crawl.rows["/malformed.xml"][1] == "malformed_feed"


def test_an_entity_bomb_feed_is_refused(crawl):
    assert crawl.rows["/bomb-feed.xml"][1] == "unsafe_xml"


def test_links_to_private_addresses_and_other_schemes_are_refused(crawl):
    assert crawl.rows["/ok2.html"][:2] == (None, "private_network") and crawl.server.hits["/ok2.html"] == 0
    assert crawl.rows["http://169.254.169.254/latest/meta-data/"][:2] == (None, "private_network")
    assert crawl.rows["ftp://127.0.0.1/etc/passwd"][:2] == (None, "scheme")


@pytest.mark.parametrize("listing", ["/feed.xml", "/feed.json", "/sitemap_index.xml", "/sitemap-pages.xml.gz",
                                     "/news-sitemap.xml"])
def test_feeds_and_sitemaps_are_read(crawl, listing):
    assert crawl.rows[listing][:2] == (200, None)


def test_warc_records_are_fetches_of_their_own(crawl):
    assert crawl.rows["http://warc.example/one.html"][:2] == (200, None)
    assert crawl.rows["http://warc.example/logo.png"][1] == "content_type"
    assert crawl.rows["http://warc.example/gone.html"][:2] == (404, "http_status")


def test_every_good_page_is_loaded_and_nothing_else(crawl):
    assert set(crawl.articles) == set(GOOD)  # tracking parameters gone from /feed-b.html
    for url, seed in GOOD.items():
        assert crawl.articles[url][0].startswith(f"Story number {seed} "), url
    assert crawl.runs == [("failed", len(GOOD))]


def test_sources_that_yield_nothing_fail_the_run_naming_their_feed(crawl):
    url = crawl.server.url
    assert crawl.failure.startswith(f"source 'malformed' yielded nothing: feed {url('/malformed.xml')} unreadable: ")
    assert f"source 'laughs' yielded nothing: feed {url('/bomb-feed.xml')} unreadable: " in crawl.failure
    assert "'ssrf'" not in crawl.failure  # its feed was read: its links were refused, one by one


def test_a_mislabelled_charset_and_a_meta_charset_are_decoded(crawl):
    assert "Café naïve façade déjà." in crawl.articles["/wrong-charset.html"][1]
    assert "Crème brûlée à gogo." in crawl.articles["/no-charset.html"][1]


def test_a_news_sitemap_title_is_kept_as_a_hint(crawl):
    assert crawl.hints[crawl.server.url("/news-a.html")]["title"] == "News sitemap headline"


def test_a_second_run_asks_conditionally_and_skips_known_pages(crawl):
    assert crawl.second == [("/etag.html", 304, True), ("/feed.xml", 304, True), ("/robots.txt", 200, False)]
    assert crawl.server.hits["/ok.html"] == 1 and crawl.server.hits["/feed-a.html"] == 1


def test_reprocess_brings_every_article_back_from_the_raw_store(crawl):
    assert crawl.restored == crawl.articles
    assert crawl.reprocessed["load_out"] == len(GOOD)
