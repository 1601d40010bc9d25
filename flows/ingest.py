"""The `ingest-news` flow: fetch -> clean -> deduplicate -> load, each stage followed by its quality check
(the stages are listed in flows/pipeline.py). Thin orchestration only: the work is in `tasks/`.

Fetching streams into the batches: sources are fetched a few task runs at a time (flows/fetching.py)
while earlier batches, each a chain of task runs, are cleaned, checked and loaded (flows/batches.py);
nothing waits for, or holds, the whole crawl. What the warehouse does not have when it goes away is
spooled for the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import pipeline
from flows.batches import process_documents
from flows.checks import RunChecks, publish
from flows.config import sources_from_variable
from flows.config import warehouse_url as resolve_warehouse_url
from flows.fetching import fetched
from flows.ledger import Ledger
from flows.resources import RunResources
from tasks.localfiles import with_sources_folder
from tasks.settings import Settings, get_settings
from tasks.sources import SourceUnavailable, resolve_sources
from tasks.spool import SpoolFile, discard, read_spool, warehouse_unavailable, write_spool
from tasks.validate import StageFailed
from tasks.warehouse import WarehouseError, finish_run, get_engine, safe_url, start_run


def start(settings: Settings, spooled: Sequence[SpoolFile] = ()) -> tuple[RunChecks, Ledger]:
    """Record the run's start; its checks and its ledger (of every stage in the pipeline)."""
    run_id = str(flow_run.id or uuid.uuid4())
    start_run(get_engine(settings.warehouse_url), run_id, flow_run.id)
    return RunChecks(settings, run_id), Ledger(pipeline.stage_names(pipeline.PIPELINE), spooled)


def end_run(checks: RunChecks, ledger: Ledger, error: BaseException | None = None) -> None:
    """Record how the run ended and publish its reports. A run with failed sources ends failed (raises
    StageFailed, or SourceUnavailable when sources only yielded nothing) after the others were loaded: loud,
    naming each source and expectation, path or URL."""
    message = f"{type(error).__name__}: {error}" if error else "; ".join(ledger.unavailable + ledger.failures)
    try:
        finish_run(get_engine(checks.settings.warehouse_url), checks.run_id, "failed" if message else "completed",
                   ledger.as_dict(), message or None, dict(ledger.deferred_sources), ledger.stage_counts())
    finally:
        publish(ledger, checks, pipeline.PIPELINE)
    if message and error is None:
        raise (StageFailed if ledger.failures else SourceUnavailable)(message)


def fail_run(checks: RunChecks, ledger: Ledger, error: Exception) -> None:
    """End a run that raised: recorded as failed if the warehouse still answers; the error goes on."""
    try:
        end_run(checks, ledger, error)
    except Exception as unrecorded:  # the warehouse is gone: the run's own failure is what matters
        get_run_logger().warning("could not record the failed run: %s", type(unrecorded).__name__)


def keep_for_next_run(checks: RunChecks, ledger: Ledger, spooled: list[SpoolFile],
                      error: BaseException) -> WarehouseError:
    """Spool what is not loaded (new file first, then the ones this run took) and say so in one line."""
    settings = checks.settings
    path = write_spool(settings, checks.run_id, ledger.documents, ledger.articles, ledger.copies)
    discard(spooled)
    reason = (str(error).splitlines() or [type(error).__name__])[0]
    kept = (f"{len(ledger.articles)} cleaned articles and {len(ledger.documents)} fetched documents are kept "
            f"in {path}; the next run loads them first" if path else "nothing was pending")
    return WarehouseError(f"warehouse {safe_url(settings.warehouse_url)} unavailable during the run "
                          f"({type(error).__name__}: {reason}); {kept}")


def _run_name() -> str:
    """'ingest sources.yaml', 'full refresh of variable newsflow-sources', ...: what the run reads."""
    parameters = flow_run.parameters or {}
    if parameters.get("sources_file"):
        what = Path(parameters["sources_file"]).name
    elif parameters.get("sources"):
        what = ", ".join(str(s.get("name", "?")) for s in parameters["sources"][:3])
    else:
        what = f"variable {parameters.get('sources_variable') or get_settings().sources_variable}"
    return f"{'full refresh of' if parameters.get('full_refresh') else 'ingest'} {what}"


@flow(name="ingest-news", flow_run_name=_run_name)
def ingest_news(sources_file: str | None = None, sources: list[dict[str, Any]] | None = None,
                warehouse_url: str | None = None, sources_variable: str | None = None,
                full_refresh: bool = False) -> dict[str, Any]:
    """Ingest news from the given sources into the warehouse.

    Sources: a YAML file, an inline list, or else the Prefect Variable `sources_variable`
    (default NEWSFLOW_SOURCES_VARIABLE). `full_refresh` re-fetches what earlier runs already have.
    """
    logger = get_run_logger()
    settings = get_settings()
    settings = settings.model_copy(update={"warehouse_url": resolve_warehouse_url(settings, warehouse_url),
                                           "full_refresh": full_refresh or settings.full_refresh})
    if not sources_file and not sources:
        sources = sources_from_variable(sources_variable or settings.sources_variable)
    specs = resolve_sources(sources_file, sources)  # a wrong file fails here, before any fetch
    settings = with_sources_folder(settings, sources_file)  # local files may be read from beside it
    spooled = read_spool(settings)  # what earlier runs could not load comes first
    if spooled:
        logger.info("taking %d spooled file(s) that earlier runs could not load", len(spooled))
    checks, ledger = start(settings, spooled)
    with RunResources(settings) as resources:  # its cleaning processes, HTTP state, connections: closed at the end
        try:
            process_documents(fetched(specs, checks, ledger, resources), checks, ledger, resources)
        except Exception as exc:
            if not warehouse_unavailable(exc):
                fail_run(checks, ledger, exc)
                raise
            failure = keep_for_next_run(checks, ledger, spooled, exc)
            logger.error("%s", failure)
            fail_run(checks, ledger, failure)
            raise failure from None
        discard(spooled)  # loaded by this run
        end_run(checks, ledger)
    logger.info("run %s completed: %s", checks.run_id, ledger.stage_counts())
    return {"run_id": checks.run_id, **ledger.as_dict()}
