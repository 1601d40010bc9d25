"""The maintain-warehouse flow: retention of the bookkeeping tables and whole-warehouse integrity checks,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from tasks import schema
from tasks.records import FetchAttempt, Rejection, utcnow
from tasks.validate import StageFailed
from tasks.warehouse import get_engine, record_dq_results, record_fetches, record_rejections

pytestmark = pytest.mark.usefixtures("prefect_server")


def seed(engine, days_old: int, run_id: str) -> None:
    when = utcnow() - timedelta(days=days_old)
    record_fetches(engine, run_id, [FetchAttempt("s", f"http://x/{run_id}", 200, fetched_at=when)])
    record_rejections(engine, run_id, [Rejection("clean", "s", f"http://x/{run_id}", ["no article text found"])])
    record_dq_results(engine, run_id, [{"stage": "clean", "suite": "cleaned", "expectation": "e",
                                        "severity": "critical", "success": True}])
    with engine.begin() as conn:  # the recorders stamp "now": age the rows as if written back then
        conn.execute(insert(schema.run_writes).values(run_id=run_id, kind="article", row_id=days_old,
                                                      written_at=when))
        conn.execute(schema.quarantine.update().where(schema.quarantine.c.run_id == run_id)
                     .values(quarantined_at=when))
        conn.execute(schema.dq_results.update().where(schema.dq_results.c.run_id == run_id)
                     .values(checked_at=when))


def run_ids(engine, table) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.run_id)).scalars())


def test_retention_deletes_only_old_bookkeeping_rows(warehouse_url):
    from flows.maintenance import maintain_warehouse

    engine = get_engine(warehouse_url)
    seed(engine, 400, "ancient")
    seed(engine, 100, "old")
    seed(engine, 1, "recent")
    with engine.begin() as conn:
        conn.execute(insert(schema.pipeline_runs).values(run_id="lost", started_at=utcnow() - timedelta(days=2),
                                                         status="running"))

    summary = maintain_warehouse(warehouse_url=warehouse_url, fetches_retention_days=30,
                                 quarantine_retention_days=200, dq_results_retention_days=0)

    assert run_ids(engine, schema.fetches) == {"recent"}
    assert run_ids(engine, schema.quarantine) == {"old", "recent"}
    # 0 keeps everything; the maintenance run adds its own check results.
    assert {"ancient", "old", "recent"} <= run_ids(engine, schema.dq_results)
    assert summary["pruned"] == {"fetches": 2, "quarantine": 1, "dq_results": 0, "run_writes": 0}
    assert summary["abandoned"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(schema.pipeline_runs.c.status)).scalar_one() == "abandoned"
    assert all(check["success"] for check in summary["checks"])

    # What each run wrote is kept as long as the results of its checks.
    summary = maintain_warehouse(warehouse_url=warehouse_url, dq_results_retention_days=30)
    assert summary["pruned"]["run_writes"] == 2 and run_ids(engine, schema.run_writes) == {"recent"}


def test_integrity_failure_fails_the_run_naming_the_check(warehouse_url):
    from flows.maintenance import maintain_warehouse

    engine = get_engine(warehouse_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(schema.articles).values(
            url="http://x/a", canonical_url="http://x/a", source="s", text="", word_count=0, content_hash="h",
            authors=[], first_seen_at=now, last_seen_at=now))
    with pytest.raises(StageFailed, match="every article has text"):
        maintain_warehouse(warehouse_url=warehouse_url)
    with engine.connect() as conn:
        failed = conn.execute(select(schema.dq_results.c.expectation)
                              .where(schema.dq_results.c.success.is_(False))).scalars().all()
    assert "every article has text" in failed
