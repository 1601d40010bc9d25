"""The polite HTTP client: robots.txt, per-host delay, a global concurrency bound, retries with backoff,
bounded redirects with loop detection, conditional GET, and a size cap enforced while streaming
(decompression included, so a gzip bomb stops at the cap).

Every HTTP exchange a caller asks for ends as one `FetchAttempt` (a row of `fetches`): retries and
redirects are counted on it, robots.txt fetches are attempts of their own.
"""

from __future__ import annotations

import codecs
import email.utils
import random
import re
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from charset_normalizer import from_bytes
from protego import Protego

from tasks.records import FetchAttempt
from tasks.settings import Settings
from tasks.urls import canonicalize_url, host_of, unsafe_url_reason

REDIRECT_CODES = (301, 302, 303, 307, 308)
RETRY_CODES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
MAX_CRAWL_DELAY_SECONDS = 30.0  # a robots.txt Crawl-delay above this is capped, not obeyed literally


class TooLarge(Exception):
    pass


# --- charset ---------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
_SINGLE_BYTE = re.compile(r"^(us-?ascii|ascii|latin-?1|iso-?8859-\d+|windows-125\d|cp125\d)$", re.IGNORECASE)


def declared_charset(body: bytes) -> str | None:
    """The charset a document declares about itself (`<meta charset>`, XML declaration)."""
    head = body[:4096]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii").lower() if match else None


# Labels naming a subset of what pages so labelled hold: browsers decode them as the superset (the WHATWG
# Encoding Standard), and so do we. Keys are Python's canonical codec names (codecs.lookup(label).name).
_SUPERSET = {"ascii": "cp1252", "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030",
             "euc_kr": "cp949", "shift_jis": "cp932"}
# A byte-order mark says how the page is encoded, whatever a header claims (WHATWG "BOM sniffing").
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _try_decode(body: bytes, charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    for codec in dict.fromkeys((_SUPERSET.get(name, name), name)):
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def decode_body(body: bytes, header_charset: str | None) -> str:
    """Text of a body: its byte-order mark, the header's charset, the document's own declaration, UTF-8,
    then detection (charset-normalizer). Never raises: undecodable bytes become U+FFFD as a last resort. NUL characters
    are dropped: they mean nothing in a page and PostgreSQL refuses them in text and JSON."""
    return _decode(body, header_charset).replace("\x00", "")


def _decode(body: bytes, header_charset: str | None) -> str:
    for bom, charset in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(charset, errors="replace")
    if header_charset and _SINGLE_BYTE.match(header_charset) and not body.isascii():
        # A legacy single-byte label on bytes that are valid UTF-8 is a mislabel (valid multi-byte
        # UTF-8 sequences practically never occur in real Latin-1 text).
        as_utf8 = _try_decode(body, "utf-8")
        if as_utf8 is not None:
            return as_utf8
    for charset in (header_charset, declared_charset(body), "utf-8"):
        text = _try_decode(body, charset)
        if text is not None:
            return text
    return _detect(body)


def _detect(body: bytes) -> str:
    """charset-normalizer's guess; among near-ties, windows-1252 (the web's usual unlabeled legacy
    encoding, WHATWG's reading of "latin-1") wins over rarer code pages that decode the same bytes."""
    matches = list(from_bytes(body))
    if not matches:
        return body.decode("utf-8", errors="replace")
    best = min(matches, key=lambda m: m.chaos)
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.05:
            return str(match)
    return str(best)


# --- streaming with a cap --------------------------------------------------------------------


def _decompressor(encoding: str) -> Callable[[bytes, int], bytes] | None:
    """A function (chunk, max_out) -> bytes for a Content-Encoding; None for identity."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        state = {"obj": zlib.decompressobj(zlib.MAX_WBITS | (16 if "gzip" in encoding else 0))}

        def decompress(chunk: bytes, max_out: int) -> bytes:
            obj = state["obj"]
            try:
                out = obj.decompress(chunk, max_out)
            except zlib.error:
                if encoding != "deflate":
                    raise
                # Some servers send raw deflate without the zlib header.
                state["obj"] = obj = zlib.decompressobj(-zlib.MAX_WBITS)
                out = obj.decompress(chunk, max_out)
            # Output beyond max_out stays in unconsumed_tail: its existence already means "too large".
            if obj.unconsumed_tail:
                raise TooLarge
            return out

        return decompress
    raise ValueError(f"unsupported content encoding {encoding!r}")


def read_capped(chunks: Iterator[bytes], content_encoding: str, max_bytes: int, deadline: float) -> bytes:
    """Join raw body chunks, decoding the Content-Encoding, stopping at `max_bytes` decoded bytes.
    Raises TooLarge past the cap and TimeoutError past the deadline (whole-request timeout)."""
    decompress = _decompressor(content_encoding)
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        if decompress is not None:
            chunk = decompress(chunk, max_bytes - size + 1)
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge
        parts.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError
    return b"".join(parts)


def gunzip_capped(data: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip file (e.g. sitemap.xml.gz) without letting it grow past `max_bytes`."""
    obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = obj.decompress(data, max_bytes + 1)
    if len(out) > max_bytes or obj.unconsumed_tail:
        raise TooLarge
    return out


# --- politeness ------------------------------------------------------------------------------


@dataclass
class _Host:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_start: float = 0.0


class HostGate:
    """One request at a time per host, starts at least `delay` seconds apart; `defer` pushes the next
    start back (Retry-After, backoff). Shared by every client of a run (its `HttpSession`), so two
    sources on one host still share its budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}

    def _host(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host, _Host())

    @contextmanager
    def slot(self, host: str, delay: float, bound: threading.BoundedSemaphore | None = None) -> Iterator[None]:
        """Wait for the host's turn, then for a place under the global `bound`; the delay counts from
        the moment the request really starts."""
        state = self._host(host)
        with state.lock:
            wait = state.next_start - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if bound is not None:
                bound.acquire()
            try:
                state.next_start = time.monotonic() + delay
                yield
            finally:
                if bound is not None:
                    bound.release()

    def defer(self, host: str, seconds: float) -> None:
        state = self._host(host)
        state.next_start = max(state.next_start, time.monotonic() + seconds)


@dataclass
class _Robots:
    rules: Protego | None  # None: everything allowed
    disallow_all: bool
    fetched: float


class RobotsCache:
    """robots.txt per host, fetched once and kept for `ttl` seconds (a run reads each host's once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._entries: dict[tuple[str, str], _Robots] = {}

    def get(self, key: tuple[str, str], ttl: float, load: Callable[[], _Robots]) -> _Robots:
        with self._lock:
            host_lock = self._host_locks.setdefault(key[0], threading.Lock())
        with host_lock:  # two pages of one host must not both fetch its robots.txt
            entry = self._entries.get(key)
            if entry is None or time.monotonic() - entry.fetched > ttl:
                entry = self._entries[key] = load()
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class HttpSession:
    """The politeness state of a run's HTTP clients, kept as long as the run: each host's turn (`HostGate`),
    the robots.txt read from each host (`RobotsCache`) and the bound on requests in flight across all of
    the run's sources (`fetch_concurrency`). A run opens one and hands it to every client it makes; a client
    made without one has one of its own, for its lifetime."""

    def __init__(self, settings: Settings) -> None:
        self.gate = HostGate()
        self.robots = RobotsCache()
        self.bound = threading.BoundedSemaphore(max(1, settings.fetch_concurrency))

    def close(self) -> None:
        self.robots.clear()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- a wall-clock deadline per request -------------------------------------------------------
#
# httpx's timeouts bound each socket operation, not the request: a server sending a header byte every
# few seconds keeps every read under the read timeout for as long as it likes. The deadline of the request
# under way on a thread is applied to every connect, read and write its connection makes: each may wait
# only what is left of it, and none may start once it has passed.

_DEADLINE = threading.local()


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Whatever the server does, the request made in this block takes at most `seconds`."""
    _DEADLINE.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _DEADLINE.at = None


def _left(timeout: float | None, timed_out: type[Exception]) -> float | None:
    deadline = getattr(_DEADLINE, "at", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise timed_out("the whole request took longer than its deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                                         local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout),
                                                                 socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _deadline_transport(ssl_context: ssl.SSLContext) -> httpx.HTTPTransport:
    """httpx's transport on a connection pool whose connections keep the request's deadline. httpx has no
    parameter for httpcore's network backend: its pool is built again here with one (httpx's defaults)."""
    transport = httpx.HTTPTransport(verify=ssl_context)
    transport._pool = httpcore.ConnectionPool(ssl_context=ssl_context, max_connections=100,
                                              max_keepalive_connections=20, keepalive_expiry=5.0,
                                              network_backend=_DeadlineBackend())
    return transport


# --- the client ------------------------------------------------------------------------------


# The one piece of HTTP state kept for the process's lifetime, not a run's: the TLS context, built on first
# use and never changed after (the CA bundle it loads is the same for every run). Building one costs tens of
# milliseconds of CPU; the first sources, starting together, each built one: 1.6 s of a 10 s re-run
# (docs/benchmarks.md).
_TLS_CONTEXTS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process. Built under a lock: the first sources start
    together on their own threads, and an unlocked cache let each of them build one."""
    with _TLS_LOCK:
        if not _TLS_CONTEXTS:
            _TLS_CONTEXTS.append(httpx.create_ssl_context())
        return _TLS_CONTEXTS[0]


@dataclass(slots=True)
class Validators:
    """What a conditional GET sends back: the ETag and Last-Modified of the last good response."""

    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime | None = None


@dataclass(slots=True)
class FetchResult:
    attempt: FetchAttempt
    body: bytes | None = None
    final_url: str | None = None
    media_type: str = ""
    charset: str | None = None
    validators: Validators | None = None  # of this response, to store for the next run

    @property
    def ok(self) -> bool:
        return self.body is not None

    @property
    def not_modified(self) -> bool:
        return self.attempt.not_modified

    def text(self) -> str:
        return decode_body(self.body or b"", self.charset)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True)
class _Retry:
    retry_after: str | None = None  # the Retry-After header, when the server sent one


@dataclass(slots=True)
class _Redirect:
    location: str


def _fail(attempt: FetchAttempt, kind: str, message: str) -> FetchResult:
    attempt.error_kind, attempt.error = kind, message
    return FetchResult(attempt)


class PoliteClient:
    """`fetch(url)` politely, with everything recorded on the returned attempt.

    `trusted` URLs (those written in the sources file) may point at private addresses; URLs found in
    feeds, sitemaps and redirects may only when the source allows the private network.
    """

    def __init__(self, settings: Settings, allow_private_network: bool = False,
                 session: HttpSession | None = None) -> None:
        self.settings = settings
        self.allow_private_network = allow_private_network
        self.session = session or HttpSession(settings)  # the run's, shared by its clients; else its own
        self.gate = self.session.gate
        self.robots = self.session.robots
        self.bound = self.session.bound
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,  # followed here: each hop is checked and counted
            transport=_deadline_transport(_tls_context()),  # NEWSFLOW_REQUEST_TIMEOUT bounds each attempt
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # robots.txt -------------------------------------------------------------------------------

    def _load_robots(self, url: str, source: str, attempts: list[FetchAttempt]) -> _Robots:
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        result = self._exchange_with_retries(robots_url, source, {}, check_safety=False,
                                             accept=lambda media: True, max_bytes=500_000)
        attempts.append(result.attempt)
        status = result.attempt.status_code
        if result.ok:
            return _Robots(Protego.parse(decode_body(result.body or b"", result.charset)), False, time.monotonic())
        if status is not None and 400 <= status < 500 and status != 429:
            return _Robots(None, False, time.monotonic())  # no robots.txt: everything allowed (RFC 9309)
        # Unreachable robots.txt (5xx, network error): assume everything is disallowed (RFC 9309).
        return _Robots(None, True, time.monotonic())

    def robots_check(self, url: str, source: str, attempts: list[FetchAttempt]) -> tuple[bool, float]:
        """(allowed, crawl delay) for a URL; the robots.txt fetch, if any, is appended to `attempts`."""
        key = (host_of(url), self.settings.user_agent)
        entry = self.robots.get(key, self.settings.robots_cache_seconds,
                                lambda: self._load_robots(url, source, attempts))
        if entry.disallow_all:
            return False, 0.0
        if entry.rules is None:
            return True, 0.0
        delay = entry.rules.crawl_delay(self.settings.user_agent) or 0.0
        return entry.rules.can_fetch(url, self.settings.user_agent), min(float(delay), MAX_CRAWL_DELAY_SECONDS)

    # one URL ----------------------------------------------------------------------------------

    def fetch(self, url: str, source: str, *, trusted: bool = False, validators: Validators | None = None,
              accept: Callable[[str], bool] = lambda media: True,
              extra_attempts: list[FetchAttempt] | None = None) -> FetchResult:
        """GET a URL politely. `accept(media_type)` says which content types are worth downloading;
        robots.txt attempts made on the way go to `extra_attempts`."""
        headers: dict[str, str] = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        return self._exchange_with_retries(url, source, headers, check_safety=not trusted, accept=accept,
                                           robots_attempts=extra_attempts if extra_attempts is not None else [])

    def _exchange_with_retries(self, url: str, source: str, headers: dict[str, str], *, check_safety: bool,
                               accept: Callable[[str], bool], max_bytes: int | None = None,
                               robots_attempts: list[FetchAttempt] | None = None) -> FetchResult:
        settings = self.settings
        attempt = FetchAttempt(source=source, url=url)
        started = time.perf_counter()
        try:
            current, seen, redirects = url, {canonicalize_url(url)}, 0
            while True:
                # The scheme is always checked; the address only for URLs the operator did not write.
                unsafe = unsafe_url_reason(current, self.allow_private_network or not check_safety)
                if unsafe:
                    return _fail(attempt, *unsafe)
                crawl_delay = 0.0
                if robots_attempts is not None:
                    allowed, crawl_delay = self.robots_check(current, source, robots_attempts)
                    if not allowed:
                        return _fail(attempt, "robots", f"disallowed by robots.txt for {settings.user_agent}")
                result = self._exchange(current, attempt, headers, accept, max_bytes or settings.max_response_bytes,
                                        max(settings.host_delay_seconds, crawl_delay))
                status = attempt.status_code
                if isinstance(result, _Retry):  # network error, timeout, 429, 5xx
                    wait = self._backoff(attempt.retries)
                    retry_after = _retry_after(result.retry_after)
                    if retry_after is not None:
                        if retry_after > settings.max_retry_after_seconds:
                            if status == 429:
                                attempt.error_kind = "rate_limited"
                            attempt.error = (f"{attempt.error}; Retry-After {retry_after:.0f}s is over the "
                                             f"{settings.max_retry_after_seconds:.0f}s limit")
                            return FetchResult(attempt)
                        wait = max(wait, retry_after)
                    if attempt.retries >= settings.max_retries:
                        return FetchResult(attempt)
                    attempt.retries += 1
                    self.gate.defer(host_of(current), wait)
                    continue
                if isinstance(result, _Redirect):
                    target = urljoin(current, result.location)
                    key = canonicalize_url(target)
                    if key in seen:
                        return _fail(attempt, "redirect_loop", f"redirect loop back to {target}")
                    redirects += 1
                    if redirects > settings.max_redirects:
                        return _fail(attempt, "too_many_redirects", f"more than {settings.max_redirects} redirects")
                    seen.add(key)
                    current, check_safety = target, True  # a redirect's target is never trusted
                    headers = {}  # validators belong to the URL that was asked for
                    continue
                if result.ok:
                    result.final_url = current
                return result
        finally:
            attempt.elapsed_ms = int((time.perf_counter() - started) * 1000)

    def _backoff(self, retries: int) -> float:
        base = self.settings.retry_backoff_seconds
        return base * (2 ** retries) + random.uniform(0, base)  # jitter: clients retrying together spread out

    def _exchange(self, url: str, attempt: FetchAttempt, headers: dict[str, str], accept: Callable[[str], bool],
                  max_bytes: int, delay: float) -> FetchResult | _Retry | _Redirect:
        """One HTTP request and its outcome: a result, a reason to retry, or where it redirects."""
        settings = self.settings
        with self.gate.slot(host_of(url), delay, self.bound), request_deadline(settings.request_timeout):
            deadline = time.monotonic() + settings.request_timeout
            try:
                with self.client.stream("GET", url, headers=headers) as response:
                    status = attempt.status_code = response.status_code
                    attempt.content_type = response.headers.get("content-type")
                    attempt.error = attempt.error_kind = None
                    if status in REDIRECT_CODES:
                        location = response.headers.get("location")
                        if not location:
                            return _fail(attempt, "http_status", f"HTTP {status} without a Location header")
                        return _Redirect(location)
                    if status == 304:
                        attempt.not_modified = True
                        return FetchResult(attempt)
                    if status in RETRY_CODES:
                        attempt.error_kind, attempt.error = "http_status", f"HTTP {status} {response.reason_phrase}"
                        return _Retry(response.headers.get("retry-after"))
                    if status >= 400 or status < 200:
                        return _fail(attempt, "http_status", f"HTTP {status} {response.reason_phrase}".strip())
                    media = media_type(attempt.content_type)
                    if not accept(media):
                        return _fail(attempt, "content_type", f"unsupported content type {media or '(none)'}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes and not response.headers.get(
                            "content-encoding"):
                        attempt.bytes = int(declared)
                        return _fail(attempt, "too_large", f"too large: {declared} bytes declared, cap {max_bytes}")
                    try:
                        body = read_capped(response.iter_raw(), response.headers.get("content-encoding", ""),
                                           max_bytes, deadline)
                    except TooLarge:
                        attempt.bytes = max_bytes
                        return _fail(attempt, "too_large", f"too large: over {max_bytes} bytes (decoded)")
                    except TimeoutError:
                        attempt.error_kind, attempt.error = "timeout", (
                            f"whole request over {settings.request_timeout}s")
                        return _Retry()
                    except (ValueError, zlib.error) as exc:
                        return _fail(attempt, "decoding", f"cannot decode body: {exc}")
                    attempt.bytes = len(body)
                    return FetchResult(attempt, body=body, media_type=media, charset=response.charset_encoding,
                                       validators=Validators(response.headers.get("etag"),
                                                             response.headers.get("last-modified"),
                                                             attempt.fetched_at))
            except httpx.TimeoutException as exc:
                attempt.error_kind, attempt.error = "timeout", f"{type(exc).__name__}: {exc}".rstrip(": ")
                if time.monotonic() >= deadline:
                    attempt.error = f"whole request over {settings.request_timeout}s ({attempt.error})"
            except httpx.TransportError as exc:
                attempt.error_kind, attempt.error = "network", f"{type(exc).__name__}: {exc}".rstrip(": ")
            except httpx.HTTPError as exc:  # invalid URL and the like: retrying cannot help
                return _fail(attempt, "bad_url", f"{type(exc).__name__}: {exc}")
            return _Retry()
