"""A source's `max_items` is a per-run budget, never a silent filter: each run takes items it has not read
before, reports the rest as deferred, and repeated runs read everything, nothing twice."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from crawl_server import WORDS, CrawlServer, Reply, article_html, html
from warehouse_sql import query

from tasks.crawlstate import NoState
from tasks.fetch import fetch_source
from tasks.records import FileProgress
from tasks.settings import Settings
from tasks.sources import parse_sources

FAST = {"host_delay_seconds": 0.0, "retry_backoff_seconds": 0.01, "read_timeout": 2.0, "connect_timeout": 1.0}


class MemoryState(NoState):
    """What the warehouse would remember between runs, kept in memory: loaded URLs and file progress."""

    def __init__(self) -> None:
        self.progress: dict[str, FileProgress] = {}
        self.loaded: dict[str, object] = {}

    def file_progress(self, paths):
        return {p: self.progress[p] for p in paths if p in self.progress}

    def known_urls(self, urls):
        return {u: self.loaded[u] for u in urls if u in self.loaded}

    def run(self, source, settings):
        outcome = fetch_source(source, settings, self)
        self.progress.update(outcome.progress)
        self.loaded.update((d.url, d.fetched_at) for d in outcome.documents)
        return outcome


def source(**entry):
    return parse_sources([{"name": "s", **entry}])[0]


def story(seed: int, words: int = 80) -> str:
    rng = random.Random(seed)
    return f"Story {seed}. " + " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def test_jsonl_records_over_the_budget_are_read_by_the_next_runs_from_where_the_last_stopped(tmp_path):
    lines = [json.dumps({"text": story(n)}) for n in range(7)]
    lines.insert(3, "{broken")  # rejected once, by the run that reaches it
    lines.insert(5, "")
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    state, spec = MemoryState(), source(kind="files", path=str(tmp_path / "*.jsonl"), max_items=3)

    runs = [state.run(spec, Settings(**FAST)) for _ in range(4)]

    assert [len(o.documents) for o in runs] == [3, 3, 1, 0]
    assert [o.deferred for o in runs] == [5, 1, 0, 0]  # lines left (a blank one would count: it is a line)
    urls = [d.url.rsplit("#", 1)[1] for o in runs for d in o.documents]
    assert urls == ["L1", "L2", "L3", "L5", "L7", "L8", "L9"]  # line numbers hold across runs
    assert [r.url.rsplit("#", 1)[1] for o in runs for r in o.rejections] == ["L4"]
    assert runs[3].stats.counts["known"] == 1 and not runs[3].attempts


def test_files_over_the_budget_are_deferred_then_read_and_a_changed_file_is_read_again(tmp_path):
    for n in range(5):
        (tmp_path / f"{n}.txt").write_text(story(n))
    state, spec = MemoryState(), source(kind="files", path=str(tmp_path / "*.txt"), max_items=2)

    first, second = state.run(spec, Settings(**FAST)), state.run(spec, Settings(**FAST))
    (tmp_path / "0.txt").write_text(story(100))  # changed: new size, new time
    third = state.run(spec, Settings(**FAST))

    assert [Path(d.url).name for d in first.documents] == ["0.txt", "1.txt"]
    assert [Path(d.url).name for d in second.documents] == ["2.txt", "3.txt"]
    assert [Path(d.url).name for d in third.documents] == ["0.txt", "4.txt"]
    assert (first.deferred, second.deferred, third.deferred) == (3, 1, 0)


def _warc(path: Path, pages: int) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "newsflow tests"}))
        for n in range(pages):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                f"https://warc.example/{path.stem}/{n}.html", "response",
                payload=io.BytesIO(article_html(n).encode()), http_headers=headers))


def test_warc_records_over_the_budget_are_read_by_the_next_runs_from_their_offset(tmp_path):
    _warc(tmp_path / "a.warc.gz", 3)
    _warc(tmp_path / "b.warc.gz", 2)
    state, spec = MemoryState(), source(kind="warc", path=str(tmp_path / "*.warc.gz"), max_items=2)

    runs = [state.run(spec, Settings(**FAST)) for _ in range(4)]

    names = [[d.url.removeprefix("https://warc.example/") for d in o.documents] for o in runs]
    assert names == [["a.warc/0.html", "a.warc/1.html"], ["a.warc/2.html", "b.warc/0.html"], ["b.warc/1.html"], []]
    assert [o.deferred for o in runs] == [3, 1, 0, 0]



def test_feed_links_over_the_budget_are_deferred_and_the_feed_is_read_again():
    server = CrawlServer({f"/p{n}.html": html(article_html(n)) for n in range(5)})
    items = "".join(f"<item><title>t{n}</title><link>{server.url(f'/p{n}.html')}</link></item>" for n in range(5))
    feed = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
    server.routes["/feed.xml"] = Reply(200, feed, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})
    with server:
        spec = source(kind="rss", url=server.url("/feed.xml"), max_items=2, allow_private_network=True)
        state = MemoryState()
        first = state.run(spec, Settings(**FAST))
        assert first.deferred == 3
        # The feed's ETag is not kept while pages are left: a 304 next time would leave them unread.
        assert server.url("/feed.xml") not in first.validators
        second, third = state.run(spec, Settings(**FAST)), state.run(spec, Settings(**FAST))
    fetched = [Path(d.url).name for o in (first, second, third) for d in o.documents]
    assert sorted(fetched) == [f"p{n}.html" for n in range(5)] and len(set(fetched)) == 5
    assert (second.deferred, third.deferred) == (1, 0)
    assert server.url("/feed.xml") in third.validators  # everything read: now it may be asked conditionally


@pytest.mark.usefixtures("prefect_server")
def test_1200_files_with_a_budget_of_500_are_all_loaded_after_three_runs_none_twice(sqlite_url, tmp_path):
    from flows.ingest import ingest_news

    folder = tmp_path / "texts"
    folder.mkdir()
    for n in range(1200):
        (folder / f"{n:04}.txt").write_text(story(n, words=60))
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - {name: folder, kind: files, path: 'texts/*.txt', max_items: 500}\n")

    runs = [ingest_news(sources_file=str(sources), warehouse_url=sqlite_url) for _ in range(4)]

    assert [r["load_out"] for r in runs] == [500, 500, 200, 0]
    assert [r["deferred"] for r in runs] == [700, 200, 0, 0]
    assert runs[0]["deferred_sources"] == {"folder": 700}
    assert query(sqlite_url, "SELECT count(*), count(DISTINCT url) FROM articles") == [(1200, 1200)]
    assert query(sqlite_url, "SELECT count(*) FROM duplicates") == [(0,)]
    assert query(sqlite_url, "SELECT count(*) FROM quarantine") == [(0,)]
    assert query(sqlite_url, "SELECT deferred FROM pipeline_runs ORDER BY started_at") == [(700,), (200,), (0,), (0,)]
    assert runs[3]["fetch_in"] == 0  # nothing new: not a file read again
