"""Fetch benchmark: the polite client against a naive sequential client, on many local hosts with latency.

    .venv/bin/python benchmarks/fetch.py
    .venv/bin/python benchmarks/fetch.py --hosts 40 --pages 10 --latency 0.1 --delay 0.5 --concurrency 16

Every host is a server on its own port of 127.0.0.1 answering after `--latency` seconds, all served by a
separate process (so the client's threads do not delay the servers' clocks). Both clients
fetch the same pages (listed host by host, as a sitemap would give them). Reported: pages/s, and how well
the per-host delay was kept: the smallest gap the servers saw between two requests to one host, and how
many such gaps were shorter than 90% of the configured delay (a few ms of scheduling jitter on a loaded
machine is not a politeness failure; a naive client's gaps are the bare latency).
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path

import httpx

import tasks.settings  # noqa: F401  (telemetry off)
from tasks.crawlstate import NoState
from tasks.fetch import FetchOutcome, fetch_pages
from tasks.http import PoliteClient
from tasks.settings import Settings
from tasks.sources import UrlsSource

PAGE = (b"<!doctype html><html><head><meta charset='utf-8'><title>Page</title></head><body><article>"
        + b"<p>Some words of an article body. </p>" * 50 + b"</article></body></html>")


class Hosts:
    """`count` HTTP servers on 127.0.0.1, each answering after `latency` seconds; request times logged."""

    def __init__(self, count: int, latency: float) -> None:
        self.log: dict[int, list[float]] = defaultdict(list)
        lock = threading.Lock()
        log = self.log

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    log[self.server.server_address[1]].append(time.monotonic())
                time.sleep(latency)
                body, status = (b"", 404) if self.path == "/robots.txt" else (PAGE, 200)
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(count)]
        for server in self.servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def ports(self) -> list[int]:
        return [s.server_address[1] for s in self.servers]

    def gaps(self) -> list[float]:
        return [b - a for times in self.log.values() for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]


def serve(count: int, latency: float, pipe) -> None:
    """The server process: report the ports, then answer "gaps" (and forget the log) until "stop"."""
    hosts = Hosts(count, latency)
    pipe.send(hosts.ports())
    while (command := pipe.recv()) != "stop":
        if command == "gaps":
            pipe.send(hosts.gaps())
            hosts.log.clear()


class HostsProcess:
    def __init__(self, count: int, latency: float) -> None:
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=serve, args=(count, latency, child), daemon=True)
        self.process.start()
        self.ports: list[int] = self.pipe.recv()

    def urls(self, pages: int) -> list[str]:
        return [f"http://127.0.0.1:{port}/article-{n}.html" for port in self.ports for n in range(pages)]

    def gaps(self) -> list[float]:
        self.pipe.send("gaps")
        return self.pipe.recv()

    def close(self) -> None:
        self.pipe.send("stop")
        self.process.join(timeout=5)


def naive(urls: list[str]) -> int:
    """What a first script does: one client, one URL after the other, no delay, no robots.txt."""
    ok = 0
    with httpx.Client(timeout=10) as client:
        for url in urls:
            ok += client.get(url).status_code == 200
    return ok


SENT: dict[int, list[float]] = defaultdict(list)  # when the polite client's requests left, per port


def polite(urls: list[str], settings: Settings) -> int:
    SENT.clear()
    source = UrlsSource(name="bench", kind="urls", urls=urls, allow_private_network=True)
    outcome = FetchOutcome(source="bench")
    with PoliteClient(settings, allow_private_network=True) as client:
        client.client.event_hooks = {"request": [lambda request: SENT[request.url.port].append(time.monotonic())]}
        fetch_pages(client, [(u, {}) for u in urls], source, settings, NoState(), outcome, trusted=True)
    return len(outcome.documents)


def client_min_gap() -> float:
    return min(b - a for times in SENT.values() for a, b in pairwise(times))


def measure(name: str, run, hosts: HostsProcess, delay: float) -> dict[str, float]:
    hosts.gaps()  # forget earlier requests
    started = time.perf_counter()
    fetched = run()
    elapsed = time.perf_counter() - started
    gaps = hosts.gaps()
    return {"client": name, "pages": fetched, "seconds": elapsed, "pages_per_s": fetched / elapsed,
            "min_gap": min(gaps), "gaps_under_delay": sum(g < 0.9 * delay for g in gaps), "gaps": len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--pages", type=int, default=10, help="pages per host")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds each response takes")
    parser.add_argument("--delay", type=float, default=0.25, help="per-host delay of the polite client")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (polite client)")
    args = parser.parse_args()

    settings = Settings(host_delay_seconds=args.delay, fetch_concurrency=args.concurrency,
                        max_items_per_source=args.hosts * args.pages, data_dir=Path("data"))
    hosts = HostsProcess(args.hosts, args.latency)
    urls = hosts.urls(args.pages)
    try:
        results = [measure("naive sequential", lambda: naive(urls), hosts, args.delay),
                   measure("newsflow polite", lambda: polite(urls, settings), hosts, args.delay)]
    finally:
        hosts.close()
    print(f"{args.hosts} hosts x {args.pages} pages, {args.latency * 1000:.0f} ms latency, per-host delay "
          f"{args.delay:.2f} s, concurrency {args.concurrency} (2 shared cores: figures are noisy)\n")
    print(f"{'client':<18}{'pages':>7}{'seconds':>9}{'pages/s':>9}{'min gap (s)':>13}{'gaps < 90% delay':>18}")
    for r in results:
        print(f"{r['client']:<18}{r['pages']:>7}{r['seconds']:>9.2f}{r['pages_per_s']:>9.1f}{r['min_gap']:>13.3f}"
              f"{r['gaps_under_delay']:>13}/{r['gaps']}")
    print(f"\npolite client's own smallest gap between two requests to one host: {client_min_gap():.3f} s "
          "(the servers' figure adds their scheduling jitter)")


if __name__ == "__main__":
    main()
