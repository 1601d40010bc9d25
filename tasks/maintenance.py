"""Warehouse upkeep: integrity checks over the whole warehouse, and retention of the bookkeeping tables
(fetch log, quarantine, quality results) so that they do not grow without bound. Articles are never pruned."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update

from tasks import schema
from tasks.records import utcnow

# Table -> the timestamp column its retention is measured on.
RETAINED = {"fetches": "fetched_at", "quarantine": "quarantined_at", "dq_results": "checked_at",
            "run_writes": "written_at"}


def prune(engine: Engine, table: str, older_than_days: int, now: datetime | None = None) -> int:
    """Delete the rows of `table` older than the given number of days (0 keeps everything); returns how many."""
    if older_than_days <= 0:
        return 0
    target = schema.metadata.tables[table]
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    with engine.begin() as conn:
        return conn.execute(delete(target).where(target.c[RETAINED[table]] < cutoff)).rowcount or 0


def abandon_stale_runs(engine: Engine, older_than_hours: float, now: datetime | None = None) -> int:
    """Runs still 'running' long after they started crashed without saying so: mark them 'abandoned'."""
    runs = schema.pipeline_runs
    cutoff = (now or utcnow()) - timedelta(hours=older_than_hours)
    with engine.begin() as conn:
        return conn.execute(update(runs).where(runs.c.status == "running", runs.c.started_at < cutoff).values(
            status="abandoned", finished_at=now or utcnow(),
            message=f"still running after {older_than_hours:g} h: the process was lost")).rowcount or 0


def _check(expectation: str, severity: str, unexpected: int, observed: Any = None) -> dict[str, Any]:
    return {"stage": "warehouse", "suite": "maintenance", "expectation": expectation, "severity": severity,
            "success": unexpected == 0, "unexpected_count": unexpected, "unexpected_percent": None,
            "observed_value": None if observed is None else str(observed)}


def warehouse_checks(engine: Engine) -> list[dict[str, Any]]:
    """Integrity checks over the whole warehouse, as rows of `dq_results`."""
    a, d, s = schema.articles, schema.duplicates, schema.article_signatures
    with engine.connect() as conn:
        def count(query: Any) -> int:
            return int(conn.execute(query).scalar_one())

        articles = count(select(func.count()).select_from(a))
        return [
            _check("every article has text", "critical",
                   count(select(func.count()).select_from(a).where((a.c.word_count < 1) | (a.c.text == ""))),
                   f"{articles} articles"),
            _check("canonical URLs are unique", "critical",
                   articles - count(select(func.count(a.c.canonical_url.distinct())))),
            _check("every duplicate points at an article", "critical",
                   count(select(func.count()).select_from(d).where(d.c.article_id.not_in(select(a.c.id))))),
            _check("every article has a dedup signature", "warning",
                   count(select(func.count()).select_from(a).where(a.c.id.not_in(select(s.c.article_id))))),
        ]
