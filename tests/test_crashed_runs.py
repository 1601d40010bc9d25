"""Runs that died are recorded as such: the next run (or the maintenance flow) marks a `running` row whose
process is gone, whose heartbeat stopped or whose Prefect flow run ended as `crashed`; and `newsflow` stops
the temporary Prefect server it started, even when it is sent SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from crawl_server import CrawlServer, Reply, article_html
from sqlalchemy import insert, select
from warehouse_sql import query

from tasks import schema
from tasks.records import utcnow
from tasks.runs import mark_crashed_runs, start_heartbeat, stop_heartbeat, this_process
from tasks.warehouse import open_warehouse


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(engine, run_id: str, **values) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.pipeline_runs).values(run_id=run_id, status="running",
                                                         started_at=values.pop("started_at", utcnow()), **values))


def _statuses(engine) -> dict[str, tuple[str, str | None]]:
    runs = schema.pipeline_runs
    with engine.connect() as conn:
        return {r.run_id: (r.status, r.message) for r in conn.execute(select(runs.c.run_id, runs.c.status,
                                                                             runs.c.message))}


def test_a_run_whose_process_is_gone_or_whose_heartbeat_stopped_is_marked_crashed(sqlite_url):
    engine = open_warehouse(sqlite_url)
    host, pid = this_process()
    now = utcnow()
    _run(engine, "killed", host=host, pid=_dead_pid(), heartbeat_at=now)
    _run(engine, "alive", host=host, pid=pid, heartbeat_at=now)
    _run(engine, "elsewhere-silent", host="other-host", pid=1, heartbeat_at=now - timedelta(minutes=30))
    _run(engine, "elsewhere-beating", host="other-host", pid=1, heartbeat_at=now - timedelta(seconds=20))
    _run(engine, "prefect-failed", host=host, pid=pid, heartbeat_at=now, flow_run_id="f1")
    _run(engine, "before-heartbeats", started_at=now - timedelta(days=2))  # (the maintenance's abandon rule)

    crashed = mark_crashed_runs(engine, heartbeat_seconds=30, states={"f1": "FAILED"})

    assert sorted(crashed) == ["elsewhere-silent", "killed", "prefect-failed"]
    statuses = _statuses(engine)
    assert statuses["alive"] == ("running", None) and statuses["elsewhere-beating"] == ("running", None)
    assert statuses["killed"][0] == "crashed" and "is gone" in statuses["killed"][1]
    assert "no heartbeat since" in statuses["elsewhere-silent"][1]
    assert "Prefect flow run is failed" in statuses["prefect-failed"][1]
    assert mark_crashed_runs(engine, heartbeat_seconds=30, states={}) == []  # once


def test_the_heartbeat_beats_until_stopped(sqlite_url):
    engine = open_warehouse(sqlite_url)
    started = utcnow() - timedelta(minutes=5)
    _run(engine, "beating", heartbeat_at=started)
    start_heartbeat(engine, "beating", 0.05)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (beat,) = query(sqlite_url, "SELECT heartbeat_at FROM pipeline_runs")[0]
            if str(beat) > str(started.replace(tzinfo=None)):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no heartbeat recorded")
    finally:
        stop_heartbeat("beating")


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.usefixtures("prefect_server")
def test_sigterm_stops_the_temporary_prefect_server_and_the_next_run_marks_the_killed_one_crashed(tmp_path):
    from flows.ingest import ingest_news

    warehouse = f"sqlite:///{tmp_path / 'w.db'}"
    # Headers and body trickled: the fetch would hold the run for minutes (its thread too, unwinding).
    server = CrawlServer({"/slow.html": Reply(200, article_html(1).encode(), {"Content-Type": "text/html"},
                                              header_trickle=0.5, body_trickle=0.5)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"), "NEWSFLOW_REQUEST_TIMEOUT": "600",
                "NEWSFLOW_READ_TIMEOUT": "60", "NEWSFLOW_MAX_RETRIES": "0"})
    with server:
        command = [Path(sys.executable).parent / "newsflow", "ingest", "--url", server.url("/slow.html"),
                   "--allow-private-network", "--warehouse", warehouse]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 240
            while not server.hits["/slow.html"]:  # the run is under way: its temporary server is up
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
                time.sleep(0.2)
            children = _children(process.pid)
            assert any("uvicorn" in " ".join(c.cmdline()) for c in children)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=90) == 128 + signal.SIGTERM
        finally:
            if process.poll() is None:
                process.kill()
        time.sleep(1)
        assert [c.pid for c in children if not _gone(c)] == []
    assert query(warehouse, "SELECT status FROM pipeline_runs") == [("running",)]

    (tmp_path / "t.txt").write_text("A text long enough for a story. " * 20)
    ingest_news(sources=[{"name": "t", "kind": "files", "path": str(tmp_path / "t.txt")}], warehouse_url=warehouse)
    rows = query(warehouse, "SELECT status, message FROM pipeline_runs ORDER BY started_at")
    assert rows[0][0] == "crashed" and "crashed:" in rows[0][1]
    assert rows[1][0] == "completed"
