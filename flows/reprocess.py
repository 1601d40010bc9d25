"""The `reprocess-news` flow: clean -> deduplicate -> load again from the raw store, without fetching. For
when the clean stage improved, a load failed, or records were quarantined by mistake.

Which documents: every stored page, or those of some sources, some URLs, fetched since a time, or held
back in quarantine (optionally by one stage) and not loaded since: after a fix (a suite threshold, a
better extractor), `newsflow reprocess --quarantined` releases them.

The stored pages are read a batch at a time, each batch checked by the fetch suite and streamed into the
same batches as `ingest-news` (flows/batches.py): the run holds a few batches, never the raw store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.utilities.annotations import opaque

from flows.batches import Arrival, process_documents
from flows.checks import RunChecks, gate_stored
from flows.config import warehouse_url as resolve_warehouse_url
from flows.ingest import end_run, fail_run, start
from flows.ledger import Ledger
from flows.resources import RunResources
from flows.stages import STAGE_TASK, check_task
from tasks.rawstore import select_raw_page, to_document
from tasks.records import Document
from tasks.settings import Settings, get_settings
from tasks.warehouse import get_engine, held_back_urls


@task(name="read raw store", task_run_name="read raw store after row {after_id}", **STAGE_TASK)
def read_raw_task(settings: Settings, sources: list[str] | None, urls: list[str] | None, since: datetime | None,
                  after_id: int) -> tuple[list[Document], int | None]:
    """A batch of stored pages after row `after_id`, and the row the next batch starts after (None: the end)."""
    page = select_raw_page(get_engine(settings.warehouse_url), sources, urls, since, after_id=after_id,
                           limit=settings.batch_size)
    return [to_document(raw) for _, raw in page], page[-1][0] if page else None


def stored_documents(checks: RunChecks, ledger: Ledger, sources: list[str] | None, urls: list[str] | None,
                     since: datetime | None) -> Iterator[Arrival]:
    """The stored pages that pass the fetch checks, a batch at a time."""
    after_id: int | None = 0
    while after_id is not None:
        documents, after_id = read_raw_task(checks.settings, sources, urls, since, after_id)
        if documents:
            checks.prepare()
            label = f"raw store after row {after_id}"
            passed = check_task("fetch", label, gate_stored, [opaque(documents), opaque(checks), opaque(ledger), label])
            ledger.took("fetch", len(documents), len(passed))
            yield Arrival(passed)


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
    if quarantined:
        held_back = held_back_urls(get_engine(settings.warehouse_url), stage)
        urls = [u for u in held_back if urls is None or u in urls]
        logger.info("%d quarantined records not loaded since%s", len(held_back), f" (stage {stage})" if stage else "")
    checks, ledger = start(settings)
    with RunResources(settings) as resources:  # its cleaning processes and connections: closed at the end
        try:
            process_documents(stored_documents(checks, ledger, sources, urls, since), checks, ledger, resources)
        except Exception as exc:
            fail_run(checks, ledger, exc)
            raise
        end_run(checks, ledger)
    logger.info("reprocess run %s completed: %s", checks.run_id, ledger.stage_counts())
    return {"run_id": checks.run_id, **ledger.as_dict()}
