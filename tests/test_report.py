"""The run summary a person reads in the Prefect UI (run-summary artifact) and in a terminal: a stage table
that adds up, the failed expectations with an offending value, the stories, the link to the Data Docs."""

from __future__ import annotations

import os
import re
import shutil

from crawl_server import CrawlServer, Reply, article_html, html
from warehouse_sql import query

from tasks.report import STAGE_COLUMNS, failed_expectations, render_markdown, render_stage_table, stage_rows
from tasks.settings import PROJECT_ROOT, get_settings

COUNTS = {"fetch_in": 24, "fetch_out": 21, "clean_in": 21, "clean_out": 19, "dedupe_in": 19, "dedupe_out": 17,
          "validate_in": 17, "validate_out": 16, "load_in": 16, "load_out": 15}


def adds_up(row: dict) -> bool:
    return row["in"] == row["passed"] + row["quarantined"] + row["duplicates"] + row["unchanged"]


def test_every_stage_row_adds_up_and_the_fetch_row_counts_what_it_tried():
    # 21 documents passed, 3 quarantined (2 failed fetches, 1 failed check), 2 feeds unchanged (304).
    rows = {r["stage"]: r for r in stage_rows(COUNTS, {"fetch": 3, "clean": 2, "dedupe": 1}, 2,
                                              {"new": 12, "changed": 1})}
    assert all(adds_up(row) for row in rows.values()), rows
    assert (rows["fetch"]["in"], rows["fetch"]["passed"], rows["fetch"]["quarantined"],
            rows["fetch"]["unchanged"]) == (26, 21, 3, 2)
    assert rows["dedupe"]["duplicates"] == 2
    assert rows["validate"]["quarantined"] == 1  # the deduplicated checks' rows name the dedupe stage
    # 16 articles: 12 new and 1 changed written, 2 unchanged, 1 a copy another run had just loaded.
    assert (rows["load"]["passed"], rows["load"]["unchanged"], rows["load"]["duplicates"]) == (13, 2, 1)


def test_an_unchanged_rerun_does_not_read_as_a_reload():
    rerun = {**{k: 0 for k in COUNTS}, "fetch_out": 2, "clean_in": 2, "clean_out": 2, "dedupe_in": 2,
             "dedupe_out": 2, "validate_in": 2, "validate_out": 2, "load_in": 2, "load_out": 2}
    load = stage_rows(rerun, {}, 0, {"new": 0, "changed": 0})[-1]
    assert (load["in"], load["passed"], load["unchanged"]) == (2, 0, 2)
    table = render_stage_table(stage_rows(rerun, {}, 0, {"new": 0, "changed": 0}))
    assert table.splitlines()[0].split() == ["stage", *STAGE_COLUMNS]
    assert table.splitlines()[-1].split() == ["load", "2", "0", "0", "0", "2"]


def test_a_miscount_shows_instead_of_being_hidden():
    rows = stage_rows({**COUNTS, "clean_in": 25}, {"fetch": 3, "clean": 2, "dedupe": 1}, 2, {"new": 13})
    assert not adds_up(next(r for r in rows if r["stage"] == "clean"))


def test_failed_expectations_merge_with_the_first_offending_value_critical_first():
    rows = [("clean", "warning", "expect_not_null(published_at)", 3, "[NaT, NaT, NaT]"),
            ("clean", "critical", "expect_between(word_count, min_value=40)", 1, "[12]"),
            ("clean", "critical", "expect_between(word_count, min_value=40)", 2, "[7, 9]"),
            ("fetch", "critical", "expect_status_2xx", 1, None)]
    merged = failed_expectations(rows)
    assert [(e["severity"], e["expectation"]) for e in merged] == [
        ("critical", "expect_between(word_count, min_value=40)"), ("critical", "expect_status_2xx"),
        ("warning", "expect_not_null(published_at)")]
    assert (merged[0]["times"], merged[0]["unexpected"], merged[0]["example"]) == (2, 3, "[12]")
    assert merged[1]["example"] is None
    long = failed_expectations([("clean", "warning", "x", 1, "v" * 500)])[0]["example"]
    assert len(long) == 100 and long.endswith("…")


def markdown_rows(markdown: str, header: str) -> list[list[str]]:
    """The rows of the markdown table whose header starts with `header`."""
    block = markdown.split(f"| {header}", 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:]]


def test_the_run_summary_of_real_runs_adds_up_names_stories_and_links_the_data_docs(
        prefect_server, tmp_path, monkeypatch):
    """Two runs of the flow on the sample texts (the ferry strike told twice, by two writers: one story)
    and a text with markup left in (a critical failure, quarantined): the run-summary artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.ingest import ingest_news

    monkeypatch.setenv("NEWSFLOW_DATA_DOCS_URL", "http://127.0.0.1:4280")
    monkeypatch.setenv("NEWSFLOW_DATA_DOCS_DIR", str(tmp_path / "docs"))
    get_settings.cache_clear()
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in ("ferry-strike.txt", "ferry-strike-rewrite.txt", "council-budget.txt"):
        shutil.copy(PROJECT_ROOT / "samples" / "texts" / name, inbox / name)
    story = " ".join(f"The ferry service resumed on route {n} after the storm passed." for n in range(8))
    (inbox / "markup.txt").write_text(f"Harbour news\n\n<div class=\"promo\">{story}</div>\n", encoding="utf-8")
    sources = [{"name": "inbox", "kind": "files", "path": str(inbox / "*.txt")}]

    def summary_of_a_run() -> str:
        state = ingest_news(sources=sources, warehouse_url=f"sqlite:///{tmp_path / 'w.db'}", return_state=True)
        assert state.is_completed()
        with get_client(sync_client=True) as client:
            (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
                key=ArtifactFilterKey(any_=["run-summary"])))
        return artifact.data, state.result()["run_id"]

    try:
        first, run_id = summary_of_a_run()
        for path in inbox.iterdir():  # touched, not changed: read again, and found unchanged
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        second, _ = summary_of_a_run()
    finally:
        get_settings.cache_clear()

    for markdown in (first, second):
        rows = {r[0]: [int(v) for v in r[1:]] for r in markdown_rows(markdown, "stage | in | passed")}
        assert set(rows) == {"fetch", "clean", "dedupe", "load"}
        for stage, (taken_in, *parts) in rows.items():
            assert taken_in == sum(parts), f"{stage}: {rows[stage]} does not add up"
    first_rows = {r[0]: r[1:] for r in markdown_rows(first, "stage | in | passed")}
    assert first_rows["clean"] == ["4", "3", "1", "0", "0"]  # the text with markup held back
    assert first_rows["load"] == ["3", "3", "0", "0", "0"]
    second_rows = {r[0]: r[1:] for r in markdown_rows(second, "stage | in | passed")}
    assert second_rows["fetch"] == ["4", "1", "0", "0", "3"]  # the three loaded texts read again the same
    assert second_rows["load"] == ["0", "0", "0", "0", "0"]  # nothing reloaded

    assert "New stories: 2 · new articles joining an earlier story: 0" in first
    largest = markdown_rows(first, "largest stories of this run")
    assert largest[0][1:] == ["2", "1"] and "ferr" in largest[0][0].lower()  # two articles, one outlet
    assert "New stories: 0" in second

    failed = {r[2]: r for r in markdown_rows(first, "stage | severity | expectation")}
    markup = next(r for name, r in failed.items() if "has_markup" in name)
    # Severity, and the offending value: the leftover markup found, and why it is markup.
    assert markup[1] == "critical" and '<div class="promo">: a tag with attribute values' in markup[5]
    assert f"[Data Docs of this run](http://127.0.0.1:4280/{run_id}/index.html)" in first
    assert re.search(r"^# Run .*: completed", first, re.M)


def test_render_without_stories_or_docs_stays_short():
    summary = {"run_id": "r", "status": "completed", "message": None, "stages": stage_rows({}, {}, 0, {}),
               "quarantined": 0, "duplicates": {}, "stories": {"new": 0, "joined": 0, "largest": []},
               "top_reasons": [], "worst_sources": [], "expectations_checked": 0, "failed_expectations": []}
    markdown = render_markdown(summary)
    assert "Data Docs" not in markdown and "largest" not in markdown and "New stories: 0" in markdown


def _run_artifacts(flow_run_id: str) -> dict[str, str]:
    """The artifacts of a flow run, by key (markdown and table data as text)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: str(a.data) for a in artifacts if a.key}


def _cli_run(sources_file, warehouse: str, capsys) -> tuple[str, dict[str, list[int]]]:
    """`newsflow ingest --sources`: its run id and its stage table, as printed."""
    from flows.cli import EXIT_OK, main

    assert main(["ingest", "--sources", str(sources_file), "--warehouse", warehouse]) == EXIT_OK
    out = capsys.readouterr().out.split("\nrun ", 1)[1].splitlines()
    assert out[1].split() == ["stage", *STAGE_COLUMNS]
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in out[2:] if line.split()
            and line.split()[0] in ("fetch", "clean", "dedupe", "load")}
    return out[0].strip(), rows


def _artifact_rows(markdown: str) -> dict[str, list[int]]:
    return {r[0]: [int(v) for v in r[1:]] for r in markdown_rows(markdown, "stage | in | passed")}


def test_each_stage_row_adds_up_over_real_runs_and_an_unchanged_rerun_goes_no_further_than_fetch(
        prefect_server, tmp_path, capsys):
    """Real runs of `newsflow ingest` on pages served over HTTP (re-fetched every run, answered 200 with no
    validators) and local files: a first run; a re-run that finds everything the same (the pages' bodies,
    the touched files), which must not read as a reload anywhere; a run with one changed page and one
    broken one. The stage table of the terminal and of the run-summary artifact add up on every row."""
    changed = {"now": False}
    server = CrawlServer({
        "/a.html": html(article_html(1)),
        "/b.html": lambda n, h: html(article_html(202 if changed["now"] else 2)),
        "/c.html": html(article_html(3)),
        "/broken.html": Reply(404, b"gone", {"Content-Type": "text/plain"}),
    })
    folder = tmp_path / "texts"
    folder.mkdir()
    for name in ("ferry-strike.txt", "council-budget.txt"):
        shutil.copy(PROJECT_ROOT / "samples" / "texts" / name, folder / name)
    warehouse = f"sqlite:///{tmp_path / 'w.db'}"
    sources = tmp_path / "sources.yaml"

    def write_sources(pages: list[str]) -> None:
        urls = ", ".join(f"'{server.url(p)}'" for p in pages)
        sources.write_text(f"sources:\n  - {{name: site, kind: urls, urls: [{urls}], refresh_interval: 0}}\n"
                           "  - {name: texts, kind: files, path: 'texts/*.txt'}\n", encoding="utf-8")

    def touch_files() -> None:  # read again (their size and time changed), with the same text
        for path in folder.iterdir():
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    runs: list[tuple[str, dict[str, list[int]], dict[str, str]]] = []
    with server:
        write_sources(["/a.html", "/b.html", "/c.html"])
        for step in ("first", "unchanged", "one changed, one broken"):
            if step != "first":
                touch_files()
            if step == "one changed, one broken":
                changed["now"] = True
                write_sources(["/a.html", "/b.html", "/c.html", "/broken.html"])
            run_id, table = _cli_run(sources, warehouse, capsys)
            runs.append((run_id, table, _run_artifacts(run_id)))
        hits = dict(server.hits)
    assert hits["/a.html"] == 3  # fetched every run (refresh_interval 0), answered 200 every time

    for run_id, table, artifacts in runs:
        summary = _artifact_rows(artifacts["run-summary"])
        assert table == summary, f"run {run_id}: the terminal and the artifact disagree"
        for stage, (taken_in, *parts) in table.items():
            assert taken_in == sum(parts), f"run {run_id}, {stage}: {table[stage]} does not add up"

    (first, _, first_artifacts), (again, rerun, rerun_artifacts), (third, last, _) = runs
    #                        in passed quarantined duplicates unchanged
    assert runs[0][1]["fetch"] == [5, 5, 0, 0, 0]
    assert runs[0][1]["load"] == [5, 5, 0, 0, 0]
    assert "quality-cleaned" in first_artifacts
    # Everything the same: unchanged at the fetch stage, nothing cleaned, checked or loaded again.
    assert rerun["fetch"] == [5, 0, 0, 0, 5]
    assert all(rerun[stage] == [0, 0, 0, 0, 0] for stage in ("clean", "dedupe", "load"))
    assert not [key for key in rerun_artifacts if key.startswith("quality-")]  # nothing was judged again
    assert query(warehouse, f"SELECT count(*) FROM run_writes WHERE run_id = '{again}'") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM articles WHERE last_seen_at < "
                            f"(SELECT started_at FROM pipeline_runs WHERE run_id = '{again}')") == [(0,)]
    # One page changed (a new version), one broken (quarantined at fetch), the rest unchanged.
    assert last["fetch"] == [6, 1, 1, 0, 4]
    assert last["clean"] == [1, 1, 0, 0, 0] and last["load"] == [1, 1, 0, 0, 0]
    assert query(warehouse, "SELECT url, version FROM articles WHERE version > 1") == [(server.url("/b.html"), 2)]
    assert query(warehouse, f"SELECT stage, url FROM quarantine WHERE run_id = '{third}'") == [
        ("fetch", server.url("/broken.html"))]
    assert first != again != third
