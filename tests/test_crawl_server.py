"""The test server itself: its slow modes must send exactly what they declare, or the tests built on
them measure the server's bug instead of the client's behaviour."""

from __future__ import annotations

import time

import httpx
from crawl_server import CrawlServer, Reply

BODY = bytes(range(256)) * 8


def test_a_stalled_body_resumes_with_its_remainder_on_a_kept_alive_connection():
    with CrawlServer({"/stall": Reply(200, BODY, stall_after=300, stall_seconds=0.2)}) as server, \
            httpx.Client(timeout=5) as client:
        first = client.get(server.url("/stall"))
        second = client.get(server.url("/stall"))  # same connection: nothing may be left over from the first
    assert first.content == BODY
    assert second.content == BODY
    assert server.hits["/stall"] == 2


def test_trickled_headers_and_body_arrive_whole_one_byte_at_a_time():
    with CrawlServer({"/h": Reply(200, b"hello", header_trickle=0.01),
                      "/b": Reply(200, b"hello", body_trickle=0.1)}) as server, \
            httpx.Client(timeout=httpx.Timeout(2.0)) as client:
        started = time.monotonic()
        headers_slow = client.get(server.url("/h"))
        header_seconds = time.monotonic() - started
        started = time.monotonic()
        body_slow = client.get(server.url("/b"))
        body_seconds = time.monotonic() - started
    assert headers_slow.content == body_slow.content == b"hello"
    assert headers_slow.headers["x-trickle"] == "1"
    # Every byte arrives within the read timeout, yet the whole exchange takes longer than a few of them:
    # what a per-read timeout cannot catch.
    assert header_seconds >= 0.01 * 60
    assert body_seconds >= 0.1 * 5
