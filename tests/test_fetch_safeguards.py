"""Each fetch safeguard on its own, against a real local server: robots.txt rules, Crawl-delay, Retry-After
(honoured, and given up when too long) and the size cap while streaming. The crawl test runs them all
together through the flow; here one that breaks fails alone and says which."""

from __future__ import annotations

import email.utils
import gzip
import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest
from crawl_server import CrawlServer, Reply, article_html, html

from tasks.http import MAX_CRAWL_DELAY_SECONDS, PoliteClient, TooLarge, read_capped
from tasks.records import FetchAttempt
from tasks.settings import Settings

FAST = {"host_delay_seconds": 0.0, "retry_backoff_seconds": 0.01, "read_timeout": 2.0, "connect_timeout": 1.0}
ROBOTS = b"""User-agent: *
Disallow: /private/
Allow: /private/open.html
Crawl-delay: 0.4

User-agent: OtherBot
Disallow: /
"""
NO_ROBOTS = {"/robots.txt": Reply(404, b"")}  # no robots.txt: everything allowed



def robots(body: bytes) -> Reply:
    return Reply(200, body, {"Content-Type": "text/plain"})


def client(**settings) -> PoliteClient:
    return PoliteClient(Settings(**{**FAST, **settings}), allow_private_network=True)


def sent_times(polite: PoliteClient) -> list[float]:
    """When each request of the client really went out (an httpx hook, not the server's blurred clock)."""
    sent: list[float] = []
    polite.client.event_hooks = {"request": [lambda request: sent.append(time.monotonic())]}
    return sent


# --- robots.txt ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "allowed"), [
    ("/private/secret.html", False),  # Disallow: /private/
    ("/private/", False),
    ("/private/open.html", True),  # the longer Allow wins
    ("/privateer.html", True),  # a prefix of a path segment is not the directory
    ("/news/story.html", True),  # OtherBot's Disallow: / is not ours
])
def test_robots_txt_rules_decide_per_path(path, allowed):
    with CrawlServer({"/robots.txt": robots(ROBOTS)}) as server, client() as polite:
        attempts: list[FetchAttempt] = []
        assert polite.robots_check(server.url(path), "s", attempts)[0] is allowed
        assert [a.url for a in attempts] == [server.url("/robots.txt")]  # the robots.txt fetch is recorded


def test_robots_txt_is_read_once_for_many_pages():
    with CrawlServer({"/robots.txt": robots(ROBOTS)}) as server, client() as polite:
        attempts: list[FetchAttempt] = []
        for path in ("/a.html", "/b.html", "/private/c.html"):
            polite.robots_check(server.url(path), "s", attempts)
    assert server.hits["/robots.txt"] == 1 and len(attempts) == 1


def test_a_disallowed_page_is_never_requested():
    with CrawlServer({"/robots.txt": robots(ROBOTS), "/private/secret.html": html(article_html(1))}) as server, \
            client() as polite:
        result = polite.fetch(server.url("/private/secret.html"), "s")
    assert not result.ok and result.attempt.error_kind == "robots"
    assert server.hits["/private/secret.html"] == 0


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (410, True), (503, False), (500, False)])
def test_a_missing_robots_txt_allows_everything_and_an_unreachable_one_nothing(status, allowed):
    with CrawlServer({"/robots.txt": Reply(status, b"")}) as server, client(max_retries=0) as polite:
        assert polite.robots_check(server.url("/a.html"), "s", [])[0] is allowed


@pytest.mark.parametrize(("line", "delay"), [
    ("Crawl-delay: 0.4", 0.4),
    ("Crawl-delay: 86400", MAX_CRAWL_DELAY_SECONDS),  # a day between pages would stall the run: capped
    ("", 0.0),
])
def test_crawl_delay_is_read_and_capped(line, delay):
    with CrawlServer({"/robots.txt": robots(f"User-agent: *\n{line}\n".encode())}) as server, client() as polite:
        assert polite.robots_check(server.url("/a.html"), "s", []) == (True, delay)


def test_crawl_delay_spaces_a_hosts_requests():
    pages = {"/robots.txt": robots(b"User-agent: *\nCrawl-delay: 1\n"), "/a.html": html(article_html(1)),
             "/b.html": html(article_html(2))}
    with CrawlServer(pages) as server, client() as polite:
        sent = sent_times(polite)
        assert polite.fetch(server.url("/a.html"), "s").ok and polite.fetch(server.url("/b.html"), "s").ok
    _robots_txt, a, b = sent
    # Host delay 0: without the Crawl-delay the gap is milliseconds. The hook fires a little after the slot is
    # taken, later still on a busy machine, which can only shorten the gap seen: hence the margin.
    assert b - a >= 0.8


# --- Retry-After ---------------------------------------------------------------------------------------


def _in_three_seconds() -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)


@pytest.mark.parametrize("retry_after", [lambda: "1", _in_three_seconds], ids=["seconds", "http-date"])
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_for_before_the_retry(status, retry_after):
    def busy(number: int, headers: dict[str, str]) -> Reply:
        return Reply(status, b"later", {"Retry-After": retry_after()}) if number == 1 else html(article_html(3))

    with CrawlServer({**NO_ROBOTS, "/busy": busy}) as server, client() as polite:
        sent = sent_times(polite)
        result = polite.fetch(server.url("/busy"), "s")
    assert result.ok and result.attempt.retries == 1 and server.hits["/busy"] == 2
    _robots_txt, first, second = sent
    assert second - first >= 1.0 - 0.005  # the backoff alone is 0.01 s; an HTTP date, 2 to 3 s


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "http_status")])
def test_a_retry_after_over_the_limit_gives_up_at_once(status, kind):
    with CrawlServer({**NO_ROBOTS, "/later": Reply(status, b"", {"Retry-After": "3600"})}) as server, \
            client(max_retry_after_seconds=120) as polite:
        started = time.monotonic()
        result = polite.fetch(server.url("/later"), "s")
    assert not result.ok and (result.attempt.error_kind, result.attempt.retries) == (kind, 0)
    assert "Retry-After 3600s is over the 120s limit" in result.attempt.error
    assert server.hits["/later"] == 1 and time.monotonic() - started < 60  # recorded, not slept


def test_a_retry_after_of_exactly_the_limit_is_honoured():
    routes = {**NO_ROBOTS,
              "/busy": lambda n, h: Reply(503, b"", {"Retry-After": "1"}) if n == 1 else html(article_html(4))}
    with CrawlServer(routes) as server, client(max_retry_after_seconds=1) as polite:
        result = polite.fetch(server.url("/busy"), "s")
    assert result.ok and result.attempt.retries == 1


# --- the size cap --------------------------------------------------------------------------------------


def test_the_cap_counts_bytes_as_they_stream():
    chunks = [b"x" * 400] * 5
    assert read_capped(iter(chunks), "", 2000, float("inf")) == b"x" * 2000  # exactly the cap is fine
    with pytest.raises(TooLarge):
        read_capped(iter([*chunks, b"y"]), "", 2000, float("inf"))
    pulled: list[int] = []

    def endless():
        while True:
            pulled.append(1000)
            yield b"z" * 1000

    with pytest.raises(TooLarge):
        read_capped(endless(), "", 10_000, float("inf"))
    assert sum(pulled) == 11_000  # it stopped reading at the first chunk past the cap


def test_an_endless_body_stops_at_the_cap():
    page = Reply(200, itertools.repeat(b"<p>" + b"more words " * 100 + b"</p>"), {"Content-Type": "text/html"})
    with CrawlServer({**NO_ROBOTS, "/endless.html": page}) as server, \
            client(max_response_bytes=50_000) as polite:
        result = polite.fetch(server.url("/endless.html"), "s")
    assert not result.ok and result.attempt.error_kind == "too_large" and result.attempt.bytes == 50_000
    assert result.attempt.retries == 0  # too large is final


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    big = html(b"<p>" + b"x" * 60_000 + b"</p>")
    with CrawlServer({**NO_ROBOTS, "/big.html": big}) as server, \
            client(max_response_bytes=50_000) as polite:
        result = polite.fetch(server.url("/big.html"), "s")
    assert result.attempt.error_kind == "too_large" and "bytes declared" in result.attempt.error
    assert result.attempt.bytes == 60_007


def test_a_compressed_body_is_capped_on_its_decoded_size():
    small_on_the_wire = Reply(200, gzip.compress(b" " * 2_000_000),
                              {"Content-Type": "text/html", "Content-Encoding": "gzip"})
    fits = Reply(200, gzip.compress(article_html(5).encode()), {"Content-Type": "text/html",
                                                                  "Content-Encoding": "gzip"})
    with CrawlServer({**NO_ROBOTS, "/bomb.html": small_on_the_wire, "/fits.html": fits}) as server, \
            client(max_response_bytes=50_000) as polite:
        bomb, page = polite.fetch(server.url("/bomb.html"), "s"), polite.fetch(server.url("/fits.html"), "s")
    assert bomb.attempt.error_kind == "too_large" and "decoded" in bomb.attempt.error
    assert page.ok and page.text() == article_html(5)
