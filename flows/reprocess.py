"""The `reprocess-news` flow: clean -> deduplicate -> validate -> load again from the raw store, without
fetching. For when the clean stage improved, a load failed, or records were quarantined by mistake.

Which documents: every stored page, or those of some sources, some URLs, fetched since a time, or held
back in quarantine (optionally by one stage) and not loaded since: after a fix (a suite threshold, a
better extractor), `newsflow reprocess --quarantined` releases them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.config import warehouse_url as resolve_warehouse_url
from flows.ingest import RunReport, _gate, end_run, process_documents
from flows.stages import STAGE_TASK
from tasks.frames import documents_frame
from tasks.rawstore import select_raw, to_document
from tasks.records import Document
from tasks.settings import Settings, get_settings
from tasks.warehouse import get_engine, held_back_urls, start_run


@task(name="read raw store", **STAGE_TASK)
def raw_documents_task(settings: Settings, sources: list[str] | None, urls: list[str] | None,
                       since: datetime | None, quarantined: bool = False, stage: str | None = None) -> list[Document]:
    engine = get_engine(settings.warehouse_url)
    if quarantined:
        held_back = held_back_urls(engine, stage)
        urls = [u for u in held_back if urls is None or u in urls]
        get_run_logger().info("%d quarantined records not loaded since%s", len(held_back),
                              f" (stage {stage})" if stage else "")
    raws = select_raw(engine, sources=sources, urls=urls, since=since)
    return [to_document(raw) for raw in raws]


@flow(name="reprocess-news")
def reprocess_news(sources: list[str] | None = None, urls: list[str] | None = None, since: datetime | None = None,
                   warehouse_url: str | None = None, quarantined: bool = False,
                   stage: str | None = None) -> dict[str, Any]:
    """Re-run clean -> load over stored raw pages (all, or those matching every filter given).

    `quarantined`: only records held back in quarantine (by `stage`, if given) and not loaded since.
    """
    logger = get_run_logger()
    settings = get_settings()
    settings = settings.model_copy(update={"warehouse_url": resolve_warehouse_url(settings, warehouse_url)})
    engine = get_engine(settings.warehouse_url)
    run_id = str(flow_run.id or uuid.uuid4())
    start_run(engine, run_id, flow_run.id)
    report = RunReport()
    try:
        documents = raw_documents_task(settings, sources, urls, since, quarantined, stage)
        logger.info("reprocessing %d stored documents", len(documents))
        report.stage("fetch", len(documents), len(documents))
        documents = _gate("fetch", documents, lambda docs: {"records": documents_frame(docs, via_http=False)},
                          settings, run_id, "raw store", report)
        report.counts["fetch_out"] = len(documents)
        process_documents(documents, settings, run_id, engine, report)
    except Exception as exc:
        end_run(engine, run_id, report, settings, exc)
        raise
    end_run(engine, run_id, report, settings)
    logger.info("reprocess run %s completed: %s", run_id, dict(report.counts))
    return {"run_id": run_id, **report.as_dict()}
