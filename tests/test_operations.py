"""Operating newsflow the Prefect way, with real processes: `newsflow up` (a Prefect server on a free port,
the process work pool, the deployments of deployments/prefect.yaml, the alert automations, a worker),
runs started with the actual `prefect deployment run` CLI against the sample site, the schedules, the
concurrency limit, a failing run's alert webhook, and `newsflow down`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect_runs import recorded_task_runs
from sqlalchemy import create_engine, text

from flows.ops import alive, read_stack
from flows.sample_site import SAMPLE_SITE, SampleSite, _SiteHandler
from tasks.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent
SOURCES_FILE = str(PROJECT_ROOT / "samples" / "sources.yaml")
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
# Longest a held sample site keeps a request waiting; the runs' request timeout is set above it.
HOLD_SECONDS = 150

# One `newsflow up` stack for the module, its tests in order: one worker runs them all (make test uses xdist).
pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900), pytest.mark.xdist_group("operations")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookReceiver:
    """A local HTTP endpoint that keeps the JSON bodies POSTed to it (the alert webhook)."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _HeldHandler(_SiteHandler):
    def send_head(self):  # type: ignore[override]
        self.server.open.wait(HOLD_SECONDS)  # type: ignore[attr-defined]
        return super().send_head()


class HeldSampleSite(SampleSite):
    """The sample site, whose answers wait while `open` is clear (at most HOLD_SECONDS): a run that fetches
    from it stays RUNNING for as long as a test needs, however fast the machine."""

    def __init__(self) -> None:
        super().__init__()
        self.server.RequestHandlerClass = partial(_HeldHandler, directory=str(SAMPLE_SITE))
        self.open = self.server.open = threading.Event()  # type: ignore[attr-defined]
        self.open.set()


@dataclass
class Ops:
    api_url: str
    data_dir: Path
    env: dict[str, str]
    hook: WebhookReceiver
    site: HeldSampleSite
    up_output: str = ""


@contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        yield client


@pytest.fixture(scope="module")
def ops(tmp_path_factory) -> Iterator[Ops]:
    data_dir = tmp_path_factory.mktemp("ops")
    hook = WebhookReceiver()
    with HeldSampleSite() as site:
        # The worker asks for work every 2 s (instead of 10). A held request must not time out.
        env = {**os.environ, "NEWSFLOW_SAMPLE_BASE_URL": site.base_url, "PREFECT_WORKER_QUERY_SECONDS": "2",
               "NEWSFLOW_REQUEST_TIMEOUT": str(HOLD_SECONDS + 60), "NEWSFLOW_READ_TIMEOUT": str(HOLD_SECONDS + 60)}
        env.pop("PREFECT_API_URL", None)
        try:
            result = subprocess.run([BIN / "newsflow", "up", "--data-dir", str(data_dir), "--port", str(free_port()),
                                     "--docs-port", str(free_port()),
                                     "--alert-webhook", hook.url], env=env, capture_output=True, text=True,
                                    timeout=480, stdin=subprocess.DEVNULL)
            assert result.returncode == 0, result.stdout + result.stderr
            stack = read_stack(data_dir)
            assert stack is not None and set(stack.pids) == {"server", "docs", "worker"}
            yield Ops(stack.api_url, data_dir, {**env, "PREFECT_API_URL": stack.api_url}, hook, site, result.stdout)
        finally:
            subprocess.run([BIN / "newsflow", "down", "--data-dir", str(data_dir)], env=env, timeout=120)
            hook.close()


def deployment_run(ops: Ops, name: str, **parameters: str) -> str:
    """`prefect deployment run NAME --param k=v ...` through the CLI; returns the flow run id."""
    args = [str(BIN / "prefect"), "deployment", "run", name]
    for key, value in parameters.items():
        args += ["--param", f"{key}={value}"]
    result = subprocess.run(args, env=ops.env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout
    return match.group(1)


def wait_for_state(ops: Ops, run_id: str, states: set[str], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    with prefect_client(ops.api_url) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state_type and run.state_type.value in states:
                return run
            assert time.monotonic() < deadline, f"run {run.name} still {run.state_name} after {timeout:.0f} s"
            time.sleep(1)


def scheduled_runs(client: Any, deployment_id: Any) -> list[Any]:
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.SCHEDULED]))))


def test_up_prints_the_commands_it_really_runs(ops):
    # The server is Prefect's with a scheduler fix (flows/prefect_server.py), not `prefect server start`.
    assert "$ python -m flows.prefect_server --host 127.0.0.1 --port " in ops.up_output
    assert "prefect server start" not in ops.up_output
    assert "$ prefect worker start --pool newsflow --type process --name newsflow-worker" in ops.up_output
    assert "$ prefect deploy --prefect-file deployments/prefect.yaml --all" in ops.up_output
    assert f"$ python -m flows.docs_server --dir {ops.data_dir / 'data-docs'} --port " in ops.up_output


def test_up_applies_the_deployments_and_their_schedules_produce_runs(ops):
    with prefect_client(ops.api_url) as client:
        pool = client.read_work_pool("newsflow")
        assert pool.type == "process"
        deployments = {name: client.read_deployment_by_name(name)
                       for name in ("ingest-news/hourly", "ingest-news/daily-full-refresh",
                                    "maintain-warehouse/daily")}
        hourly = deployments["ingest-news/hourly"]
        assert hourly.work_pool_name == "newsflow"
        assert hourly.schedules[0].schedule.cron == "5 * * * *"
        assert hourly.schedules[0].schedule.timezone == "Europe/London"
        assert hourly.parameters == {"sources_variable": "newsflow-sources", "full_refresh": False}
        assert "incremental" in hourly.tags and hourly.description
        assert deployments["ingest-news/daily-full-refresh"].parameters["full_refresh"] is True
        for deployment in deployments.values():
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"

        # The server's scheduler turns every schedule into upcoming runs.
        deadline = time.monotonic() + 120
        while not all(scheduled_runs(client, d.id) for d in deployments.values()):
            assert time.monotonic() < deadline, "the schedules produced no scheduled runs"
            time.sleep(2)
        upcoming = scheduled_runs(client, hourly.id)
        assert all(r.expected_start_time.minute == 5 for r in upcoming)

        # Paused from here on, so that no scheduled run interferes with the runs the next test starts.
        for deployment in deployments.values():
            client.pause_deployment(deployment.id)
            assert client.read_deployment(deployment.id).paused
        # Pausing deletes the upcoming runs, but a scheduler pass already under way can still insert some
        # (seen on a loaded machine): once that pass is over, delete them; no later pass adds any.
        time.sleep(5)
        for deployment in deployments.values():
            for run in scheduled_runs(client, deployment.id):
                client.delete_flow_run(run.id)
        time.sleep(5)
        assert not any(scheduled_runs(client, d.id) for d in deployments.values())

        automations = {a.name for a in client.read_automations()}
        assert {"newsflow-run-failed", "newsflow-no-success-3h"} <= automations


def test_prefect_deployment_run_ingests_and_reports_in_the_ui(ops, tmp_path):
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
    )

    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    bad_sources = tmp_path / "bad-sources.yaml"
    bad_sources.write_text("sources:\n  - {name: broken, kind: rss}\n", encoding="utf-8")

    # The sample site holds its answers, so the first run is still RUNNING, holding the deployment's only
    # slot, when the second hourly run comes: that one is cancelled, not queued. Created through the API:
    # the CLI's start-up on a loaded machine could outlast the first run.
    ops.site.open.clear()
    try:
        good = deployment_run(ops, "ingest-news/hourly", sources_file=SOURCES_FILE, warehouse_url=warehouse)
        bad = deployment_run(ops, "ingest-news/daily-full-refresh", sources_file=str(bad_sources),
                             warehouse_url=warehouse)
        assert wait_for_state(ops, good, {"RUNNING", *FINAL}).state_type.value == "RUNNING"
        with prefect_client(ops.api_url) as client:
            hourly = client.read_deployment_by_name("ingest-news/hourly")
            overlapping = str(client.create_flow_run_from_deployment(
                hourly.id, parameters={"sources_file": SOURCES_FILE, "warehouse_url": warehouse}).id)
        overlapping_run = wait_for_state(ops, overlapping, FINAL, timeout=HOLD_SECONDS - 30)
        assert wait_for_state(ops, good, {"RUNNING", *FINAL}).state_type.value == "RUNNING"
    finally:
        ops.site.open.set()
    assert overlapping_run.state_type.value == "CANCELLED"

    good_run = wait_for_state(ops, good, FINAL)
    assert good_run.state_type.value == "COMPLETED", good_run.state.message
    assert good_run.name == "ingest sources.yaml"

    bad_run = wait_for_state(ops, bad, FINAL)
    assert bad_run.state_type.value == "FAILED"
    assert "bad-sources.yaml: source #0 (broken), field 'url'" in bad_run.state.message

    engine = create_engine(warehouse)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM articles")).scalar_one() == 19
        assert conn.execute(text("SELECT status FROM pipeline_runs")).scalars().all() == ["completed"]
    engine.dispose()

    with prefect_client(ops.api_url) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[good_run.id])))
        by_key = {a.key: a for a in artifacts if a.key}
        assert {"run-summary", "quality-cleaned", "data-docs", "fetch-progress"} <= set(by_key)
        assert float(by_key["fetch-progress"].data) == 100.0
        assert "load" in by_key["run-summary"].data  # its layout is the quality stage's business
        # The Data Docs open from the UI: an http link to the docs server `up` started, not a file:// one.
        docs_url = read_stack(ops.data_dir).docs_url
        docs_link = f"{docs_url}/{good_run.id}/index.html"
        assert by_key["data-docs"].data.endswith(f"]({docs_link})")  # stored as markdown: [text](link)
        assert httpx.get(docs_link, timeout=30).status_code == 200
        task_names = {t.name for t in recorded_task_runs(good_run.id)}
        assert {"fetch harbour-gazette", "clean batch 1", "load batch 1"} <= task_names

    # The failed run reaches the alert webhook through the automation.
    deadline = time.monotonic() + 120
    while not any(bad_run.name in json.dumps(body) for body in ops.hook.received):
        assert time.monotonic() < deadline, f"no alert for {bad_run.name}: {ops.hook.received}"
        time.sleep(1)
    alert = next(body for body in ops.hook.received if bad_run.name in json.dumps(body))
    assert "ingest-news" in alert["subject"] and "failed" in alert["subject"]
    assert "bad-sources.yaml" in alert["body"]


def test_down_stops_everything_up_started(ops):
    stack = read_stack(ops.data_dir)
    assert stack is not None and all(alive(pid) for pid in stack.pids.values())
    result = subprocess.run([BIN / "newsflow", "down", "--data-dir", str(ops.data_dir)], env=ops.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not any(alive(pid) for pid in stack.pids.values())
    assert read_stack(ops.data_dir) is None
