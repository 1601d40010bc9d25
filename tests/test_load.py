"""Loading into the warehouse: versions of changed articles, atomic batches, concurrent loaders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warehouse_sql import query

from tasks import migrate
from tasks.dedupe import fingerprint
from tasks.load import load_batch
from tasks.records import Article, Duplicate
from tasks.settings import Settings
from tasks.textnorm import content_hash
from tasks.warehouse import make_engine, open_warehouse

TESTS_DIR = Path(__file__).resolve().parent


def article(n: int, body: str | None = None, url: str | None = None) -> Article:
    body = body or f"Story number {n}. " + " ".join(f"word{n}x{i}" for i in range(60))
    canonical = url or f"https://news.example/{n}"
    return Article(source="wire", url=canonical, canonical_url=canonical, title=f"Title {n}", text=body,
                   content_hash=content_hash(body))


def load(url: str, articles: list[Article], duplicates: list[Duplicate] = (), run_id: str = "run-1"):
    settings = Settings()
    prints = {a.canonical_url: fingerprint(a.text, settings) for a in articles}
    return load_batch(make_engine(url), run_id, articles, prints, list(duplicates))




def test_changed_text_keeps_the_id_and_stores_the_previous_text(warehouse_url):
    migrate.upgrade(warehouse_url)
    first = article(1, "The council approved the budget on Monday. " * 10)
    load(warehouse_url, [first])
    (article_id,) = query(warehouse_url, "SELECT id FROM articles")[0]

    load(warehouse_url, [article(1, first.text)], run_id="run-2")  # fetched again, unchanged
    assert query(warehouse_url, "SELECT count(*) FROM article_versions") == [(0,)]

    corrected = article(1, "The council approved the budget on Tuesday. " * 10)
    outcome = load(warehouse_url, [corrected], run_id="run-3")
    assert outcome.stats.counts["versions"] == 1
    updated = article(1, "The council approved the budget on Tuesday after a late vote. " * 10)
    load(warehouse_url, [updated], run_id="run-4")

    assert query(warehouse_url, "SELECT id, version, text FROM articles") == [(article_id, 3, updated.text)]
    assert query(warehouse_url, "SELECT article_id, version, text, content_hash, replaced_by_run_id "
                                "FROM article_versions ORDER BY version") == [
        (article_id, 1, first.text, first.content_hash, "run-3"),
        (article_id, 2, corrected.text, corrected.content_hash, "run-4")]


def test_timestamps_come_back_timezone_aware(warehouse_url):
    migrate.upgrade(warehouse_url)
    load(warehouse_url, [article(1)])
    engine = make_engine(warehouse_url)
    from tasks import schema

    with engine.connect() as conn:
        seen = conn.execute(schema.articles.select()).one().first_seen_at
    engine.dispose()
    assert seen.utcoffset() is not None and seen.utcoffset().total_seconds() == 0


def test_a_copy_loaded_meanwhile_under_another_url_becomes_a_duplicate(warehouse_url):
    migrate.upgrade(warehouse_url)
    original = article(1)
    load(warehouse_url, [original], run_id="run-a")
    # Another run, whose dedupe did not see the original yet, loads the same text under another URL.
    copy = article(1, original.text, url="https://partner.example/copied")
    outcome = load(warehouse_url, [copy, article(2)], run_id="run-b")

    assert outcome.stats.counts["late_duplicates"] == 1
    assert query(warehouse_url, "SELECT canonical_url FROM articles ORDER BY id") == [
        ("https://news.example/1",), ("https://news.example/2",)]
    assert query(warehouse_url, "SELECT d.url, d.kind, a.canonical_url FROM duplicates d "
                                "JOIN articles a ON a.id = d.article_id") == [
        ("https://partner.example/copied", "exact", "https://news.example/1")]


CRASH_IN_THE_MIDDLE = """
import os, sys
sys.path.insert(0, {tests!r})
import tasks.load
from test_load import article, load
real_bulk_insert = tasks.load.bulk_insert

def bulk_insert(conn, table, *args, **kwargs):
    if table.name == "article_band_keys":  # articles and signatures are written: die now
        conn.exec_driver_sql("SELECT 1")
        os._exit(3)
    return real_bulk_insert(conn, table, *args, **kwargs)

tasks.load.bulk_insert = bulk_insert
load({url!r}, [article(n) for n in range(10)])
"""


def test_a_crash_in_the_middle_of_a_batch_leaves_nothing_and_the_rerun_completes(warehouse_url):
    migrate.upgrade(warehouse_url)
    script = CRASH_IN_THE_MIDDLE.format(tests=str(TESTS_DIR), url=warehouse_url)
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 3, crashed.stderr

    assert query(warehouse_url, "SELECT count(*) FROM articles") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM article_signatures") == [(0,)]

    load(warehouse_url, [article(n) for n in range(10)])
    assert query(warehouse_url, "SELECT count(*) FROM articles") == [(10,)]
    assert query(warehouse_url, "SELECT count(DISTINCT article_id) FROM article_band_keys") == [(10,)]


CONCURRENT_LOADER = """
import sys
sys.path.insert(0, {tests!r})
from test_load import article, load
from tasks.records import Duplicate
numbers = {numbers!r}
for start in range(0, len(numbers), 10):
    batch = [article(n) for n in numbers[start:start + 10]]
    copies = [Duplicate(url=f"https://mirror.example/{{a.canonical_url[-3:]}}", source="mirror",
                        kept_url=a.canonical_url, kind="exact") for a in batch]
    load({url!r}, batch, copies, run_id={run!r})
# One new text, each run under its own URL: whichever loads second finds the other's article.
load({url!r}, [article(100, url={copy_url!r})], run_id={run!r})
"""


def test_two_processes_loading_overlapping_articles_store_each_once(warehouse_url):
    open_warehouse(warehouse_url).dispose()
    runs = [("run-a", list(range(0, 60)), "https://copy.example/a"),
            ("run-b", list(range(89, 29, -1)), "https://copy.example/b")]
    processes = [subprocess.Popen(
        [sys.executable, "-c", CONCURRENT_LOADER.format(tests=str(TESTS_DIR), url=warehouse_url, run=run,
                                                        numbers=numbers, copy_url=copy_url)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run, numbers, copy_url in runs]
    outcomes = [(p.wait(timeout=240), p.stderr.read()) for p in processes]
    assert [code for code, _ in outcomes] == [0, 0], outcomes

    assert query(warehouse_url, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [(91, 91)]
    # Every copy recorded once, pointing at the one article: mirrors of all 90, and one of the two copies.
    assert query(warehouse_url, "SELECT count(*) FROM duplicates d JOIN articles a ON a.id = d.article_id "
                                "WHERE d.url LIKE 'https://mirror.example/%'") == [(90,)]
    assert query(warehouse_url, "SELECT d.url, a.canonical_url FROM duplicates d JOIN articles a "
                                "ON a.id = d.article_id WHERE d.url LIKE 'https://copy.example/%'") in (
        [("https://copy.example/a", "https://copy.example/b")],
        [("https://copy.example/b", "https://copy.example/a")],
    )


def test_a_near_copy_loaded_by_another_run_after_the_dedupe_stage_looked_is_caught(warehouse_url):
    """The load checks again only articles newer than what the dedupe stage saw (`seen_up_to`)."""
    import threading

    from tasks.dedupe import deduplicate
    from tasks.warehouse import WarehouseIndex

    open_warehouse(warehouse_url).dispose()
    story = ("The harbour authority said on Monday that the storm had damaged twelve fishing boats and the "
             "old pier, and that repairs would take until the end of the month. ") * 6
    load(warehouse_url, [article(1)], run_id="earlier")  # before either run looked: not checked again
    engine = make_engine(warehouse_url)
    settings = Settings()
    both_looked = threading.Barrier(2, timeout=60)
    results: dict[str, object] = {}

    def run(run_id: str, item: Article) -> None:
        try:
            index = WarehouseIndex(engine)
            seen_up_to = index.newest_id()
            outcome = deduplicate([item], index, settings)
            both_looked.wait()
            results[run_id] = load_batch(engine, run_id, outcome.kept, outcome.fingerprints, outcome.duplicates,
                                         settings, seen_up_to)
        except BaseException as exc:  # reported by the assertion below
            results[run_id] = exc

    threads = [threading.Thread(target=run, args=("run-a", article(2, story, "https://a.example/storm"))),
               threading.Thread(target=run, args=("run-b", article(3, story.replace("Monday", "Tuesday"),
                                                                    "https://b.example/storm")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engine.dispose()
    assert all(not isinstance(r, BaseException) for r in results.values()), results
    assert sorted(r.stats.counts.get("late_duplicates", 0) for r in results.values()) == [0, 1]
    stored = query(warehouse_url, "SELECT canonical_url FROM articles WHERE canonical_url LIKE '%storm'")
    assert query(warehouse_url, "SELECT d.url, d.kind, a.canonical_url FROM duplicates d "
                                "JOIN articles a ON a.id = d.article_id") == [
        (({"https://a.example/storm", "https://b.example/storm"} - {stored[0][0]}).pop(), "near", stored[0][0])]


def test_keys_repeated_in_a_batch_go_in_once(warehouse_url):
    """PostgreSQL refuses a key twice in one INSERT ... ON CONFLICT; SQLite would keep the last silently."""
    migrate.upgrade(warehouse_url)
    first, second = article(1), article(1, "A corrected text of story one. " * 12)
    copy = Duplicate(url="https://mirror.example/1", source="mirror", kept_url=first.canonical_url, kind="exact")
    outcome = load(warehouse_url, [first, article(2), second], [copy, copy])
    assert outcome.stats.counts["out"] == 2
    assert query(warehouse_url, "SELECT canonical_url, text, version FROM articles ORDER BY canonical_url") == [
        ("https://news.example/1", second.text, 1), ("https://news.example/2", article(2).text, 1)]
    assert query(warehouse_url, "SELECT url, article_id FROM duplicates") == [
        ("https://mirror.example/1", outcome.article_ids[first.canonical_url])]
    assert query(warehouse_url, "SELECT count(*) FROM article_signatures") == [(2,)]
