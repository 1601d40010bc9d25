"""`newsflow reprocess --quarantined`: records held back by a stage are released after a fix."""

from __future__ import annotations

import json
import shutil

import pytest
from prefect_runs import recorded_task_runs
from warehouse_sql import query

from flows.cli import EXIT_OK, main
from tasks.settings import PROJECT_ROOT, get_settings


@pytest.fixture
def editable_suites(tmp_path, monkeypatch):
    copy = tmp_path / "expectations"
    shutil.copytree(PROJECT_ROOT / "expectations", copy)
    monkeypatch.setenv("NEWSFLOW_EXPECTATIONS_DIR", str(copy))
    get_settings.cache_clear()
    yield copy
    get_settings.cache_clear()


def set_min_words(suites, minimum: int) -> None:
    path = suites / "cleaned.json"
    suite = json.loads(path.read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "word_count":
            expectation["kwargs"]["min_value"] = minimum
    path.write_text(json.dumps(suite))


@pytest.mark.usefixtures("prefect_server")
def test_quarantined_records_are_released_after_the_suite_is_fixed(sample_site, sqlite_url, editable_suites):
    from flows.ingest import ingest_news

    set_min_words(editable_suites, 300)  # too strict: some real articles are held back
    site = [{"name": "gazette", "kind": "rss", "url": f"{sample_site}/feed.xml", "allow_private_network": True}]
    ingest_news(sources=site, warehouse_url=sqlite_url)
    held = {url for (url,) in query(sqlite_url, "SELECT url FROM quarantine WHERE stage = 'clean' "
                                                "AND reasons LIKE '%word_count%'")}
    loaded_before = query(sqlite_url, "SELECT count(*) FROM articles")[0][0]
    site_pages = {u for u in held if u.startswith(sample_site)}
    assert site_pages, "the strict threshold should hold back some sample pages"
    assert not site_pages & {u for (u,) in query(sqlite_url, "SELECT url FROM articles")}

    set_min_words(editable_suites, 40)  # the fix
    assert main(["reprocess", "--quarantined", "--stage", "clean", "--warehouse", sqlite_url]) == EXIT_OK
    loaded = {u for (u,) in query(sqlite_url, "SELECT url FROM articles")}
    assert site_pages <= loaded  # released through clean -> dedupe -> validate -> load
    assert query(sqlite_url, "SELECT count(*) FROM articles")[0][0] == loaded_before + len(site_pages)
    # Pages that fail for good (the broken page, the paywall stub) stay held back; history is kept.
    still_held = {u for (u,) in query(sqlite_url, "SELECT DISTINCT url FROM quarantine WHERE stage = 'clean'")}
    assert any(u.endswith("broken-page.html") for u in still_held - loaded)
    assert held <= still_held

    # Releasing again finds nothing new to load.
    assert main(["reprocess", "--quarantined", "--warehouse", sqlite_url]) == EXIT_OK
    assert query(sqlite_url, "SELECT count(*) FROM articles")[0][0] == loaded_before + len(site_pages)


@pytest.mark.usefixtures("prefect_server")
def test_reprocess_streams_the_raw_store_a_batch_at_a_time(sample_site, sqlite_url, monkeypatch):
    """Reprocess reads the stored pages a batch at a time and cleans the first batches before it has read the
    last ones: it never holds the raw store in one list."""
    from flows import reprocess
    from flows.ingest import ingest_news

    ingest_news(sources=[{"name": "gazette", "kind": "rss", "url": f"{sample_site}/feed.xml",
                          "allow_private_network": True}], warehouse_url=sqlite_url)
    stored = query(sqlite_url, "SELECT count(DISTINCT url) FROM raw_documents WHERE kind = 'page'")[0][0]
    assert stored >= 6, "the sample site should leave several pages in the raw store"
    pages: list[tuple[int, int]] = []  # (limit asked for, pages read) per read
    read = reprocess.select_raw_page

    def counting_read(*args, **kwargs):
        page = read(*args, **kwargs)
        pages.append((kwargs["limit"], len(page)))
        return page

    monkeypatch.setattr(reprocess, "select_raw_page", counting_read)
    monkeypatch.setenv("NEWSFLOW_BATCH_SIZE", "2")
    get_settings.cache_clear()
    try:
        summary = reprocess.reprocess_news(warehouse_url=sqlite_url)
    finally:
        get_settings.cache_clear()
    assert all(limit == 2 and 0 <= n <= 2 for limit, n in pages)
    assert sum(n for _, n in pages) == stored and len(pages) == -(-stored // 2) + 1  # then an empty read: the end
    assert summary["fetch_in"] == stored
    runs = recorded_task_runs(summary["run_id"])
    reads = sorted(r.start_time for r in runs if r.name.startswith("read raw store"))
    cleans = sorted(r.start_time for r in runs if r.name.startswith("clean batch"))
    assert len(reads) == len(pages) and len(cleans) == -(-summary["fetch_out"] // 2)
    assert cleans[0] < reads[-1]  # the first batch was being cleaned before the last pages were read
