"""NEWSFLOW_REQUEST_TIMEOUT is the most one attempt can take, whatever the server does: a per-read timeout
alone lets a server that sends a byte now and then hold a fetch for as long as it likes."""

from __future__ import annotations

from crawl_server import CrawlServer, Reply, article_html

from tasks.http import PoliteClient
from tasks.settings import Settings

# Each byte comes well within the read timeout; the whole reply would take about 15 s.
SLOW = {"host_delay_seconds": 0.0, "retry_backoff_seconds": 0.01, "max_retries": 0,
        "read_timeout": 5.0, "connect_timeout": 2.0, "request_timeout": 1.0}



def _fetch(reply: Reply) -> tuple[object, CrawlServer]:
    with CrawlServer({"/slow.html": reply}) as server, PoliteClient(Settings(**SLOW), True) as client:
        return client.fetch(server.url("/slow.html"), "s", trusted=True), server


def test_headers_trickled_a_byte_at_a_time_end_at_the_request_deadline():
    result, server = _fetch(Reply(200, article_html(1).encode(), {"Content-Type": "text/html"},
                                  header_trickle=0.1))
    assert not result.ok
    assert result.attempt.error_kind == "timeout"
    assert result.attempt.error.startswith("whole request over 1.0s")
    # The client hung up while the headers were still coming (before: it waited for all of them).
    assert server.wait_finished("/slow.html") == "hung up"


def test_a_body_trickled_a_byte_at_a_time_ends_at_the_request_deadline():
    body = article_html(2).encode()[:150]
    result, server = _fetch(Reply(200, body, {"Content-Type": "text/html"}, body_trickle=0.1))
    assert not result.ok
    assert result.attempt.error_kind == "timeout"
    assert "over 1.0s" in result.attempt.error
    assert server.wait_finished("/slow.html") == "hung up"


def test_a_deadline_retried_is_a_fresh_deadline_per_attempt():
    settings = Settings(**{**SLOW, "max_retries": 1})
    slow_then_fast = {"/page.html": lambda n, h: Reply(200, b"<p>late</p>", {"Content-Type": "text/html"},
                                                       header_trickle=0.1 if n == 1 else None)}
    with CrawlServer(slow_then_fast) as server, PoliteClient(settings, True) as client:
        result = client.fetch(server.url("/page.html"), "s", trusted=True)
    assert result.ok and result.body == b"<p>late</p>"
    assert result.attempt.retries == 1 and server.hits["/page.html"] == 2
