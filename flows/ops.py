"""Operate newsflow the Prefect way on one machine.

`newsflow up` starts a Prefect server (API and UI on 127.0.0.1:4200), creates the `process` work pool,
applies deployments/prefect.yaml (and the automations when an alert webhook is configured) and starts a
worker; `newsflow down` stops exactly the processes `up` started (their ids are kept in a state file under
the data directory). `newsflow serve` serves the same deployments and schedules from one process instead.
Every Prefect step is the CLI command a person would type, printed as it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tasks.settings import PROJECT_ROOT

DEPLOYMENTS_FILE = PROJECT_ROOT / "deployments" / "prefect.yaml"
AUTOMATIONS_FILE = PROJECT_ROOT / "deployments" / "automations.yaml"
WORK_POOL = "newsflow"
STATE_NAME = "prefect-up.json"
# Processes are stopped in the reverse of this order: the worker first, the server last.
START_ORDER = ("server", "sample-site", "docs", "worker")


class OpsError(RuntimeError):
    """A step of up/down failed; the message says which and where its log is."""


@dataclass
class Stack:
    """What `newsflow up` started, written to <data_dir>/prefect-up.json for `newsflow down`."""

    api_url: str
    home: str
    pids: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    sample_site_url: str | None = None
    docs_url: str | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_NAME


def read_stack(data_dir: Path) -> Stack | None:
    path = state_path(data_dir)
    if not path.exists():
        return None
    return Stack(**json.loads(path.read_text(encoding="utf-8")))


def _write_stack(data_dir: Path, stack: Stack) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path(data_dir).write_text(json.dumps(asdict(stack), indent=2), encoding="utf-8")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prefect_env(api_url: str, home: str | Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every Prefect process started here: this server, telemetry off."""
    env = dict(os.environ)
    env.update({
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def prefect_command() -> list[str]:
    return [sys.executable, "-m", "prefect"]


def run_prefect(args: list[str], env: dict[str, str], timeout: float = 180, echo: bool = True) -> str:
    """Run one `prefect ...` CLI command from the project root; its output on failure names the cause."""
    if echo:
        print("$ " + shown_command([*prefect_command(), *args]), flush=True)
    result = subprocess.run([*prefect_command(), *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise OpsError(f"`prefect {' '.join(args)}` failed ({result.returncode}): "
                       + "\n".join(output[-15:]))
    return result.stdout


def shown_command(args: Sequence[str]) -> str:
    """The command as a person would type it in the activated venv: `python -m prefect X` is `prefect X`."""
    args = list(args)
    if args[:3] == prefect_command():
        args = ["prefect", *args[3:]]
    elif args[:1] == [sys.executable]:
        args = ["python", *args[1:]]
    return shlex.join(args)


def _start(name: str, args: list[str], env: dict[str, str], log_dir: Path, stack: Stack) -> subprocess.Popen:
    """Start a long-running process, printing the command it really runs and where its log goes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    print(f"$ {shown_command(args)}    (log: {log_path})", flush=True)
    with log_path.open("ab") as log:
        # Own session: `down` stops the process with everything it spawned (a worker's flow runs).
        process = subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    stack.pids[name] = process.pid
    stack.logs[name] = str(log_path)
    return process


def _log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for_api(api_url: str, process: subprocess.Popen | None, log: str | None, timeout: float = 180) -> None:
    """Wait until the server answers /health (its first start migrates its database: give it time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise OpsError(f"the Prefect server exited ({process.returncode}); its log {log} ends:\n"
                           + _log_tail(log or ""))
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise OpsError(f"the Prefect server at {api_url} did not answer within {timeout:.0f} s; see {log}")


def up(data_dir: Path, host: str = "127.0.0.1", port: int = 4200, home: Path | None = None,
       sample_site_port: int | None = None, extra_env: dict[str, str] | None = None,
       alert_webhook: str | None = None, docs_port: int = 4280, docs_dir: Path | None = None) -> Stack:
    """Server, Data Docs server, work pool, deployments, automations (with a webhook) and a worker; returns
    what was started. The worker's runs write their Data Docs where the docs server serves them
    (`docs_dir`, default DATA_DIR/data-docs) and link their data-docs artifact to it."""
    data_dir = data_dir.resolve()
    previous = read_stack(data_dir)
    if previous and any(alive(pid) for pid in previous.pids.values()):
        raise OpsError(f"already up (see {state_path(data_dir)}): run `newsflow down` first")
    home = (home or data_dir / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    stack = Stack(api_url=f"http://{host}:{port}/api", home=str(home))
    log_dir = data_dir / "logs"
    extra = dict(extra_env or {})
    try:
        server = _start("server", [sys.executable, "-m", "flows.prefect_server", "--host", host, "--port", str(port)],
                        prefect_env(stack.api_url, home, extra), log_dir, stack)
        _write_stack(data_dir, stack)  # from here on, `down` can clean up whatever happens next
        if sample_site_port is not None:
            stack.sample_site_url = f"http://127.0.0.1:{sample_site_port}"
            extra["NEWSFLOW_SAMPLE_BASE_URL"] = stack.sample_site_url
            _start("sample-site", [sys.executable, "-m", "flows.sample_site", "--port", str(sample_site_port)],
                   prefect_env(stack.api_url, home, extra), log_dir, stack)
            _write_stack(data_dir, stack)
        docs_dir = (docs_dir or data_dir / "data-docs").resolve()
        stack.docs_url = f"http://127.0.0.1:{docs_port}"
        extra.update(NEWSFLOW_DATA_DOCS_DIR=str(docs_dir), NEWSFLOW_DATA_DOCS_URL=stack.docs_url)
        _start("docs", [sys.executable, "-m", "flows.docs_server", "--dir", str(docs_dir), "--port", str(docs_port)],
               prefect_env(stack.api_url, home, extra), log_dir, stack)
        _write_stack(data_dir, stack)
        env = prefect_env(stack.api_url, home, extra)
        wait_for_api(stack.api_url, server, stack.logs["server"])
        run_prefect(["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
        run_prefect(["deploy", "--prefect-file", str(DEPLOYMENTS_FILE.relative_to(PROJECT_ROOT)), "--all"], env)
        if alert_webhook:
            apply_automations(stack.api_url, alert_webhook)
        _start("worker", [*prefect_command(), "worker", "start", "--pool", WORK_POOL, "--type", "process",
                          "--name", f"{WORK_POOL}-worker"], env, log_dir, stack)
        _write_stack(data_dir, stack)
    except BaseException:
        down(data_dir)
        raise
    return stack


def _stop_group(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (so it does not linger as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def down(data_dir: Path, timeout: float = 20) -> list[str]:
    """Stop what `up` started (worker first, server last) and forget it; returns the names stopped."""
    data_dir = data_dir.resolve()
    stack = read_stack(data_dir)
    if stack is None:
        return []
    stopped = []
    for name in sorted(stack.pids, key=lambda n: START_ORDER.index(n) if n in START_ORDER else -1,
                       reverse=True):
        pid = stack.pids[name]
        if alive(pid):
            _stop_group(pid, timeout)
            stopped.append(name)
    state_path(data_dir).unlink(missing_ok=True)
    return stopped


# --- automations ------------------------------------------------------------------------------

ALERT_BLOCK = "newsflow-alerts"


def apply_automations(api_url: str, webhook_url: str, path: Path = AUTOMATIONS_FILE) -> list[str]:
    """Save the alert webhook block and create (or replace) the automations of deployments/automations.yaml,
    their notifications sent through it. The same as the README's manual steps, with the block id filled in."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    print(f"(saving webhook block {ALERT_BLOCK!r}, creating the automations of {path.name})", flush=True)
    created = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        block_id = CustomWebhookNotificationBlock(
            name="newsflow", url=webhook_url, json_data={"subject": "{{subject}}", "body": "{{body}}"},
        ).save(ALERT_BLOCK, overwrite=True)
        for item in spec["automations"]:
            for action in item.get("actions", []):
                if action.get("type") == "send-notification":
                    action["block_document_id"] = str(block_id)
            while True:  # applying twice replaces, never doubles
                try:
                    Automation.read(name=item["name"]).delete()
                except ValueError:
                    break
            created.append(Automation(**item).create().name)
    return created


# --- serve --------------------------------------------------------------------------------------


def load_deployment_specs(path: Path = DEPLOYMENTS_FILE) -> list[dict[str, Any]]:
    """The deployments of prefect.yaml (YAML anchors resolved)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def runner_deployments(path: Path = DEPLOYMENTS_FILE) -> list[Any]:
    """prefect.yaml's deployments as `RunnerDeployment`s for `prefect.serve`: same names, schedules,
    parameters, tags, descriptions and concurrency limits, no work pool."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    deployments = []
    for spec in load_deployment_specs(path):
        file, function = spec["entrypoint"].split(":")
        flow = load_flow_from_entrypoint(f"{PROJECT_ROOT / file}:{function}")
        limit = spec.get("concurrency_limit")
        if isinstance(limit, dict):
            limit = ConcurrencyLimitConfig(
                limit=limit["limit"],
                collision_strategy=ConcurrencyLimitStrategy(limit.get("collision_strategy", "ENQUEUE")))
        deployments.append(flow.to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters") or {}, concurrency_limit=limit,
            schedules=[Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules") or []],
        ))
    return deployments


def serve(data_dir: Path, port: int = 4200, path: Path = DEPLOYMENTS_FILE) -> None:
    """Serve the deployments from this process. Without PREFECT_API_URL, a Prefect server (with the UI)
    is started on 127.0.0.1:`port` for as long as this runs: Prefect's own temporary server would not
    create scheduled runs under SQLAlchemy 2.1 (see flows/prefect_server.py)."""
    api_url = os.environ.get("PREFECT_API_URL")
    server = None
    stack = Stack(api_url=api_url or f"http://127.0.0.1:{port}/api", home=str((data_dir / "prefect").resolve()))
    os.environ["PREFECT_API_URL"] = stack.api_url  # before Prefect loads its settings: runs inherit it
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        if not api_url:
            print(f"starting a Prefect server: UI at {stack.ui_url}", flush=True)
            server = _start("server", [sys.executable, "-m", "flows.prefect_server", "--host", "127.0.0.1",
                                       "--port", str(port)], prefect_env(stack.api_url, stack.home),
                            data_dir.resolve() / "logs", stack)
            wait_for_api(stack.api_url, server, stack.logs["server"])
        with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
            prefect_serve(*runner_deployments(path))
    finally:
        if server is not None:
            _stop_group(server.pid, 20)
