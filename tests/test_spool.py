"""The warehouse lost during a run: the run fails clearly, keeps what it fetched in the spool, and the
next run loads the spool first. "Lost" is real: a TCP proxy in front of PostgreSQL is cut, or another
SQLite connection holds the write lock; the shared database server itself is never stopped."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.engine import make_url
from test_load import query

from flows.cli import main
from tasks.records import Article, Duplicate
from tasks.settings import PROJECT_ROOT, get_settings
from tasks.spool import read_spool, spool_dir, write_spool
from tasks.textnorm import content_hash

pytestmark = pytest.mark.usefixtures("prefect_server")

PAGES = ["council-budget-vote.html", "harbour-storm-damage.html", "library-reopening.html"]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a server; `cut()` drops every connection and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone would not
        self.listener.close()
        for s in self.sockets:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def site(on_request) -> Iterator[str]:
    """Three sample article pages on 127.0.0.1; `on_request` runs when the first page is asked for."""
    fired = threading.Event()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if not fired.is_set():
                fired.set()
                on_request()
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    def handler(*args, **kwargs):
        return Handler(*args, directory=str(PROJECT_ROOT / "samples" / "site" / "articles"), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def quick_failures(monkeypatch, tmp_path):
    for name, value in {"DATA_DIR": str(tmp_path / "data"), "LOAD_RETRIES": "1", "LOAD_RETRY_DELAY": "0.1",
                        "WAREHOUSE_BUSY_TIMEOUT": "0.5", "WAREHOUSE_CONNECT_TIMEOUT": "2",
                        "HOST_DELAY_SECONDS": "0"}.items():
        monkeypatch.setenv(f"NEWSFLOW_{name}", value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def sources(base: str, pages: list[str]) -> list[dict]:
    return [{"name": "picks", "kind": "urls", "urls": [f"{base}/{page}" for page in pages],
             "allow_private_network": True}]


def test_warehouse_lost_during_a_run_keeps_everything_for_the_next_run(warehouse_url, quick_failures):
    from flows.ingest import ingest_news
    from tasks.warehouse import WarehouseError, open_warehouse

    open_warehouse(warehouse_url).dispose()
    lock: list[sqlite3.Connection] = []
    if warehouse_url.startswith("sqlite"):
        run_url = warehouse_url

        def cut() -> None:  # another process holding the write lock for longer than the busy timeout
            holder = sqlite3.connect(make_url(warehouse_url).database, check_same_thread=False)
            holder.execute("BEGIN EXCLUSIVE")
            lock.append(holder)

        def restore() -> None:
            lock[0].rollback()
            lock[0].close()
    else:
        target = make_url(warehouse_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        run_url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        cut, restore = proxy.cut, proxy.restore

    with site(cut) as base, pytest.raises(WarehouseError) as failure:
        ingest_news(sources=sources(base, PAGES), warehouse_url=run_url)
    message = str(failure.value)
    assert "unavailable during the run" in message and "the next run loads them first" in message
    assert "3 fetched documents are kept" in message
    settings = get_settings().model_copy(update={"warehouse_url": run_url})
    (spooled,) = read_spool(settings)
    assert sorted(d.url.rsplit("/", 1)[1] for d in spooled.documents) == PAGES
    assert query(warehouse_url, "SELECT count(*) FROM articles") == [(0,)]

    restore()  # the warehouse is back: the next run loads the spool, then what it fetches itself
    with site(lambda: None) as base:
        summary = ingest_news(sources=sources(base, ["housing-plan.html"]), warehouse_url=run_url)
    assert summary["load_out"] == 4
    assert sorted(row[0].rsplit("/", 1)[1] for row in query(warehouse_url, "SELECT url FROM articles")) == sorted(
        [*PAGES, "housing-plan.html"])
    assert read_spool(settings) == []


def test_spooled_cleaned_articles_are_loaded_first_with_their_duplicates(warehouse_url, quick_failures):
    from flows.ingest import ingest_news

    body = "The harbour master said the storm damaged twelve boats and the pier overnight. " * 8
    kept = Article(source="wire", url="https://news.example/storm", canonical_url="https://news.example/storm",
                   title="Storm damages harbour", text=body, content_hash=content_hash(body))
    copy = Duplicate(url="https://mirror.example/storm", source="mirror", kept_url=kept.canonical_url,
                     kind="exact", canonical_url="https://mirror.example/storm")
    settings = get_settings().model_copy(update={"warehouse_url": warehouse_url})
    path = write_spool(settings, "earlier-run", articles=[kept], duplicates=[copy])
    assert path.parent == spool_dir(settings) and path.suffix == ".jsonl"

    with site(lambda: None) as base:
        summary = ingest_news(sources=sources(base, ["housing-plan.html"]), warehouse_url=warehouse_url)

    assert summary["load_out"] == 2
    assert query(warehouse_url, "SELECT d.url, a.title FROM duplicates d JOIN articles a ON a.id = d.article_id") \
        == [("https://mirror.example/storm", "Storm damages harbour")]
    assert not path.exists()


def test_unreachable_warehouse_at_start_is_exit_4_without_password(capsys):
    assert main(["ingest", "--url", "http://127.0.0.1:9/a.html", "--allow-private-network",
                 "--warehouse", "postgresql+psycopg://newsflow:s3cret@127.0.0.1:9/news"]) == 4
    err = capsys.readouterr().err
    assert "s3cret" not in err and "unavailable" in err
