"""A run's batches, one after another: clean -> clean check -> dedupe -> dedupe check -> the stages added
between dedupe and load (flows/pipeline.py) -> load, then the warehouse checks. Shared by `ingest-news`
(its fetched documents streamed in) and `reprocess-news` (documents read back from the raw store).

Cleaning runs ahead in worker processes (`flows.scale.clean_batches`: up to `CLEAN_AHEAD` batches) while
this thread deduplicates, checks and loads the batch before: the ordered stages see every earlier batch
in the warehouse.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from prefect import get_run_logger
from prefect.utilities.annotations import quote

from flows import pipeline
from flows.checks import RunChecks, gate_added, gate_cleaned, gate_deduplicated, gate_warehouse
from flows.fetching import FetchChecks
from flows.ledger import Ledger
from flows.scale import clean_batches
from flows.stages import dedupe_task, load_task, orphan_rejections, record_task
from tasks.clean import CleanOutcome
from tasks.dedupe import DedupOutcome
from tasks.load import LoadOutcome
from tasks.records import Article, Document, StageResult


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Batches of `size` as the items arrive (the last one shorter); none when there is nothing."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= max(1, size):
            yield batch
            batch = []
    if batch:
        yield batch


def process_documents(documents: Iterable[Document], checks: RunChecks, ledger: Ledger,
                      fetch_checks: FetchChecks | None = None) -> None:
    """Every batch of `documents` through the pipeline, in order; spooled cleaned articles first, as their
    own batch. The ledger holds what is not loaded yet."""
    settings = checks.settings
    fetch_checks = fetch_checks or FetchChecks()
    arrived: deque[list[Document]] = deque()

    def arriving() -> Iterator[list[Document]]:
        for batch in _batches(documents, settings.batch_size):
            ledger.hold(batch)
            arrived.append(batch)
            yield batch

    work: Iterator[tuple[str, CleanOutcome, list[Document]]] = (
        (f"batch {n}", cleaned, arrived.popleft())
        for n, cleaned in enumerate(clean_batches(arriving(), settings), start=1))
    if ledger.articles:
        work = chain([("spooled articles", CleanOutcome(articles=ledger.articles), [])], work)
    for label, cleaned, batch in work:
        fetch_checks.settle()  # the fetch checks of this batch's documents ran ...
        cleaned, batch = fetch_checks.drop_quarantined(cleaned, batch)  # ... what they held back goes no further
        spooled = label == "spooled articles"
        ledger.unloaded(list(cleaned.articles) if spooled else [], ledger.copies if spooled else [])
        articles = clean_checked(cleaned, batch, checks, label, ledger)
        deduped, valid = deduplicated(articles, checks, label, ledger)
        ledger.release(batch)  # cleaned and checked: from here on the spool keeps its articles
        for stage in pipeline.added_stages(pipeline.PIPELINE):
            ledger.unloaded(valid, list(deduped.duplicates))
            valid = added_stage(stage, valid, checks, label, ledger)
        ledger.unloaded(valid, list(deduped.duplicates))
        loaded = load(valid, deduped, checks, label, ledger)
        ledger.unloaded([], [])
        if loaded is not None:
            get_run_logger().info("%s: %d documents -> %d articles, %d duplicates dropped, %d loaded", label,
                                  len(batch), len(articles), len(deduped.duplicates), loaded.stats.passed_on)
    gate_warehouse(checks, ledger)


def clean_checked(cleaned: CleanOutcome, batch: list[Document], checks: RunChecks, label: str,
                  ledger: Ledger) -> list[Article]:
    if cleaned.rejections:
        record_task(checks.settings, checks.run_id, f"clean {label}", rejections=quote(cleaned.rejections))
    ledger.quarantined("clean", len(cleaned.rejections))
    articles = gate_cleaned(cleaned, checks, label, ledger)
    ledger.took("clean", len(batch), len(articles))
    return articles


def deduplicated(articles: list[Article], checks: RunChecks, label: str,
                 ledger: Ledger) -> tuple[DedupOutcome, list[Article]]:
    deduped = dedupe_task(quote(articles), checks.settings, label)
    deduped.duplicates += ledger.copies  # copies dropped before the articles were spooled
    ledger.dropped("dedupe", len(articles) - len(deduped.kept))
    valid = gate_deduplicated(deduped, checks, label, ledger)
    ledger.took("dedupe", len(articles), len(valid))
    return deduped, valid


def added_stage(stage: pipeline.Stage, articles: list[Article], checks: RunChecks, label: str,
                ledger: Ledger) -> list[Article]:
    """A stage added between dedupe and load: its task, its rejections recorded, then its own check."""
    if not articles:
        return []
    result: StageResult[Article] = stage.task(quote(articles), checks.settings, label)
    if result.rejections:
        record_task(checks.settings, checks.run_id, f"{stage.name} {label}", rejections=quote(result.rejections))
    ledger.quarantined(stage.name, len(result.rejections))
    passed = gate_added(stage, result.records, checks, label, ledger)
    ledger.took(stage.name, len(articles), len(passed))
    return passed


def load(articles: list[Article], deduped: DedupOutcome, checks: RunChecks, label: str,
         ledger: Ledger) -> LoadOutcome | None:
    """Load a batch (retried with backoff: the warehouse may be briefly away); copies pointing at an article
    that was not loaded are quarantined."""
    settings = checks.settings
    if not articles and not deduped.duplicates:
        ledger.took("load", 0, 0)
        return None
    loaded = load_task.with_options(retries=settings.load_retries, retry_delay_seconds=[
        settings.load_retry_delay * 2 ** attempt for attempt in range(settings.load_retries)])(
        quote(articles), quote(deduped), settings, checks.run_id, label)
    ledger.took("load", len(articles), loaded.stats.passed_on)
    ledger.duplicates += loaded.stats.counts["duplicates"]
    ledger.loaded_urls.update(loaded.article_ids)
    if loaded.orphans:
        rejected = orphan_rejections(loaded.orphans)
        record_task(settings, checks.run_id, f"load {label}", rejections=quote(rejected))
        ledger.quarantined("load", len(rejected))
    return loaded
