"""The whole flow under a temporary Prefect server, against the sample site over real HTTP."""

from __future__ import annotations

import pytest
from warehouse_sql import query

from tasks.settings import PROJECT_ROOT

SOURCES_FILE = str(PROJECT_ROOT / "samples" / "sources.yaml")
STABLE_COLUMNS = ("id, url, canonical_url, source, title, authors, published_at, language, text, word_count, "
                  "content_hash, first_seen_at")

pytestmark = pytest.mark.usefixtures("prefect_server")




def test_sample_site_end_to_end(warehouse_url, sample_site):
    from flows.ingest import ingest_news

    summary = ingest_news(sources_file=SOURCES_FILE, warehouse_url=warehouse_url)

    titles = {r[0] for r in query(warehouse_url, "SELECT title FROM articles")}
    # Twelve site articles (the wire copy and the partner copy dropped), three texts, four JSONL records.
    assert len(titles) == 19
    assert "Council approves £48m budget after late-night vote" in titles
    assert "Island ferry link to start in March after decade-long campaign" not in titles

    duplicates = query(warehouse_url, "SELECT d.url, d.kind, a.url FROM duplicates d "
                                     "JOIN articles a ON a.id = d.article_id")
    dropped = {url.removeprefix(sample_site): kind for url, kind, _ in duplicates}
    assert "/partners/island-ferry-link.html" in dropped
    harbour_copies = {"/world/harbour-storm-wire.html", "/articles/harbour-storm-damage.html"} & set(dropped)
    # Two templates, one story: extraction gives identical text, so the copy is an exact duplicate.
    assert [dropped[url] for url in harbour_copies] == ["exact"]
    assert len(duplicates) == 2

    fetches = {r[0].removeprefix(sample_site): (r[1], r[2])
               for r in query(warehouse_url, "SELECT url, status_code, error FROM fetches")}
    assert fetches["/feed.xml"] == (200, None)
    assert fetches["/articles/this-page-does-not-exist.html"][0] == 404
    assert "404" in fetches["/articles/this-page-does-not-exist.html"][1]
    assert fetches["/articles/council-budget-vote.html"] == (200, None)

    quarantine = {(r[0], r[1].removeprefix(sample_site)): r[2]
                  for r in query(warehouse_url, "SELECT stage, url, reasons FROM quarantine")}
    assert ("fetch", "/articles/this-page-does-not-exist.html") in quarantine
    assert ("clean", "/articles/broken-page.html") in quarantine
    assert ("clean", "/articles/subscribe-to-read.html") in quarantine
    bad_jsonl = [key for key in quarantine if key[1].endswith(("bad.jsonl#L2", "bad.jsonl#L3"))]
    assert len(bad_jsonl) == 2

    dq = query(warehouse_url, "SELECT stage, suite, expectation, success FROM dq_results")
    assert {r[1] for r in dq} == {"fetched", "cleaned", "deduplicated", "loaded"}

    run = query(warehouse_url, "SELECT status, fetch_in, load_out, quarantined, duplicates FROM pipeline_runs")
    assert run == [("completed", summary["fetch_in"], 19, summary["quarantined"], 2)]

    # A second run over the same sources leaves the articles exactly as they were.
    before = query(warehouse_url, f"SELECT {STABLE_COLUMNS} FROM articles ORDER BY id")
    ingest_news(sources_file=SOURCES_FILE, warehouse_url=warehouse_url)
    after = query(warehouse_url, f"SELECT {STABLE_COLUMNS} FROM articles ORDER BY id")
    assert after == before
    assert len(query(warehouse_url, "SELECT url FROM duplicates")) == 2
    assert query(warehouse_url, "SELECT count(*) FROM pipeline_runs WHERE status = 'completed'") == [(2,)]


def test_full_refresh_fetches_known_pages_again(sqlite_url, sample_site):
    from flows.ingest import ingest_news

    article_fetches = ("SELECT count(*) FROM fetches f JOIN pipeline_runs r ON r.run_id = f.run_id "
                       "WHERE f.url LIKE '%/articles/%' AND f.status_code = 200 AND r.run_id = '{}'")
    first = ingest_news(sources_file=SOURCES_FILE, warehouse_url=sqlite_url)
    incremental = ingest_news(sources_file=SOURCES_FILE, warehouse_url=sqlite_url)
    refresh = ingest_news(sources_file=SOURCES_FILE, warehouse_url=sqlite_url, full_refresh=True)

    fetched_first = query(sqlite_url, article_fetches.format(first["run_id"]))[0][0]
    assert fetched_first >= 12
    # An incremental run skips pages already loaded; a full refresh asks for every one of them again.
    assert query(sqlite_url, article_fetches.format(incremental["run_id"]))[0][0] < fetched_first
    assert query(sqlite_url, article_fetches.format(refresh["run_id"]))[0][0] == fetched_first
    assert query(sqlite_url, "SELECT count(*) FROM articles") == [(19,)]
