"""The `maintain-warehouse` flow: integrity checks over the whole warehouse, then retention of the fetch
log, quarantine and quality results. Scheduled daily by deployments/prefect.yaml."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from flows.config import warehouse_url as resolve_warehouse_url
from tasks.maintenance import RETAINED, abandon_stale_runs, prune, warehouse_checks
from tasks.runs import mark_crashed_runs
from tasks.settings import get_settings
from tasks.validate import StageFailed
from tasks.warehouse import get_engine, record_dq_results

# Every run must do the work again: no result caching.
NO_CACHE: dict[str, Any] = {"cache_policy": NONE, "persist_result": False}


@task(name="check-warehouse", task_run_name="check warehouse integrity", **NO_CACHE)
def check_task(url: str, run_id: str) -> list[dict[str, Any]]:
    engine = get_engine(url)
    results = warehouse_checks(engine)
    record_dq_results(engine, run_id, results)
    return results


@task(name="prune", task_run_name="prune {table} older than {days} days", retries=1, retry_delay_seconds=5,
      **NO_CACHE)
def prune_task(url: str, table: str, days: int) -> int:
    return prune(get_engine(url), table, days)


@task(name="abandon-stale-runs", task_run_name="mark runs older than {hours} h abandoned", **NO_CACHE)
def abandon_task(url: str, hours: float) -> int:
    return abandon_stale_runs(get_engine(url), hours)


@task(name="mark-crashed-runs", task_run_name="mark runs that died crashed", **NO_CACHE)
def crashed_task(url: str) -> list[str]:
    return mark_crashed_runs(get_engine(url), get_settings().run_heartbeat_seconds)


@flow(name="maintain-warehouse", flow_run_name="maintain warehouse")
def maintain_warehouse(warehouse_url: str | None = None, fetches_retention_days: int | None = None,
                       quarantine_retention_days: int | None = None,
                       dq_results_retention_days: int | None = None,
                       stale_run_hours: float = 24) -> dict[str, Any]:
    """Check the warehouse's integrity and delete bookkeeping rows past their retention (0 keeps them).

    Retention defaults come from NEWSFLOW_FETCHES_RETENTION_DAYS, NEWSFLOW_QUARANTINE_RETENTION_DAYS and
    NEWSFLOW_DQ_RESULTS_RETENTION_DAYS (also that of `run_writes`, what each run wrote: it serves the runs'
    checks). Articles and duplicates are never pruned.
    """
    logger = get_run_logger()
    settings = get_settings()
    url = resolve_warehouse_url(settings, warehouse_url)
    run_id = f"maintenance-{flow_run.id or 'local'}"
    days = {"fetches": fetches_retention_days, "quarantine": quarantine_retention_days,
            "dq_results": dq_results_retention_days}
    days = {table: getattr(settings, f"{table}_retention_days") if value is None else value
            for table, value in days.items()}
    days["run_writes"] = days["dq_results"]  # what a run wrote serves its checks: kept as long as their results

    crashed = crashed_task(url)  # (its process gone, its heartbeat stopped, or its Prefect flow run over)
    if crashed:
        logger.warning("Marked %d runs crashed: %s.", len(crashed), ", ".join(crashed))
    abandoned = abandon_task(url, stale_run_hours)
    if abandoned:
        logger.warning("Marked %d runs abandoned: still 'running' after %g hours.", abandoned, stale_run_hours)
    pruned = {table: prune_task(url, table, days[table]) for table in RETAINED}
    for table, n in pruned.items():
        logger.info("Pruned %d rows of %s older than %d days.", n, table, days[table])
    results = check_task(url, run_id)

    create_table_artifact(key="warehouse-checks", table=[
        {"check": r["expectation"], "severity": r["severity"], "result": "pass" if r["success"] else "FAIL",
         "unexpected": r["unexpected_count"]} for r in results], description="Warehouse integrity checks")
    create_markdown_artifact(key="maintenance-summary", markdown="# Warehouse maintenance\n\n"
                             + "\n".join(f"- {table}: {n} rows older than {days[table]} days deleted"
                                         for table, n in pruned.items())
                             + f"\n- runs marked crashed: {len(crashed)}\n- runs marked abandoned: {abandoned}\n")
    failed = [r["expectation"] for r in results if not r["success"] and r["severity"] == "critical"]
    if failed:
        raise StageFailed(f"warehouse integrity checks failed: {'; '.join(failed)}")
    for r in results:
        if not r["success"]:
            logger.warning("Warehouse check '%s' found %d rows.", r["expectation"], r["unexpected_count"])
    logger.info("Warehouse checks passed (%d checks).", len(results))
    return {"pruned": pruned, "crashed": crashed, "abandoned": abandoned, "checks": results}
