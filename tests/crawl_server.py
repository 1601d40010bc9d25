"""A configurable HTTP server on 127.0.0.1 for the fetch tests: every route is a function of the request
number, so a test can script "429 then 200", stall mid-body, stream forever or send a gzip bomb."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = """harbour council budget ferry storm bridge festival library school hospital quota fishing
river market station museum tower garden theatre stadium village county island coast valley forest
mayor minister engineer teacher nurse farmer captain sailor baker student judge officer driver artist
repair approve reject delay open close expand reduce survey inspect visit launch celebrate announce
review protest support oppose fund build restore measure predict record collect deliver organise
morning evening winter summer autumn spring weekend holiday century decade moment season calendar
green quiet early late sudden narrow broad ancient modern rural coastal northern southern eastern
western local national public private annual weekly historic famous crowded empty wooden stone
copper silver golden purple orange yellow scarlet crimson silent gentle rapid steady cautious
bold clever eager patient honest curious proud""".split()  # noqa: SIM905  (a paragraph reads better)


def article_html(seed: int, title: str | None = None, charset_meta: str | None = "utf-8",
                 extra: str = "") -> str:
    """A page with a distinct article (no shared 5-word runs with other seeds, in practice)."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(4):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 14))).capitalize() + "."
                     for _ in range(3)]
        paragraphs.append(f"<p>{' '.join(sentences)}{extra}</p>")
    title = title or f"Story number {seed} about the {rng.choice(WORDS)} {rng.choice(WORDS)}"
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return (f"<!doctype html><html lang=\"en\"><head>{meta}<title>{title}</title></head><body>"
            f"<nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{''.join(paragraphs)}</article>"
            "<footer>Copyright The Test Gazette</footer></body></html>")


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterator[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    stall_after: int | None = None  # send this many body bytes, go silent `stall_seconds`, then the rest
    stall_seconds: float = 5.0
    # A slow server that keeps each read timeout alive: after the status line, the header block one byte
    # every `header_trickle` seconds; the body one byte every `body_trickle` seconds.
    header_trickle: float | None = None
    body_trickle: float | None = None


Route = Callable[[int, dict[str, str]], Reply]  # (1-based hit number for the path, request headers) -> reply


def html(body: str | bytes, charset: str | None = "utf-8", **extra: str) -> Reply:
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Reply(200, data, {"Content-Type": content_type, **extra})


class CrawlServer:
    """`with CrawlServer(routes) as server: server.url("/path")`; `server.hits` and `server.log` say what
    was requested, when, with which headers."""

    def __init__(self, routes: dict[str, Route | Reply], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.hits: Counter[str] = Counter()
        self.log: list[tuple[str, float, dict[str, str]]] = []
        self.hung_up: Counter[str] = Counter()  # replies the client closed the connection on, by path
        self.replied: Counter[str] = Counter()  # replies sent whole (their headers and body)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.hits[self.path] += 1
                    number = server.hits[self.path]
                    server.log.append((self.path, time.monotonic(), headers))
                route = server.routes.get(self.path)
                if route is None:
                    reply = Reply(404, b"not here", {"Content-Type": "text/plain"})
                else:
                    reply = route(number, headers) if callable(route) else route
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                try:
                    if isinstance(reply.body, bytes):
                        self.send_header("Content-Length", str(len(reply.body)))
                        self._end_headers(reply.header_trickle)
                        body = reply.body
                        if reply.stall_after is not None:
                            self.wfile.write(body[:reply.stall_after])
                            self.wfile.flush()
                            time.sleep(reply.stall_seconds)
                            body = body[reply.stall_after:]  # the remainder: never past Content-Length
                        self._write(body, reply.body_trickle)
                    else:  # a stream: no length, the connection closes at the end
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for chunk in reply.body:
                            self.wfile.write(chunk)
                        self.close_connection = True
                    self.wfile.flush()
                    server._finished(self.path, server.replied)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                    server._finished(self.path, server.hung_up)

            def _end_headers(self, trickle: float | None) -> None:
                if trickle is None:
                    self.end_headers()
                    return
                self.send_header("X-Trickle", "1")  # (a few more bytes to trickle)
                block = b"".join(self._headers_buffer) + b"\r\n"
                self._headers_buffer = []
                status_line, rest = block.split(b"\r\n", 1)
                self.wfile.write(status_line + b"\r\n")
                self._write(rest, trickle)

            def _write(self, data: bytes, trickle: float | None) -> None:
                if trickle is None:
                    self.wfile.write(data)
                    return
                for offset in range(len(data)):
                    time.sleep(trickle)
                    self.wfile.write(data[offset:offset + 1])
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _finished(self, path: str, counter: Counter[str]) -> None:
        with self._done:
            counter[path] += 1
            self._done.notify_all()

    def wait_finished(self, path: str, timeout: float = 30.0) -> str:
        """How the (first) reply to `path` ended: "replied" (sent whole) or "hung up" (the client closed
        the connection first), once the server is done with it."""
        with self._done:
            self._done.wait_for(lambda: self.replied[path] or self.hung_up[path], timeout)
            return "hung up" if self.hung_up[path] else "replied" if self.replied[path] else "still sending"

    def url(self, path: str) -> str:
        return self.base + path

    def times(self, path: str) -> list[float]:
        return [t for p, t, _ in self.log if p == path]

    def __enter__(self) -> CrawlServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
