"""`python -m flows.prefect_server [--host H] [--port P]`: Prefect's own server (`prefect server start`),
with one compatibility fix applied first.

Prefect 3.8's scheduler bulk-inserts flow runs as dicts that carry a `state` key, which names a hybrid
property of the ORM model. SQLAlchemy 2.0 ignored such keys; 2.1 (which this project needs) refuses them
unless the hybrid has a `bulk_dml` setter, so the scheduler fails and no scheduled run is ever created.
The fix gives those hybrids a setter that leaves the row alone (the scheduler inserts the states itself).
"""

from __future__ import annotations

import sys
from typing import Any

import tasks.settings  # noqa: F401  (telemetry off before Prefect is imported)


def _leave_row_alone(cls: Any, mapping: dict[str, Any], value: Any) -> None:
    """The run's state rows are written separately by the scheduler: nothing to do in the runs' INSERT."""


def patch_state_hybrids() -> None:
    """Give FlowRun.state and TaskRun.state a bulk_dml setter (a no-op), before any database use."""
    from prefect.server.database import orm_models

    for model in (orm_models.FlowRun, orm_models.TaskRun):
        hybrid = model.__dict__.get("state")
        # In place: hybrid_property.bulk_dml() itself fails in SQLAlchemy 2.1.9 (a wrong keyword).
        if hybrid is not None and getattr(hybrid, "bulk_dml_setter", "missing") is None:
            hybrid.bulk_dml_setter = _leave_row_alone


def main(argv: list[str] | None = None) -> None:
    patch_state_hybrids()
    from prefect.cli import app

    sys.argv = [sys.argv[0], "server", "start", *(sys.argv[1:] if argv is None else argv)]
    app()


if __name__ == "__main__":
    main()
