"""The polite HTTP client's smaller duties, one per test, against real servers on 127.0.0.1 (or on bytes):
charsets, content encodings, the per-host gate, robots.txt edge cases, redirects, statuses, conditional GET
and the exact messages recorded on each attempt. The safeguards themselves: tests/test_fetch_safeguards.py."""

from __future__ import annotations

import codecs
import email.utils
import gzip
import socket
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta

import httpcore
import pytest
from crawl_server import CrawlServer, Reply, html

from tasks import http
from tasks.http import (
    FetchResult,
    HostGate,
    HttpSession,
    PoliteClient,
    RobotsCache,
    TooLarge,
    Validators,
    _retry_after,
    declared_charset,
    decode_body,
    gunzip_capped,
    media_type,
    read_capped,
    request_deadline,
)
from tasks.records import FetchAttempt
from tasks.settings import Settings

FAST = {"host_delay_seconds": 0.0, "retry_backoff_seconds": 0.01, "read_timeout": 2.0, "connect_timeout": 1.0}
NO_ROBOTS = {"/robots.txt": Reply(404, b"")}
FOREVER = float("inf")


def client(allow_private_network: bool = True, **settings) -> PoliteClient:
    return PoliteClient(Settings(**{**FAST, **settings}), allow_private_network=allow_private_network)


# --- charsets ------------------------------------------------------------------------------------------


def test_declared_charset_reads_the_xml_declaration_and_the_meta_tag_in_the_first_4096_bytes():
    assert declared_charset(b'<?xml version="1.0" encoding="ISO-8859-1"?><rss/>') == "iso-8859-1"
    assert declared_charset(b"  <?xml version='1.0' encoding='Windows-1251'?>") == "windows-1251"
    assert declared_charset(b'<html><head><META http-equiv="Content-Type" content="text/html; '
                            b'charset=Shift_JIS"></head>') == "shift_jis"
    assert declared_charset(b"<meta charset=KOI8-R>") == "koi8-r"
    assert declared_charset(b"<p>no declaration</p>") is None
    meta = b"<meta charset=euc-kr"
    assert declared_charset(b" " * (4096 - len(meta)) + meta + b">") == "euc-kr"  # ends on the 4096th byte
    assert declared_charset(b" " * (4097 - len(meta)) + meta + b">") == "euc-k"  # the 4097th is not read


@pytest.mark.parametrize(("label", "text", "encoding"), [
    ("ascii", "price \u20ac5", "cp1252"),  # 0x80 is not ASCII: browsers read windows-1252
    ("iso-8859-1", "\u201cquoted\u201d \u20ac", "cp1252"),
    ("gb2312", "\u9555 \U0001f600", "gb18030"),  # beyond GB2312: read as GB18030
    ("gbk", "\U0001f600", "gb18030"),
    ("euc-kr", "\ub620", "cp949"),  # a Hangul syllable only Windows' code page 949 has
    ("shift_jis", "\u2460 \u2161", "cp932"),  # circled digit and Roman numeral: Windows' code page 932
])
def test_a_label_naming_a_subset_decodes_as_its_superset(label, text, encoding):
    body = text.encode(encoding)
    assert body.decode(label, errors="replace") != text  # the label's own codec cannot
    assert decode_body(body, label) == text
    assert decode_body(b'<meta charset="' + label.encode() + b'">' + body, None).endswith(text)


def test_a_byte_the_superset_lacks_falls_back_to_the_label_itself():
    # 0x81 is undefined in windows-1252 but is a (control) character in ISO-8859-1; not UTF-8 either.
    assert decode_body(b"caf\xe9 \x81", "iso-8859-1") == "caf\xe9 \x81"


@pytest.mark.parametrize(("bom", "codec"), [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                            (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_a_byte_order_mark_decides_and_is_dropped(bom, codec):
    text = "Stra\xdfe \u65e5\u672c"
    assert decode_body(bom + text.encode(codec), "iso-8859-1") == text
    assert decode_body(bom + text.encode(codec), None) == text


def test_bad_bytes_after_a_byte_order_mark_become_replacement_characters():
    assert decode_body(codecs.BOM_UTF8 + b"ok \xff", None) == "ok \ufffd"


@pytest.mark.parametrize("label", ["us-ascii", "ascii", "latin1", "latin-1", "iso-8859-15", "ISO8859-2",
                                   "windows-1250", "cp1252"])
def test_utf8_bytes_labelled_with_a_single_byte_charset_are_read_as_utf8(label):
    text = "na\xefve caf\xe9 \u2014 \u20ac"
    assert decode_body(text.encode("utf-8"), label) == text


def test_a_multi_byte_label_is_believed_even_when_the_bytes_are_utf8():
    body = "\u0416".encode()  # two bytes, which KOI8-R reads as two letters
    assert decode_body(body, "koi8-r") == body.decode("koi8-r") != "\u0416"


def test_the_header_wins_over_the_declaration_which_wins_over_utf8():
    body = '<meta charset="windows-1251"><p>\u041c\u043e\u0441\u043a\u0432\u0430</p>'.encode("cp1251")
    assert decode_body(body, None).endswith("\u041c\u043e\u0441\u043a\u0432\u0430</p>")
    assert decode_body(body, "koi8-r") == body.decode("koi8-r")
    assert decode_body(b"<meta charset='nonsense'>\xc3\xa9", None).endswith("\xe9")  # unknown: UTF-8 next
    assert decode_body(b"<meta charset='utf-8'>\xe9t\xe9", "no-such-charset") != ""  # detected, never raises


def test_unlabelled_legacy_bytes_are_detected():
    text = "Le caf\xe9 de la gare est ferm\xe9 depuis l'\xe9t\xe9 dernier, \xe0 cause des travaux."
    assert decode_body(text.encode("cp1252"), None) == text


@pytest.mark.parametrize(("text", "encoding"), [
    ("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u6771\u4eac\u3067\u4f1a\u8b70\u304c"
     "\u958b\u304b\u308c\u307e\u3057\u305f\u3002", "shift_jis"),
    ("\u0397 \u0391\u03b8\u03ae\u03bd\u03b1 \u03b5\u03af\u03bd\u03b1\u03b9 \u03b7 \u03c0\u03c1\u03c9\u03c4"
     "\u03b5\u03cd\u03bf\u03c5\u03c3\u03b1 \u03c4\u03b7\u03c2 \u0395\u03bb\u03bb\u03ac\u03b4\u03b1\u03c2.", "cp1253"),
    # charset-normalizer ranks code page 775 first here; windows-1252, as near, is what browsers would read.
    ("Le caf\xe9 de la gare est ferm\xe9 depuis l'\xe9t\xe9 dernier, \xe0 cause des travaux. Co\xfbt: 5\u20ac.",
     "cp1252"),
])
def test_unlabelled_bytes_in_other_scripts_are_detected(text, encoding):
    assert decode_body(text.encode(encoding), None) == text


def test_nul_characters_are_dropped():
    assert decode_body(b"a\x00b\x00", "utf-8") == "ab"


def test_an_empty_body_is_empty_text():
    assert decode_body(b"", None) == "" and decode_body(b"", "utf-8") == ""


# --- content encodings and caps ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["", "identity", " Identity "])
def test_identity_bodies_are_joined_as_they_are(encoding):
    assert read_capped(iter([b"ab", b"", b"cd"]), encoding, 4, FOREVER) == b"abcd"


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", " GZIP "])
def test_gzip_bodies_are_decoded(encoding):
    data = gzip.compress(b"hello gzip " * 50)
    chunks = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert read_capped(iter(chunks), encoding, 550, FOREVER) == b"hello gzip " * 50


def test_deflate_bodies_are_decoded_with_or_without_the_zlib_header():
    payload = b"deflated words " * 40
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = raw.compress(payload) + raw.flush()
    assert read_capped(iter([zlib.compress(payload)]), "deflate", len(payload), FOREVER) == payload
    assert read_capped(iter([raw_deflate]), "deflate", len(payload), FOREVER) == payload
    pieces = [raw_deflate[i:i + 5] for i in range(0, len(raw_deflate), 5)]  # the switch holds for later chunks
    assert read_capped(iter(pieces), "deflate", len(payload), FOREVER) == payload


def test_a_broken_gzip_body_is_an_error_not_raw_deflate():
    with pytest.raises(zlib.error):
        read_capped(iter([b"definitely not gzip"]), "gzip", 1000, FOREVER)


def test_an_unknown_content_encoding_is_refused():
    with pytest.raises(ValueError, match=r"^unsupported content encoding 'br'$"):
        read_capped(iter([b"x"]), "br", 1000, FOREVER)


def test_the_cap_on_decoded_bytes_is_exact():
    data = gzip.compress(b"a" * 1000)
    halves = [data[: len(data) // 2], data[len(data) // 2:]]
    assert read_capped(iter(halves), "gzip", 1000, FOREVER) == b"a" * 1000
    with pytest.raises(TooLarge):
        read_capped(iter(halves), "gzip", 999, FOREVER)


def test_the_deadline_stops_reading():
    pulled: list[bytes] = []

    def chunks():
        for chunk in (b"one", b"two", b"three"):
            pulled.append(chunk)
            yield chunk

    with pytest.raises(TimeoutError):
        read_capped(chunks(), "", 1000, time.monotonic() - 1)
    assert pulled == [b"one"]


def test_gunzip_capped_is_exact():
    assert gunzip_capped(gzip.compress(b"s" * 500), 500) == b"s" * 500
    with pytest.raises(TooLarge):
        gunzip_capped(gzip.compress(b"s" * 500), 499)
    with pytest.raises(TooLarge):
        gunzip_capped(gzip.compress(b"s" * 5000), 499)  # stopped with output left in the tail


# --- the per-host gate, the global bound, the robots.txt cache --------------------------------------------


def test_the_gate_spaces_one_hosts_requests_and_defer_pushes_back_never_forward():
    gate = HostGate()
    with gate.slot("a.example", 0.3):
        pass
    started = time.monotonic()
    with gate.slot("a.example", 0.0):
        waited = time.monotonic() - started
    assert waited >= 0.25
    with gate.slot("b.example", 0.0):  # another host: a gate of its own
        assert sorted(gate._hosts) == ["a.example", "b.example"]
    gate.defer("a.example", 0.4)
    gate.defer("a.example", 0.0)  # an earlier time does not bring it forward
    started = time.monotonic()
    with gate.slot("a.example", 0.0):
        assert time.monotonic() - started >= 0.35


def test_the_gate_holds_a_place_under_the_bound_while_the_request_runs():
    bound = threading.BoundedSemaphore(1)
    with HostGate().slot("a.example", 0.0, bound):
        assert not bound.acquire(blocking=False)
    assert bound.acquire(blocking=False)  # given back


def test_a_runs_clients_share_its_session_and_its_bound_is_never_zero():
    settings = Settings(**FAST)
    session = HttpSession(settings)
    with PoliteClient(settings, session=session) as a, PoliteClient(settings, session=session) as b:
        assert a.bound is b.bound is session.bound and a.gate is b.gate and a.robots is b.robots
    with PoliteClient(settings) as own, PoliteClient(settings) as other:  # without one: a session of its own
        assert own.gate is not other.gate and own.robots is not other.robots and own.bound is not other.bound
    zero = HttpSession(Settings.model_construct(fetch_concurrency=0)).bound
    assert zero.acquire(blocking=False) and not zero.acquire(blocking=False)
    zero.release()
    two = HttpSession(Settings.model_construct(fetch_concurrency=2)).bound
    assert two.acquire(blocking=False) and two.acquire(blocking=False) and not two.acquire(blocking=False)
    two.release()
    two.release()


def test_the_robots_cache_reloads_after_its_ttl_and_when_cleared():
    cache, loads = RobotsCache(), []

    def load():
        loads.append(1)
        return http._Robots(None, False, time.monotonic())

    key = ("a.example", "bot")
    first = cache.get(key, 60, load)
    assert cache.get(key, 60, load) is first and len(loads) == 1
    time.sleep(0.02)
    assert cache.get(key, 0.01, load) is not first and len(loads) == 2
    cache.get(("a.example", "other-bot"), 60, load)  # another user agent: its own entry
    assert len(loads) == 3
    cache.clear()
    cache.get(key, 60, load)
    assert len(loads) == 4


# --- small parsers ---------------------------------------------------------------------------------------


def test_retry_after_values():
    assert _retry_after(None) is None and _retry_after("") is None and _retry_after("soon") is None
    assert _retry_after(" 120 ") == 120.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    assert 95 <= _retry_after(later) <= 100
    naive = (datetime.now(UTC) + timedelta(seconds=100)).strftime("%a, %d %b %Y %H:%M:%S -0000")
    assert 95 <= _retry_after(naive) <= 100  # no zone: taken as UTC


def test_media_type():
    assert media_type("Text/HTML; charset=UTF-8") == "text/html"
    assert media_type(" application/rss+xml ") == "application/rss+xml"
    assert media_type(None) == "" and media_type("") == ""


def test_the_request_deadline_bounds_each_socket_wait_and_ends_with_its_block():
    assert http._left(7.0, httpcore.ReadTimeout) == 7.0 and http._left(None, httpcore.ReadTimeout) is None
    with request_deadline(50):
        assert http._left(0.5, httpcore.ReadTimeout) == 0.5
        assert 45 < http._left(None, httpcore.ReadTimeout) <= 50
        assert 45 < http._left(100.0, httpcore.ReadTimeout) <= 50
    assert http._left(7.0, httpcore.ReadTimeout) == 7.0
    with request_deadline(0), pytest.raises(httpcore.WriteTimeout,
                                            match=r"^the whole request took longer than its deadline$"):
        http._left(7.0, httpcore.WriteTimeout)


def test_backoff_doubles_with_jitter_under_one_base():
    polite = PoliteClient(Settings(**{**FAST, "retry_backoff_seconds": 1.0}))
    with polite:
        for retries, low in ((0, 1.0), (1, 2.0), (3, 8.0)):
            waits = [polite._backoff(retries) for _ in range(50)]
            assert all(low <= w <= low + 1.0 for w in waits) and len(set(waits)) > 1


def test_fetch_result_properties():
    empty = FetchResult(FetchAttempt(source="s", url="u"))
    assert not empty.ok and not empty.not_modified and empty.text() == ""
    got = FetchResult(FetchAttempt(source="s", url="u"), body=b"caf\xe9", charset="latin-1")
    assert got.ok and got.text() == "caf\xe9"


# --- the client against a server ----------------------------------------------------------------------


def test_requests_carry_the_user_agent_and_accept_compressed_bodies():
    with CrawlServer({**NO_ROBOTS, "/a.html": html("<p>a</p>")}) as server, \
            client(user_agent="TestBot/1.0 (+https://bot.example)") as polite:
        result = polite.fetch(server.url("/a.html"), "s")
    assert result.ok and result.body == b"<p>a</p>" and result.final_url == server.url("/a.html")
    assert result.media_type == "text/html" and result.charset == "utf-8"
    assert result.attempt.bytes == 8 and result.attempt.error is None and result.attempt.status_code == 200
    assert result.attempt.content_type == "text/html; charset=utf-8"
    headers = server.log[-1][2]
    assert headers["user-agent"] == "TestBot/1.0 (+https://bot.example)"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers and "if-modified-since" not in headers


def test_a_gzipped_page_is_decoded_on_the_way():
    page = Reply(200, gzip.compress(b"<p>zipped</p>"), {"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with CrawlServer({**NO_ROBOTS, "/z.html": page}) as server, client() as polite:
        result = polite.fetch(server.url("/z.html"), "s")
    assert result.body == b"<p>zipped</p>" and result.attempt.bytes == 13


def test_conditional_get_sends_the_validators_and_a_304_is_not_modified():
    last_modified = "Tue, 01 Dec 2026 10:00:00 GMT"

    def page(number, headers):
        if headers.get("if-none-match") == '"v1"' and headers.get("if-modified-since") == last_modified:
            return Reply(304, b"")
        return html("<p>v1</p>", ETag='"v1"', **{"Last-Modified": last_modified})

    with CrawlServer({**NO_ROBOTS, "/p.html": page}) as server, client() as polite:
        first = polite.fetch(server.url("/p.html"), "s")
        assert first.ok and first.validators == Validators('"v1"', last_modified, first.attempt.fetched_at)
        again = polite.fetch(server.url("/p.html"), "s", validators=first.validators)
        only_etag = polite.fetch(server.url("/p.html"), "s", validators=Validators(etag='"v1"'))
        only_date = polite.fetch(server.url("/p.html"), "s", validators=Validators(last_modified=last_modified))
    assert again.not_modified and not again.ok and again.attempt.status_code == 304
    assert again.attempt.error is None and again.final_url is None
    assert only_etag.ok and only_date.ok  # the server here wants both
    sent = [headers for path, _, headers in server.log if path == "/p.html"]
    assert sent[2].get("if-none-match") == '"v1"' and "if-modified-since" not in sent[2]
    assert sent[3].get("if-modified-since") == last_modified and "if-none-match" not in sent[3]


def test_a_redirect_is_followed_relative_to_the_page_without_the_validators():
    routes = {**NO_ROBOTS, "/old/page.html": Reply(301, b"", {"Location": "../new/page.html"}),
              "/new/page.html": html("<p>moved</p>")}
    with CrawlServer(routes) as server, client() as polite:
        result = polite.fetch(server.url("/old/page.html"), "s", validators=Validators(etag='"x"'))
    assert result.ok and result.body == b"<p>moved</p>"
    assert result.final_url == server.url("/new/page.html") and result.attempt.url == server.url("/old/page.html")
    assert result.attempt.status_code == 200 and result.attempt.retries == 0
    sent = {path: headers for path, _, headers in server.log}
    assert sent["/old/page.html"]["if-none-match"] == '"x"' and "if-none-match" not in sent["/new/page.html"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_followed(status):
    routes = {**NO_ROBOTS, "/from": Reply(status, b"", {"Location": "/to"}), "/to": html("<p>here</p>")}
    with CrawlServer(routes) as server, client() as polite:
        assert polite.fetch(server.url("/from"), "s").final_url == server.url("/to")


def test_a_redirect_loop_is_caught_at_the_first_repeat():
    routes = {**NO_ROBOTS, "/a": Reply(302, b"", {"Location": "/b"}), "/b": Reply(302, b"", {"Location": "/a#top"})}
    with CrawlServer(routes) as server, client() as polite:
        result = polite.fetch(server.url("/a"), "s")
    assert (result.attempt.error_kind, result.attempt.error) == (
        "redirect_loop", f"redirect loop back to {server.url('/a#top')}")  # the same page once canonical
    assert server.hits["/a"] == 1 and server.hits["/b"] == 1


def test_the_redirect_limit_is_exact():
    routes = {**NO_ROBOTS, **{f"/r{n}": Reply(302, b"", {"Location": f"/r{n + 1}"}) for n in range(3)},
              "/r3": html("<p>end</p>")}
    with CrawlServer(routes) as server:
        with client(max_redirects=3) as polite:
            assert polite.fetch(server.url("/r0"), "s").final_url == server.url("/r3")
        with client(max_redirects=2) as polite:
            result = polite.fetch(server.url("/r0"), "s")
    assert (result.attempt.error_kind, result.attempt.error) == ("too_many_redirects", "more than 2 redirects")


def test_a_redirect_without_a_location_is_a_failed_status():
    with CrawlServer({**NO_ROBOTS, "/r": Reply(302, b"")}) as server, client() as polite:
        result = polite.fetch(server.url("/r"), "s")
    assert (result.attempt.error_kind, result.attempt.error) == ("http_status", "HTTP 302 without a Location header")
    assert result.attempt.retries == 0 and server.hits["/r"] == 1


def test_a_trusted_url_may_be_private_but_neither_its_redirect_nor_an_untrusted_one():
    routes = {**NO_ROBOTS, "/a.html": html("<p>a</p>"), "/go": Reply(302, b"", {"Location": "/a.html"})}
    with CrawlServer(routes) as server, client(allow_private_network=False) as polite:
        trusted = polite.fetch(server.url("/a.html"), "s", trusted=True)
        untrusted = polite.fetch(server.url("/a.html"), "s")
        redirected = polite.fetch(server.url("/go"), "s", trusted=True)
    assert trusted.ok
    assert untrusted.attempt.error_kind == redirected.attempt.error_kind == "private_network"
    assert server.hits["/a.html"] == 1 and server.hits["/go"] == 1


def test_a_source_allowing_the_private_network_follows_private_redirects():
    routes = {**NO_ROBOTS, "/a.html": html("<p>a</p>"), "/go": Reply(302, b"", {"Location": "/a.html"})}
    with CrawlServer(routes) as server, client(allow_private_network=True) as polite:
        assert polite.fetch(server.url("/go"), "s").ok


def test_a_non_http_url_is_refused_before_any_request():
    with client() as polite:
        result = polite.fetch("ftp://127.0.0.1/file.html", "s", trusted=True)
    assert result.attempt.error_kind == "scheme" and not result.ok and result.attempt.status_code is None


@pytest.mark.parametrize(("status", "error"), [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden"),
                                               (400, "HTTP 400 Bad Request"), (410, "HTTP 410 Gone")])
def test_a_client_error_is_final(status, error):
    with CrawlServer({**NO_ROBOTS, "/x": Reply(status, b"no")}) as server, client(max_retries=3) as polite:
        result = polite.fetch(server.url("/x"), "s")
    assert (result.attempt.error_kind, result.attempt.error, result.attempt.status_code) == (
        "http_status", error, status)
    assert result.attempt.retries == 0 and server.hits["/x"] == 1 and not result.ok


def test_a_status_without_a_reason_phrase_is_named_by_its_code():
    with CrawlServer({**NO_ROBOTS, "/x": Reply(299, b"odd")}) as server, client() as polite:
        assert polite.fetch(server.url("/x"), "s").ok  # 2xx: a body
    with CrawlServer({**NO_ROBOTS, "/x": Reply(499, b"")}) as server, client() as polite:
        result = polite.fetch(server.url("/x"), "s")
    assert result.attempt.error == "HTTP 499"


@pytest.mark.parametrize(("status", "error"), [
    (500, "HTTP 500 Internal Server Error"), (429, "HTTP 429 Too Many Requests"), (502, "HTTP 502 Bad Gateway"),
    (504, "HTTP 504 Gateway Timeout"), (520, "HTTP 520")])
def test_server_errors_are_retried_up_to_the_limit(status, error):
    with CrawlServer({**NO_ROBOTS, "/x": Reply(status, b"")}) as server, client(max_retries=2) as polite:
        result = polite.fetch(server.url("/x"), "s")
    assert server.hits["/x"] == 3 and result.attempt.retries == 2
    assert (result.attempt.error_kind, result.attempt.error.strip()) == ("http_status", error)


def test_a_retry_that_succeeds_clears_the_error():
    routes = {**NO_ROBOTS, "/x": lambda n, h: Reply(503, b"") if n == 1 else html("<p>ok</p>")}
    with CrawlServer(routes) as server, client(max_retries=1) as polite:
        result = polite.fetch(server.url("/x"), "s")
    assert result.ok and result.attempt.retries == 1
    assert (result.attempt.error_kind, result.attempt.error, result.attempt.status_code) == (None, None, 200)


def test_a_retry_after_over_the_limit_on_a_server_error_says_both():
    with CrawlServer({**NO_ROBOTS, "/x": Reply(503, b"", {"Retry-After": "3600"})}) as server, \
            client(max_retry_after_seconds=120) as polite:
        result = polite.fetch(server.url("/x"), "s")
    assert result.attempt.error == "HTTP 503 Service Unavailable; Retry-After 3600s is over the 120s limit"


def test_an_unwanted_content_type_is_not_downloaded():
    routes = {**NO_ROBOTS, "/doc.pdf": Reply(200, b"%PDF", {"Content-Type": "Application/PDF"}),
              "/bare": Reply(200, b"?")}
    seen: list[str] = []

    def html_only(media: str) -> bool:
        seen.append(media)
        return media == "text/html"

    with CrawlServer(routes) as server, client() as polite:
        pdf = polite.fetch(server.url("/doc.pdf"), "s", accept=html_only)
        bare = polite.fetch(server.url("/bare"), "s", accept=html_only)
    assert (pdf.attempt.error_kind, pdf.attempt.error) == ("content_type", "unsupported content type application/pdf")
    assert bare.attempt.error == "unsupported content type (none)" and seen == ["application/pdf", ""]
    assert pdf.attempt.bytes == 0


def test_a_declared_length_of_exactly_the_cap_is_read():
    body = b"<p>" + b"x" * 993 + b"</p>"  # 1000 bytes
    with CrawlServer({**NO_ROBOTS, "/a": html(body)}) as server:
        with client(max_response_bytes=1000) as polite:
            assert polite.fetch(server.url("/a"), "s").attempt.bytes == 1000
        with client(max_response_bytes=999) as polite:
            result = polite.fetch(server.url("/a"), "s")
    assert (result.attempt.error, result.attempt.bytes) == ("too large: 1000 bytes declared, cap 999", 1000)


def test_a_compressed_body_declared_over_the_cap_is_judged_on_its_decoded_size():
    import os

    payload = os.urandom(1000)  # incompressible: its gzip is longer than itself
    zipped = Reply(200, gzip.compress(payload), {"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with CrawlServer({**NO_ROBOTS, "/z": zipped}) as server, client(max_response_bytes=1000) as polite:
        result = polite.fetch(server.url("/z"), "s")
    assert result.ok and result.body == payload


def test_a_body_over_the_cap_while_decoding_records_the_cap_and_says_so():
    zipped = Reply(200, gzip.compress(b"a" * 5000), {"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with CrawlServer({**NO_ROBOTS, "/z": zipped}) as server, client(max_response_bytes=1000) as polite:
        result = polite.fetch(server.url("/z"), "s")
    assert (result.attempt.error_kind, result.attempt.error, result.attempt.bytes) == (
        "too_large", "too large: over 1000 bytes (decoded)", 1000)


@pytest.mark.parametrize(("encoding", "body", "error"), [
    ("br", b"x", "cannot decode body: unsupported content encoding 'br'"),
    ("gzip", b"not gzip at all", "cannot decode body: Error -3 while decompressing data: incorrect header check"),
])
def test_an_undecodable_body_is_final(encoding, body, error):
    reply = Reply(200, body, {"Content-Type": "text/html", "Content-Encoding": encoding})
    with CrawlServer({**NO_ROBOTS, "/z": reply}) as server, client(max_retries=2) as polite:
        result = polite.fetch(server.url("/z"), "s")
    assert (result.attempt.error_kind, result.attempt.error, result.attempt.retries) == ("decoding", error, 0)


def test_a_read_timeout_is_retried_and_named():
    slow = {**NO_ROBOTS, "/slow": lambda n, h: (time.sleep(2.5), html("<p>late</p>"))[1] if n == 1
            else html("<p>on time</p>")}
    with CrawlServer(slow) as server, client(read_timeout=1.0, max_retries=1) as polite:
        result = polite.fetch(server.url("/slow"), "s")
    assert result.ok and result.body == b"<p>on time</p>" and result.attempt.retries == 1
    with CrawlServer(slow) as server, client(read_timeout=1.0, max_retries=0) as polite:
        failed = polite.fetch(server.url("/slow"), "s")
    assert (failed.attempt.error_kind, failed.attempt.error) == ("timeout", "ReadTimeout: timed out")


def test_an_unreachable_server_is_a_network_error_retried():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    with client(max_retries=1) as polite:
        attempts: list[FetchAttempt] = []
        result = polite.fetch(f"http://127.0.0.1:{port}/", "s", trusted=True, extra_attempts=attempts)
    assert result.attempt.error_kind == "robots"  # its robots.txt is unreachable first: nothing allowed
    assert [(a.error_kind, a.retries) for a in attempts] == [("network", 1)]
    with client(max_retries=1) as polite:
        direct = polite._exchange_with_retries(f"http://127.0.0.1:{port}/", "s", {}, check_safety=False,
                                               accept=lambda media: True)
    assert direct.attempt.error_kind == "network" and direct.attempt.error.startswith("ConnectError:")
    assert direct.attempt.retries == 1 and direct.attempt.status_code is None


def test_elapsed_time_covers_the_whole_exchange():
    slow = {**NO_ROBOTS, "/slow": lambda n, h: (time.sleep(0.3), html("<p>late</p>"))[1]}
    with CrawlServer(slow) as server, client() as polite:
        result = polite.fetch(server.url("/slow"), "s")
    assert result.ok and result.attempt.elapsed_ms >= 300


# --- robots.txt edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "allowed"), [(400, True), (403, True), (499, True), (429, False)])
def test_robots_txt_client_errors_allow_all_but_too_many_requests_is_unreachable(status, allowed):
    with CrawlServer({"/robots.txt": Reply(status, b"")}) as server, client(max_retries=0) as polite:
        assert polite.robots_check(server.url("/a.html"), "s", []) == (allowed, 0.0)


def test_robots_txt_is_read_whatever_its_content_type_and_from_a_private_host():
    robots = Reply(200, b"User-agent: *\nDisallow: /no/\n", {"Content-Type": "application/octet-stream"})
    routes = {"/robots.txt": robots, "/yes.html": html("<p>y</p>")}
    with CrawlServer(routes) as server, client(allow_private_network=False) as polite:
        attempts: list[FetchAttempt] = []
        assert polite.fetch(server.url("/yes.html"), "s", trusted=True, extra_attempts=attempts).ok
        assert polite.fetch(server.url("/no/x.html"), "s", trusted=True).attempt.error == (
            f"disallowed by robots.txt for {polite.settings.user_agent}")
    assert [(a.url, a.source, a.status_code) for a in attempts] == [(server.url("/robots.txt"), "s", 200)]


def test_a_robots_txt_over_its_own_cap_counts_as_unreachable():
    big = Reply(200, b"User-agent: *\nAllow: /\n" + b"#" * (500_001 - 23), {"Content-Type": "text/plain"})
    with CrawlServer({"/robots.txt": big}) as server, client(max_response_bytes=10_000_000) as polite:
        assert polite.robots_check(server.url("/a.html"), "s", []) == (False, 0.0)
    fits = Reply(200, b"User-agent: *\nAllow: /\n" + b"#" * (500_000 - 23), {"Content-Type": "text/plain"})
    with CrawlServer({"/robots.txt": fits}) as server, client(max_response_bytes=100) as polite:
        assert polite.robots_check(server.url("/a.html"), "s", []) == (True, 0.0)  # its cap, not the pages'


def test_robots_txt_is_fetched_again_after_the_cache_time():
    with CrawlServer({"/robots.txt": Reply(200, b"User-agent: *\nAllow: /\n")}) as server:
        with client(robots_cache_seconds=0) as polite:
            polite.robots_check(server.url("/a"), "s", [])
            time.sleep(0.01)
            polite.robots_check(server.url("/b"), "s", [])
        assert server.hits["/robots.txt"] == 2
        with client(robots_cache_seconds=3600) as polite:  # a new client: a session, and a cache, of its own
            polite.robots_check(server.url("/a"), "s", [])
            polite.robots_check(server.url("/b"), "s", [])
        assert server.hits["/robots.txt"] == 3


def test_robots_txt_rules_follow_the_configured_user_agent():
    rules = b"User-agent: NewsBot\nDisallow: /\nCrawl-delay: 2\n\nUser-agent: *\nAllow: /\n"
    with CrawlServer({"/robots.txt": Reply(200, rules)}) as server:
        with client(user_agent="NewsBot") as polite:
            assert polite.robots_check(server.url("/a"), "s", []) == (False, 2.0)
        with client(user_agent="OtherBot") as polite:
            assert polite.robots_check(server.url("/a"), "s", []) == (True, 0.0)


# --- the deadline's network backend, used directly --------------------------------------------------------


def test_the_deadline_backend_connects_reads_writes_and_sleeps(tmp_path):
    backend = http._DeadlineBackend()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s.sock"))
        server.listen(1)
        stream = backend.connect_unix_socket(str(tmp_path / "s.sock"), timeout=2.0)
        peer, _ = server.accept()
        with peer:
            stream.write(b"ping", timeout=2.0)
            assert peer.recv(4) == b"ping"
            peer.sendall(b"pong")
            assert stream.read(4, timeout=2.0) == b"pong"
            assert stream.get_extra_info("socket").family == socket.AF_UNIX
            stream.close()
            assert peer.recv(4) == b""  # closed
        with request_deadline(0), pytest.raises(httpcore.ConnectTimeout, match="longer than its deadline"):
            backend.connect_unix_socket(str(tmp_path / "s.sock"), timeout=2.0)
    with CrawlServer({}) as tcp:
        port = int(tcp.base.rsplit(":", 1)[1])
        stream = backend.connect_tcp("127.0.0.1", port, timeout=2.0)
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        with request_deadline(0), pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=2.0)
        stream.close()
    started = time.monotonic()
    backend.sleep(0.05)
    assert time.monotonic() - started >= 0.05


def test_the_clients_pool_is_httpx_own_on_the_deadline_backend_with_one_shared_tls_context():
    import httpx

    with client() as one, client() as two:
        pool, default = one.client._transport._pool, httpx.HTTPTransport()._pool
        assert isinstance(pool._network_backend, http._DeadlineBackend)
        for setting in ("_max_connections", "_max_keepalive_connections", "_keepalive_expiry", "_http1", "_http2"):
            assert getattr(pool, setting) == getattr(default, setting), setting
        assert pool._ssl_context is two.client._transport._pool._ssl_context is http._tls_context()
        assert one.client.headers["accept-encoding"] == "gzip, deflate"
        assert (one.client.timeout.read, one.client.timeout.connect) == (2.0, 1.0)
        assert one.client.follow_redirects is False
