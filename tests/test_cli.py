"""`newsflow ingest`: what it loads from text files, its summary, and its exit codes."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from warehouse_sql import query

from flows.cli import (
    EXIT_OK,
    EXIT_QUALITY,
    EXIT_SOURCE_EMPTY,
    EXIT_SOURCES,
    EXIT_STATUSES,
    EXIT_USAGE,
    EXIT_WAREHOUSE,
    build_parser,
    main,
)
from tasks.settings import PROJECT_ROOT
from tasks.textnorm import split_paragraphs

NO_TITLE = (
    "In a rare show of unity, the three harbour boards agreed on Monday to pool their dredging budgets, "
    "a move that officials said would save almost a million pounds over five years and keep the channel "
    "open to the larger ferries that now serve the islands.\n\n"
    "The agreement still needs the approval of the regional transport authority, which meets next month. "
    "Board members said they expected no objections, since the plan had been drawn up with the "
    "authority's own engineers during a year of talks.\n"
)




@pytest.mark.usefixtures("prefect_server")
def test_text_files_are_loaded_once_with_titles_and_paragraphs_once(tmp_path, sqlite_url, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(PROJECT_ROOT / "samples" / "texts" / "council-budget.txt", inbox / "council.txt")
    (inbox / "untitled.txt").write_text(NO_TITLE, encoding="utf-8")

    assert main(["ingest", "--files", str(inbox / "*.txt"), "--warehouse", sqlite_url]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fetch" in out and "load" in out

    articles = dict(query(sqlite_url, "SELECT url, title FROM articles"))
    assert len(articles) == 2
    titled = next(url for url in articles if url.endswith("council.txt"))
    assert articles[titled] == "Council signs £31m bin contract with food-waste rounds"
    (body,) = query(sqlite_url, f"SELECT text FROM articles WHERE url = '{titled}'")[0]
    paragraphs = split_paragraphs(body)
    assert len(paragraphs) == len(set(paragraphs)) == 5  # the two repeated paragraphs appear once
    assert articles[titled] not in body  # the repeated title line is gone from the body

    untitled = next(url for url in articles if url.endswith("untitled.txt"))
    assert articles[untitled] is None  # loaded without a title, not quarantined...
    warnings = query(sqlite_url, "SELECT severity, unexpected_count FROM dq_results "
                                 "WHERE suite = 'cleaned' AND expectation LIKE '%not_be_null(title)%'")
    assert warnings == [("warning", 1)]  # ...with a warning-level quality result
    assert query(sqlite_url, "SELECT count(*) FROM quarantine") == [(0,)]

    before = query(sqlite_url, "SELECT id, canonical_url, text, content_hash FROM articles ORDER BY id")
    for path in inbox.iterdir():  # touched, not changed: read again
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert main(["ingest", "--files", str(inbox / "*.txt"), "--warehouse", sqlite_url]) == EXIT_OK
    table = capsys.readouterr().out.split("\nrun ", 1)[1].splitlines()
    assert table[1].split() == ["stage", "in", "passed", "quarantined", "duplicates", "unchanged"]
    assert table[2].split() == ["fetch", "2", "0", "0", "0", "2"]  # read again, found unchanged ...
    assert table[5].split() == ["load", "0", "0", "0", "0", "0"]  # ... and not reloaded
    assert query(sqlite_url, "SELECT id, canonical_url, text, content_hash FROM articles ORDER BY id") == before
    assert query(sqlite_url, "SELECT count(*) FROM duplicates") == [(0,)]


def test_bad_sources_file_fails_before_fetching(tmp_path, sqlite_url, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - {name: wire, kind: rss}\n")
    assert main(["ingest", "--sources", str(sources), "--warehouse", sqlite_url]) == EXIT_SOURCES
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "source #0 (wire), field 'url'" in err
    assert not (tmp_path / "warehouse.db").exists()  # nothing was started


def test_unreachable_warehouse_fails_with_one_line_and_no_password(tmp_path, capsys):
    url = "postgresql+psycopg://newsflow:s3cret-pw@127.0.0.1:9/news"  # port 9: nothing listens
    assert main(["ingest", "--files", str(tmp_path / "*.txt"), "--warehouse", url]) == EXIT_WAREHOUSE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unavailable" in err
    assert "s3cret-pw" not in err


@pytest.mark.usefixtures("prefect_server")
def test_a_glob_matching_nothing_fails_the_run_naming_the_source_and_path(tmp_path, sqlite_url, capsys):
    """A typo in a path must not pass for "nothing new": exit 6 and one line, the other source still loaded."""
    shutil.copy(PROJECT_ROOT / "samples" / "texts" / "ferry-strike.txt", tmp_path / "ferry.txt")
    missing = str(tmp_path / "inbxo" / "*.txt")
    assert main(["ingest", "--files", str(tmp_path / "*.txt"), "--files", missing,
                 "--warehouse", sqlite_url]) == EXIT_SOURCE_EMPTY
    reason = capsys.readouterr().err.strip().splitlines()[-1]  # after Prefect's own log lines
    assert reason == f"newsflow: run failed: source 'files-2' yielded nothing: no file matches {missing}"
    assert query(sqlite_url, "SELECT count(*) FROM articles") == [(1,)]
    assert query(sqlite_url, "SELECT status, message FROM pipeline_runs") == [
        ("failed", f"source 'files-2' yielded nothing: no file matches {missing}")]


@pytest.mark.usefixtures("prefect_server")
def test_a_feed_that_cannot_be_read_fails_the_run_naming_its_url(sample_site, sqlite_url, capsys):
    feed = f"{sample_site}/no-such-feed.xml"
    assert main(["ingest", "--feed", feed, "--allow-private-network", "--warehouse", sqlite_url]) == EXIT_SOURCE_EMPTY
    reason = capsys.readouterr().err.strip().splitlines()[-1]
    assert reason.startswith(f"newsflow: run failed: source 'feed-1' yielded nothing: feed {feed} unavailable:")
    assert "404" in reason


def test_every_exit_status_is_in_the_help_and_the_readme(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split("### Exit statuses", 1)[1]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", readme.split("\n\n", 2)[1], re.M)}
    assert documented == set(EXIT_STATUSES)
    for code, meaning in EXIT_STATUSES.items():
        assert f"  {code}  {meaning}" in help_text


def test_nothing_to_ingest_is_a_usage_error(capsys):
    assert main(["ingest"]) == EXIT_USAGE
    assert "nothing to ingest" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_server")
def test_a_batch_failing_every_critical_check_fails_the_run(tmp_path, sqlite_url, capsys):
    # Texts with leftover markup: the clean stage passes plain text on as it is, the `cleaned` suite's
    # critical has_markup check holds every one back. (Near-empty stubs never reach it: clean quarantines them.)
    story = " ".join(f"The ferry service resumed on route {n} after the storm passed." for n in range(8))
    for number in range(4):  # a source is judged on 4 pages or more (expectations/cleaned.json)
        (tmp_path / f"stub{number}.txt").write_text(
            f"Breaking news {number}\n\n<div class=\"promo\">{story}</div>\n")
    assert main(["ingest", "--files", str(tmp_path / "*.txt"), "--warehouse", sqlite_url]) == EXIT_QUALITY
    reason = capsys.readouterr().err.strip().splitlines()[-1]  # after Prefect's own log lines
    assert reason.startswith("newsflow: run failed:") and "files-1" in reason and "has_markup" in reason
    assert query(sqlite_url, "SELECT status FROM pipeline_runs") == [("failed",)]
    assert query(sqlite_url, "SELECT count(*) FROM quarantine WHERE stage = 'clean'") == [(4,)]
    assert query(sqlite_url, "SELECT count(*) FROM articles") == [(0,)]


@pytest.mark.usefixtures("prefect_server")
def test_nul_characters_never_crash_a_run(tmp_path, warehouse_url):
    """PostgreSQL refuses NUL in text and JSONB: records carrying them load or are quarantined all the same."""
    import json

    story = " ".join(f"The harbour\u0000 board met on day {n} to discuss the dredging budget." for n in range(10))
    lines = [json.dumps({"url": "https://wire.example/nul-story", "title": "Dredging\u0000 talks", "text": story}),
             json.dumps({"url": "https://wire.example/nul-empty\u0000", "title": "Nothing\u0000 here"})]
    (tmp_path / "wire.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["ingest", "--files", str(tmp_path / "*.jsonl"), "--warehouse", warehouse_url]) == EXIT_OK
    (title, body), = query(warehouse_url, "SELECT title, text FROM articles")
    assert title == "Dredging talks" and "\x00" not in body and "harbour board" in body
    (url, reasons, payload), = query(warehouse_url, "SELECT url, reasons, payload FROM quarantine")
    assert url.endswith("wire.jsonl#L2")
    assert "no 'text' or 'html'" in str(reasons) and "\x00" not in str(payload)


@pytest.mark.usefixtures("prefect_server")
def test_a_warehouse_password_is_never_a_flow_parameter_nor_logged(tmp_path, postgres_url, capsys, caplog):
    """Prefect stores flow parameters and run logs: a URL with a password reaches the run through settings."""
    import json
    import os

    from prefect.client.orchestration import get_client
    from sqlalchemy.engine import make_url

    password = "pw-never-shown-7"
    url = make_url(postgres_url).set(password=password).render_as_string(hide_password=False)  # trust auth
    (tmp_path / "story.txt").write_text(NO_TITLE, encoding="utf-8")
    before = os.environ.get("NEWSFLOW_WAREHOUSE_URL")

    assert main(["ingest", "--files", str(tmp_path / "*.txt"), "--warehouse", url]) == EXIT_OK

    assert query(postgres_url, "SELECT count(*) FROM articles") == [(1,)]
    assert os.environ.get("NEWSFLOW_WAREHOUSE_URL") == before  # the run's setting is not left behind
    captured = capsys.readouterr()
    assert password not in captured.out + captured.err + caplog.text
    with get_client(sync_client=True) as client:
        (flow_run,) = [r for r in client.read_flow_runs() if r.id and str(r.id) in
                       {row[0] for row in query(postgres_url, "SELECT flow_run_id FROM pipeline_runs")}]
        logs = client.read_logs()
    assert password not in json.dumps(flow_run.parameters, default=str)
    assert all(password not in log.message for log in logs)


def test_the_command_exits_quickly_with_its_code_and_all_its_output(tmp_path):
    """`newsflow` skips the interpreter's teardown (os._exit): its exit code and its piped, block-buffered
    output must still come out whole."""
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).parent / "newsflow"
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    upgraded = subprocess.run([command, "db", "upgrade", "--warehouse", url], capture_output=True, text=True,
                              timeout=120)
    current = subprocess.run([command, "db", "current", "--warehouse", url], capture_output=True, text=True,
                             timeout=120)
    usage = subprocess.run([command, "ingest"], capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == EXIT_OK and "(empty) ->" in upgraded.stdout
    assert current.returncode == EXIT_OK and current.stdout.strip().endswith("(up to date)")
    assert usage.returncode == EXIT_USAGE and "nothing to ingest" in usage.stderr


def test_the_quick_exit_drains_prefects_workers_before_the_atexit_functions_stop_the_server(monkeypatch):
    """As the interpreter's own exit: the hooks Prefect's log and event workers register for the threads'
    shutdown send what they hold while the temporary server still answers, then the atexit functions stop
    it (the other way round, the log handler waited its timeout on a stopped server). Other thread-shutdown
    hooks (thread pools joining their threads) are not run, as before."""
    import atexit
    import functools
    import threading

    import flows.cli

    ran: list[str] = []

    class Worker:  # a Prefect service, as the interpreter sees its hook
        __module__ = "prefect.logging.handlers"

        def _at_exit(self) -> None:
            ran.append("prefect worker drained")

    monkeypatch.setattr(threading, "_threading_atexits", [
        functools.partial(Worker()._at_exit), functools.partial(lambda: ran.append("thread pool joined"))])
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append("atexit: server stopped, logs flushed"))
    flows.cli._run_exit_handlers()
    assert ran == ["prefect worker drained", "atexit: server stopped, logs flushed"]


def test_the_quick_exit_waits_a_bounded_time_for_prefects_workers(monkeypatch):
    """A worker that cannot send (the server hangs) does not keep the process from stopping the server."""
    import atexit
    import functools
    import threading

    import flows.cli

    ran: list[tuple[str, bool]] = []
    release, finished = threading.Event(), threading.Event()

    class Worker:
        __module__ = "prefect.events.worker"

        def _at_exit(self) -> None:  # stuck until the server is stopped
            release.wait(60)
            finished.set()

    def stop_server() -> None:
        ran.append(("atexit", finished.is_set()))
        release.set()

    monkeypatch.setattr(threading, "_threading_atexits", [functools.partial(Worker()._at_exit)])
    monkeypatch.setattr(atexit, "_run_exitfuncs", stop_server)
    flows.cli._run_exit_handlers(drain_seconds=0.1)
    assert ran == [("atexit", False)]  # the server is stopped while the stuck worker still waits
