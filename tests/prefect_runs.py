"""Reading a finished flow run's task runs back from the Prefect API, as the UI shows them."""

from __future__ import annotations

import time
from typing import Any


def recorded_task_runs(flow_run_id: Any, settle_seconds: float = 1.5, timeout: float = 120) -> list[Any]:
    """The flow run's task runs once the server has recorded them all.

    Prefect 3 records task runs from events the client sends in the background and the server handles
    asynchronously: read straight after a run, the last task runs can be missing (seen on a loaded machine).
    So: send the client's queued events, then read until every task run is in a final state and their number
    has not changed for `settle_seconds` (or `timeout` passes: the caller's assertion then shows what is there).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30)
    deadline = time.monotonic() + timeout
    seen, stable_since = -1, time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            now = time.monotonic()
            if len(runs) != seen:
                seen, stable_since = len(runs), now
            settled = all(r.state_type is not None and r.state.is_final() for r in runs)
            if (settled and now - stable_since >= settle_seconds) or now > deadline:
                return runs
            time.sleep(0.25)
