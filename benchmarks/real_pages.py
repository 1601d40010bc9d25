"""Real pages through the whole pipeline: what reaches the warehouse, and how good the stored text is.

    python benchmarks/real_pages.py FOLDER [--limit N] [--warehouse URL]

e.g. `python benchmarks/real_pages.py ../shared/extraction-dev`. FOLDER has the AEB layout
(`ground-truth.json` and `html/<id>.html.gz`, see benchmarks/extraction.py). Every original host gets a loopback
address of its own (127.0.0.2, 127.0.0.3, ...) serving its pages at their original paths, without a charset
header (as many servers do). `newsflow ingest` (the installed command, a `urls` source) fetches them into a fresh
SQLite warehouse, and the benchmark prints:
- pages loaded, quarantined (with the reasons) and dropped as copies, and pages missing from all three;
- the F1 of the stored `articles.text` (AEB metric), beside `extract_text` and plain trafilatura on the same
  pages, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extraction import Page, load_corpus, page_f1, references, score  # noqa: E402


def _handler(pages: dict[str, bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")  # no charset: the page's own declaration decides
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def serve_by_host(pages: list[Page], raw: dict[str, bytes], stack: ExitStack) -> dict[str, str]:
    """Serve each original host's pages on a loopback address of its own; page key -> its local URL."""
    hosts: dict[str, dict[str, bytes]] = {}
    local: dict[str, str] = {}
    for page in pages:
        parts = urlsplit(page.url or f"http://unknown/{page.key}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        hosts.setdefault(parts.hostname or "unknown", {})[path] = raw[page.key]
    addresses: dict[str, str] = {}
    for number, (host, host_pages) in enumerate(sorted(hosts.items()), start=2):
        address = f"127.0.{number // 250}.{number % 250 + 2}"
        server = ThreadingHTTPServer((address, 0), _handler(host_pages))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.shutdown)
        addresses[host] = f"http://{address}:{server.server_address[1]}"
    for page in pages:
        parts = urlsplit(page.url or f"http://unknown/{page.key}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        local[page.key] = addresses[parts.hostname or "unknown"] + path
    return local


def ingest(urls: list[str], warehouse: str, workdir: Path) -> tuple[int, float]:
    sources = workdir / "sources.yaml"
    sources.write_text(json.dumps({"sources": [{"name": "real-pages", "kind": "urls", "urls": urls,
                                                "allow_private_network": True}]}), encoding="utf-8")
    newsflow = shutil.which("newsflow", path=str(Path(sys.executable).parent)) or "newsflow"
    env = {**os.environ, "NEWSFLOW_HOST_DELAY_SECONDS": "0"}
    started = time.perf_counter()
    result = subprocess.run([newsflow, "ingest", "--sources", str(sources), "--warehouse", warehouse],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode not in (0, 5):  # 5: a source failed a stage's checks; its rows are still counted here
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
    return result.returncode, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages (smoke runs)")
    args = parser.parse_args(argv)

    import gzip

    from sqlalchemy import create_engine, text

    kind, pages = load_corpus(args.folder, args.limit)
    if kind != "aeb":
        parser.error("real_pages.py needs the AEB layout (ground-truth.json): it scores the stored text")
    raw = {page.key: gzip.decompress((args.folder / "html" / f"{page.key}.html.gz").read_bytes()) for page in pages}
    with tempfile.TemporaryDirectory(prefix="newsflow-real-pages-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        local = serve_by_host(pages, raw, stack)
        warehouse = f"sqlite:///{workdir / 'warehouse.db'}"
        code, seconds = ingest(list(local.values()), warehouse, workdir)
        engine = create_engine(warehouse)
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT url, text FROM articles")).all())
            quarantined = conn.execute(text("SELECT url, stage, reasons FROM quarantine")).all()
            copies = dict(conn.execute(text("SELECT url, kind FROM duplicates")).all())
        engine.dispose()

    by_local = {url: key for key, url in local.items()}
    stored_by_key = {by_local[url]: body for url, body in stored.items() if url in by_local}
    quarantined_keys = {by_local.get(url): (stage, reasons) for url, stage, reasons in quarantined}
    copy_keys = {by_local.get(url): copy_kind for url, copy_kind in copies.items()}
    missing = [page for page in pages
               if page.key not in stored_by_key and page.key not in quarantined_keys and page.key not in copy_keys]
    hosts = len({urlsplit(page.url or "").hostname for page in pages})
    print(f"{len(pages)} real pages of {hosts} hosts from {args.folder.name}; `newsflow ingest` exit {code} "
          f"in {seconds:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"loaded {len(stored_by_key)}, quarantined {len(quarantined_keys)}, dropped as copies {len(copy_keys)}, "
          f"missing {len(missing)}")
    reasons = Counter()
    for key, (stage, why) in quarantined_keys.items():
        reason = why if isinstance(why, str) else "; ".join(json.loads(why) if why.startswith("[") else [why])
        reasons[f"{stage}: {reason.split(' (')[0]}"] += 1
        print(f"    quarantined {key[:16] if key else '?'} {stage}: {reason[:160]}")
    for key, copy_kind in copy_keys.items():
        print(f"    dropped as {copy_kind} copy: {key[:16] if key else '?'}")
    for page in missing:
        print(f"    missing: {page.key[:16]} {page.url}")

    from tasks.extract import extract_text

    plain = references()["trafilatura-default"]
    rows = {"stored articles.text": stored_by_key,
            "extract_text": {page.key: extract_text(page.html, page.url) for page in pages},
            "trafilatura-default": {page.key: plain(page.html, page.url) for page in pages}}
    print(f"{'text':24} {'P':>6} {'R':>6} {'F1':>6}")
    for name, predictions in rows.items():
        p, r, f1 = score(kind, pages, predictions)
        print(f"{name:24} {p:6.3f} {r:6.3f} {f1:6.3f}")
    print("loaded pages whose stored text scores more than 0.05 below extract_text's:")
    for page in pages:
        if page.key in stored_by_key:
            lost = (page_f1(kind, rows["extract_text"][page.key], page.truth)
                    - page_f1(kind, stored_by_key[page.key], page.truth))
            if lost > 0.05:
                print(f"    -{lost:.2f} {page.key[:16]} {page.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
