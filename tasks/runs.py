"""Whether a run recorded as `running` still is: runs that died (killed, out of memory, the machine gone)
are marked `crashed` by the next run or by the maintenance flow, instead of staying `running` forever.

A run records the host and process it runs in, and beats a heartbeat (`pipeline_runs.heartbeat_at`, every
NEWSFLOW_RUN_HEARTBEAT_SECONDS) while it goes. A `running` row is dead when the Prefect server says its flow
run ended, when its process is gone from this host, or when its heartbeat stopped (another host's runs are
judged by that alone).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from tasks import schema
from tasks.records import utcnow

FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
MISSED_BEATS = 10  # heartbeats missed before a run on another host (or a reused pid) is taken for dead

_log = logging.getLogger(__name__)
_BEATING: dict[str, threading.Event] = {}


def this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def start_heartbeat(engine: Engine, run_id: str, every: float) -> None:
    """Beat the run's heartbeat every `every` seconds from a daemon thread, until `stop_heartbeat` (or the
    process ends: then the beats stop, which is the point)."""
    if every <= 0 or run_id in _BEATING:
        return
    stop = _BEATING[run_id] = threading.Event()
    runs = schema.pipeline_runs

    def beat() -> None:
        while not stop.wait(every):
            try:
                with engine.begin() as conn:
                    conn.execute(update(runs).where(runs.c.run_id == run_id, runs.c.status == "running")
                                 .values(heartbeat_at=utcnow()))
            except Exception:  # the warehouse away or busy for a moment: the next beat tries again
                _log.debug("heartbeat of run %s not recorded", run_id, exc_info=True)

    threading.Thread(target=beat, name=f"heartbeat {run_id[:8]}", daemon=True).start()


def stop_heartbeat(run_id: str) -> None:
    stop = _BEATING.pop(run_id, None)
    if stop is not None:
        stop.set()


def why_dead(row: Any, prefect_state: str | None, now: datetime, stale: timedelta, here: str) -> str | None:
    """Why a `running` row's run is gone, or None while it may still be going."""
    if prefect_state in FINAL_STATES:
        return f"its Prefect flow run is {prefect_state.lower()}, and the run never recorded its end"
    if row.host == here and row.pid and not pid_alive(row.pid):
        return f"its process {row.pid} on {row.host} is gone"
    # (A row from before heartbeats has none: the maintenance flow's `abandoned` rule is for those.)
    if row.heartbeat_at is not None and now - row.heartbeat_at > stale:
        return f"no heartbeat since {row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
    return None


def prefect_states(flow_run_ids: Iterable[str]) -> dict[str, str]:
    """The state type of each flow run the Prefect API knows; {} without one (no server, not reachable)."""
    ids = [i for i in flow_run_ids if i]
    if not ids:
        return {}
    try:
        from prefect.client.orchestration import get_client

        states = {}
        with get_client(sync_client=True) as client:
            for flow_run_id in ids:
                try:
                    state = client.read_flow_run(uuid.UUID(flow_run_id)).state
                except Exception:  # unknown to this server (another one's, or deleted)
                    continue
                if state is not None:
                    states[flow_run_id] = state.type.value
        return states
    except Exception:
        _log.debug("Prefect flow-run states unavailable", exc_info=True)
        return {}


def mark_crashed_runs(engine: Engine, heartbeat_seconds: float, except_run: str | None = None,
                      states: Mapping[str, str] | None = None, now: datetime | None = None) -> list[str]:
    """Mark `running` rows whose run is gone as `crashed`, saying why; returns their run ids. `states`: the
    Prefect state types by flow-run id (asked of the Prefect API when not given)."""
    runs = schema.pipeline_runs
    with engine.connect() as conn:
        rows = [row for row in conn.execute(
            select(runs.c.run_id, runs.c.flow_run_id, runs.c.host, runs.c.pid, runs.c.heartbeat_at)
            .where(runs.c.status == "running")) if row.run_id != except_run]
    if not rows:
        return []
    if states is None:
        states = prefect_states(row.flow_run_id for row in rows)
    now = now or utcnow()
    stale = timedelta(seconds=max(heartbeat_seconds, 1.0) * MISSED_BEATS)
    here = socket.gethostname()
    crashed = []
    with engine.begin() as conn:
        for row in rows:
            reason = why_dead(row, states.get(row.flow_run_id or ""), now, stale, here)
            if reason is None:
                continue
            done = conn.execute(update(runs).where(runs.c.run_id == row.run_id, runs.c.status == "running")
                                .values(status="crashed", finished_at=now, message=f"crashed: {reason}"))
            if done.rowcount:
                crashed.append(row.run_id)
    return crashed
