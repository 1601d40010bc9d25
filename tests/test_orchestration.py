"""How the flow spends its resources: cleaning processes started once per run and reused by every batch,
batches streamed as chains of task runs, a bounded number in flight (nothing holds the whole input),
sources fetched host by host, and an unchanged re-run that asks only for what may have changed and
validates nothing."""

from __future__ import annotations

import multiprocessing

import pytest
from prefect_runs import recorded_task_runs
from warehouse_sql import query

from tasks.settings import get_settings
from tasks.sources import parse_sources

pytestmark = pytest.mark.usefixtures("prefect_server")


def task_run_names(flow_run_id: str) -> list[str]:
    return sorted(r.name for r in recorded_task_runs(flow_run_id))


@pytest.fixture
def small_batches(monkeypatch):
    for name, value in {"BATCH_SIZE": "4", "CPU_WORKERS": "2", "CPU_CHUNK_SIZE": "2"}.items():
        monkeypatch.setenv(f"NEWSFLOW_{name}", value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_batches_share_warm_cleaners_and_an_unchanged_rerun_does_no_work_twice(sqlite_url, small_batches,
                                                                               monkeypatch):
    from flows.ingest import ingest_news
    from tasks.cleaners import TimeLimitedCleaner

    started: list[int] = []
    start = TimeLimitedCleaner._start_locked  # where a worker process is started, warm-up or not

    def counting_start(self):
        if self._pool is None:
            started.append(1)
        return start(self)

    monkeypatch.setattr(TimeLimitedCleaner, "_start_locked", counting_start)
    from flows import run_checks

    contexts: list[str] = []

    class CountingValidator(run_checks.Validator):
        def __init__(self, *args, **kwargs):
            contexts.append("built")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(run_checks, "Validator", CountingValidator)
    pages = [f"/story-{n}.html" for n in range(12)]
    server, sources = _gazette(pages, seed=100)
    with server:
        first = ingest_news(sources=sources, warehouse_url=sqlite_url)
        assert first["fetch_out"] == 12 and first["load_out"] == 12
        assert multiprocessing.active_children() == []  # the run's cleaning processes ended with it
        clean_runs = [n for n in task_run_names(first["run_id"]) if n.startswith("clean batch")]
        # 12 pages in batches of 4: 3 batches, each split between the 2 workers ...
        assert len(clean_runs) == 6
        # ... and only 2 cleaning processes for all of them: each chunk borrows a warm one.
        assert len(started) == 2
        # One Great Expectations context for the run, warmed up while the first pages were fetched.
        assert contexts == ["built"]

        started.clear()
        contexts.clear()
        again = ingest_news(sources=sources, warehouse_url=sqlite_url)
    assert again["fetch_in"] == 0 and again["clean_in"] == 0 and again["load_out"] == 0
    # The feed is asked for conditionally (304); the pages it listed, all loaded, are not asked for again.
    assert server.hits["/feed.xml"] == 2 and all(server.hits[p] == 1 for p in pages)
    assert server.hits["/robots.txt"] == 2  # read once per run: the politeness state lasts a run
    fetched = query(sqlite_url, "SELECT url, status_code, not_modified FROM fetches "
                                f"WHERE run_id = '{again['run_id']}'")
    assert [(url, status, bool(nm)) for url, status, nm in fetched if not url.endswith("robots.txt")] == [
        (server.url("/feed.xml"), 304, True)]
    # Nothing to clean, check or load: no task run for it, no cleaning process, no validation.
    assert task_run_names(again["run_id"]) == ["fetch gazette", "record fetch gazette"]
    assert started == [] and contexts == []
    assert query(sqlite_url, f"SELECT count(*) FROM dq_results WHERE run_id = '{again['run_id']}'") == [(0,)]


def test_at_most_k_batches_are_in_flight_while_later_ones_arrive(sqlite_url, small_batches, monkeypatch):
    """Batches are submitted as they arrive, each a chain of task runs; the flow takes the next batch from
    its input (fetching it) while up to `batches_in_flight` are being cleaned, checked and loaded, and
    waits for one to finish only then: never more in flight, and nothing waits for the whole input."""
    from prefect import flow

    from flows import batches
    from flows.ledger import Ledger
    from flows.pipeline import PIPELINE, stage_names
    from flows.run_checks import RunChecks
    from tasks.records import Document
    from tasks.warehouse import open_warehouse, start_run

    monkeypatch.setenv("NEWSFLOW_BATCH_SIZE", "2")
    monkeypatch.setenv("NEWSFLOW_BATCHES_IN_FLIGHT", "2")
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"warehouse_url": sqlite_url})
    start_run(open_warehouse(sqlite_url), "k-run")
    settled: list[str] = []
    settle = batches.settle
    monkeypatch.setattr(batches, "settle", lambda batch, *rest: (settle(batch, *rest), settled.append(batch.label)))
    in_flight_when_pulled: list[int] = []

    def arriving():
        for number in range(6):
            in_flight_when_pulled.append(number - len(settled))  # submitted, not settled
            yield batches.Arrival([Document(source="s", url=f"http://example.org/{number}-{n}",
                                            html="<p>too short</p>") for n in range(2)])

    @flow
    def run_batches() -> Ledger:
        checks, ledger = RunChecks(settings, "k-run"), Ledger(stage_names(PIPELINE))
        try:
            batches.process_documents(arriving(), checks, ledger)
        finally:
            checks.close()
        return ledger

    ledger = run_batches()
    assert settled == [f"batch {n}" for n in range(1, 7)]  # one after another, each once
    assert in_flight_when_pulled[:3] == [0, 1, 2]  # the third batch is fetched while two are in flight ...
    assert max(in_flight_when_pulled) == 2  # ... and never more
    assert ledger.counts["clean"]["in"] == 12 and ledger.counts["clean"]["quarantined"] == 12


def test_sources_are_fetched_host_by_host_in_turn():
    from flows.scale import interleave_sources

    specs = parse_sources([
        {"name": "a1", "kind": "rss", "url": "https://a.example/feed-1.xml"},
        {"name": "a2", "kind": "rss", "url": "https://a.example/feed-2.xml"},
        {"name": "a3", "kind": "sitemap", "url": "https://a.example/sitemap.xml"},
        {"name": "b1", "kind": "urls", "urls": ["https://b.example/1.html", "https://a.example/2.html"]},
        {"name": "c1", "kind": "rss", "url": "https://c.example/feed.xml"},
        {"name": "f", "kind": "files", "path": "/nonexistent/*.txt"},
    ])
    assert [s.name for s in interleave_sources(specs)] == ["a1", "b1", "c1", "f", "a2", "a3"]


def _gazette(pages: list[str], seed: int = 300):
    """A local site whose feed lists `pages` (with an ETag, 304 when sent back), and its source entry."""
    from crawl_server import CrawlServer, Reply, article_html, html

    server = CrawlServer({path: html(article_html(seed + n)) for n, path in enumerate(pages)})

    def feed(number: int, headers: dict[str, str]) -> Reply:
        if headers.get("if-none-match") == '"f1"':
            return Reply(304, b"", {"ETag": '"f1"'})
        items = "".join(f"<item><title>Story {n}</title><link>{server.url(p)}</link></item>"
                        for n, p in enumerate(pages))
        return Reply(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}'
                          "</channel></rss>".encode(), {"Content-Type": "application/rss+xml", "ETag": '"f1"'})

    server.routes["/feed.xml"] = feed
    return server, [{"name": "gazette", "kind": "rss", "url": server.url("/feed.xml"), "allow_private_network": True}]


def test_a_long_feed_is_fetched_in_parts_and_its_etag_kept_once_all_are_in(sqlite_url, small_batches, monkeypatch):
    from flows.ingest import ingest_news

    monkeypatch.setenv("NEWSFLOW_FETCH_TASK_PAGES", "5")
    get_settings.cache_clear()
    pages = [f"/long-{n}.html" for n in range(12)]
    server, sources = _gazette(pages)
    with server:
        first = ingest_news(sources=sources, warehouse_url=sqlite_url)
        assert first["fetch_in"] == 12 and first["load_out"] == 12
        # The listing with its first 5 pages, then two more task runs: 5 and 2 pages.
        assert [n for n in task_run_names(first["run_id"]) if n.startswith("fetch ")] == [
            "fetch gazette", "fetch gazette part 2", "fetch gazette part 3"]
        feed_url = server.url("/feed.xml")
        assert query(sqlite_url, f"SELECT etag FROM http_cache WHERE url = '{feed_url}'") == [('"f1"',)]
        again = ingest_news(sources=sources, warehouse_url=sqlite_url)
    assert again["fetch_in"] == 0 and again["load_out"] == 0
    assert server.hits["/feed.xml"] == 2 and all(server.hits[p] == 1 for p in pages)
    assert server.hits["/robots.txt"] == 2  # read once per run: the politeness state lasts a run


def test_pages_in_flight_are_bounded_by_task_runs_not_by_sources(small_batches, monkeypatch):
    """A consumer that stops taking outcomes leaves at most `fetch_tasks_in_flight` parts fetched ahead,
    not a whole source: what bounds the flow's memory on sources with thousands of new pages."""
    import time

    from prefect import flow

    from flows.fetching import fetch_outcomes

    for name, value in {"FETCH_TASK_PAGES": "3", "FETCH_TASKS_IN_FLIGHT": "2", "HOST_DELAY_SECONDS": "0"}.items():
        monkeypatch.setenv(f"NEWSFLOW_{name}", value)
    get_settings.cache_clear()
    pages = [f"/many-{n}.html" for n in range(20)]
    server, sources = _gazette(pages)

    @flow
    def take_slowly() -> tuple[int, int, list[int]]:
        outcomes = fetch_outcomes(parse_sources(sources), get_settings())
        first = next(outcomes)
        time.sleep(2)  # the parts in flight finish; nothing more may start until one is taken
        ahead = sum(server.hits[p] for p in pages)
        return len(first.documents), ahead, [len(o.documents) for o in outcomes]

    with server:
        first, ahead, rest = take_slowly()
    assert first == 3
    assert ahead == 3 + 2 * 3  # the first part taken, two parts of 3 in flight: not the 20 pages
    assert sum(rest) == 17 and max(rest) <= 3


ARENAS_SCRIPT = """
import ctypes, sys, threading
import flows  # caps the arenas, as any flow or the command line does on import
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    pages = [bytes(110_000) for _ in range(30)]
    small = [bytearray(1000) for _ in range(5000)]
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
ctypes.CDLL("libc.so.6").malloc_stats()
"""


MMAP_SCRIPT = """
import ctypes
import flows  # tunes malloc, as any flow or the command line does on import
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
pages = [bytes(110_000) for _ in range(200)]
print(libc.mallinfo2().hblkhd >> 20)
"""


@pytest.mark.parametrize(("setting", "mapped"), [(None, True), ("0", False)])
def test_the_flows_process_maps_page_sized_blocks_on_their_own(setting, mapped):
    """200 blocks of a page's size (22 MB): mapped on their own once the flows are imported (given back to
    the system when freed), from the arenas' heaps with glibc's default threshold (128 KB)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NEWSFLOW_MALLOC_MMAP_THRESHOLD"}
    if setting is not None:
        env["NEWSFLOW_MALLOC_MMAP_THRESHOLD"] = setting
    done = subprocess.run([sys.executable, "-c", MMAP_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    mapped_mb = int(done.stdout.split()[-1])
    assert (mapped_mb >= 15) if mapped else (mapped_mb < 5)


@pytest.mark.parametrize(("setting", "capped"), [(None, True), ("0", False), ("two", True)])
def test_the_flows_process_keeps_to_two_malloc_arenas(setting, capped):
    """Eight threads allocating at once: two glibc arenas once the flows are imported (each arena keeps what
    is freed in it), one per thread with the cap turned off. A value that is no number does not break the
    import: the default holds, and the settings report the value when they are built."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NEWSFLOW_MALLOC_ARENA_MAX"}
    if setting is not None:
        env["NEWSFLOW_MALLOC_ARENA_MAX"] = setting
    done = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    arenas = [line for line in done.stderr.splitlines() if line.startswith("Arena ")]
    assert done.returncode == 0, done.stderr
    assert (len(arenas) <= 2) if capped else (len(arenas) > 2)
    if setting == "two":
        from pydantic import ValidationError

        from tasks.settings import Settings

        with pytest.raises(ValidationError, match="malloc_arena_max"):
            Settings(malloc_arena_max=setting)


def test_over_the_byte_budget_one_fetch_task_at_a_time(small_batches, monkeypatch):
    """While the pages the run holds are over NEWSFLOW_MAX_BYTES_IN_FLIGHT, one fetch task runs at a time
    (never none: the batches holding them must still fill up and move on)."""
    import time

    from prefect import flow

    from flows.fetching import fetch_outcomes

    for name, value in {"FETCH_TASK_PAGES": "3", "FETCH_TASKS_IN_FLIGHT": "4", "HOST_DELAY_SECONDS": "0"}.items():
        monkeypatch.setenv(f"NEWSFLOW_{name}", value)
    get_settings.cache_clear()
    pages = [f"/many-{n}.html" for n in range(20)]
    server, sources = _gazette(pages)
    room = [True]

    @flow
    def take_over_budget() -> tuple[int, int, int]:
        outcomes = fetch_outcomes(parse_sources(sources), get_settings(), room=lambda wait: room[0])
        next(outcomes)
        room[0] = False  # the budget is spent from here on
        next(outcomes)
        time.sleep(2)  # the parts in flight finish; none starts while they wait to be taken
        ahead = sum(server.hits[p] for p in pages)
        rest = [len(o.documents) for o in outcomes]
        return ahead, sum(rest), max(rest)

    with server:
        ahead, rest, largest = take_over_budget()
    # The listing's part, then 4 parts started while there was room; taking one started no other (with room,
    # a fifth would have started): 15 pages, not 18.
    assert ahead == 3 + 4 * 3
    assert rest + 6 == 20 and largest <= 3


@pytest.mark.parametrize("tasks", [1, 2])
def test_over_the_byte_budget_fetching_waits_for_a_clean_check(sqlite_url, small_batches, monkeypatch, tasks):
    """With a budget smaller than any page, a fetch task starts only once the clean checks have let go of
    the pages held: the ledger never holds more than the budget and the fetch tasks in flight when it was
    last within it (1 or 2 tasks of 3 pages here, where batches of 4 with 3 batches in flight would hold 12
    or more), each page larger than the budget still goes through, and every page is loaded."""
    import flows.ingest
    from flows.ledger import Ledger, _size

    for name, value in {"FETCH_TASK_PAGES": "3", "FETCH_TASKS_IN_FLIGHT": str(tasks), "HOST_DELAY_SECONDS": "0",
                        "MAX_BYTES_IN_FLIGHT": "1"}.items():
        monkeypatch.setenv(f"NEWSFLOW_{name}", value)
    get_settings.cache_clear()
    ledgers, taken = [], []  # the run's ledger; the bytes of each fetch task's pages, as it holds them

    class Counted(Ledger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            ledgers.append(self)

        def hold(self, documents):
            documents = list(documents)
            taken.append(sum(_size(d) for d in documents))
            super().hold(documents)

    monkeypatch.setattr(flows.ingest, "Ledger", Counted)
    pages = [f"/budget-{n}.html" for n in range(20)]
    server, sources = _gazette(pages)
    with server:
        result = flows.ingest.ingest_news(sources=sources, warehouse_url=sqlite_url)
    assert result["fetch_in"] == 20 and result["load_out"] == 20
    assert query(sqlite_url, "SELECT count(*) FROM articles") == [(20,)]
    (ledger,) = ledgers
    assert ledger.bytes_held == 0 and min(t for t in taken if t) > 1  # every page over the budget
    assert 0 < ledger.bytes_peak <= 1 + tasks * max(taken)


def test_the_ledger_counts_the_bytes_it_holds():
    from flows.ledger import Ledger
    from tasks.records import Document

    ledger = Ledger(["fetch", "clean", "dedupe", "load"])
    pages = [Document("s", f"https://s.example/{n}", html="x" * 1000) for n in range(3)]
    ledger.hold(pages)
    ledger.hold(pages[:1])  # held once
    assert ledger.bytes_held == 3000
    ledger.release(pages[:2])
    ledger.release(pages[:1])  # released once
    assert ledger.bytes_held == 1000 and ledger.documents == pages[2:]


def test_a_page_sent_to_be_cleaned_is_not_kept_twice():
    """Pickling a str leaves its UTF-8 form cached on it (as large as the page) for as long as it lives; a
    document sent to a cleaning process is pickled with its bodies as bytes, and comes back the same."""
    import pickle
    import sys

    from tasks.records import Document

    html, text = "<p>Caf\u00e9 \u00a9 2026</p>" + "x" * 50_000, "lone \ud800 surrogate"
    page = Document("s", "https://s.example/1", html=html, text=text, status_code=200, hints={"title": "T"})
    size = sys.getsizeof(page.html)
    copy = pickle.loads(pickle.dumps(page))
    assert sys.getsizeof(page.html) == size  # no second copy of the page hangs off it
    assert copy == page and copy.html == html and copy.text == text
    bare = Document("s", "https://s.example/2")
    assert pickle.loads(pickle.dumps(bare)) == bare


def test_a_batch_is_a_chain_of_task_runs_the_ui_can_show(sqlite_url, small_batches):
    """Each batch's task runs name their upstream runs (Prefect's task inputs, drawn as the run's graph):
    the clean check waits for the batch's clean chunks, dedupe for the clean check and for the previous
    batch's load (one batch after another), the dedupe check for dedupe, load for the dedupe check and
    the dedupe outcome it loads."""

    from flows.ingest import ingest_news

    pages = [f"/story-{n}.html" for n in range(8)]
    server, sources = _gazette(pages, seed=300)
    with server:
        result = ingest_news(sources=sources, warehouse_url=sqlite_url)
    assert result["load_out"] == 8
    runs = recorded_task_runs(result["run_id"])
    by_id = {r.id: r.name for r in runs}
    by_name = {r.name: r for r in runs}

    def upstream(name: str) -> set[str]:
        inputs = by_name[name].task_inputs
        return {by_id[i.id] for values in inputs.values() for i in values if getattr(i, "id", None) in by_id}

    assert {"clean batch 1 chunk 1", "clean batch 1 chunk 2", "check fetch 1 sources"} <= upstream(
        "check clean batch 1")
    assert "check clean batch 1" in upstream("check clean batch 2")  # each stage's checks in batch order
    assert "check clean batch 1" in upstream("dedupe batch 1")
    assert {"check clean batch 2", "load batch 1"} <= upstream("dedupe batch 2")
    assert "dedupe batch 2" in upstream("check dedupe batch 2")
    assert {"check dedupe batch 2", "dedupe batch 2"} <= upstream("load batch 2")
