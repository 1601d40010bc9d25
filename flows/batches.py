"""A run's batches, one after another: clean (mapped over chunks) -> clean check -> dedupe -> dedupe check
-> the stages added between dedupe and load (flows/pipeline.py) -> load, then the warehouse checks. Shared
by `ingest-news` (its fetched documents streamed in) and `reprocess-news` (documents read back from the
raw store).

Each task run of a batch is chained to the one before it (its result passed on `opaque()`, or waited for),
and a batch's dedupe to the previous batch's load: Prefect records the chain, and the UI draws each batch
as a line of task runs. Cleaning runs ahead in worker processes (`flows.scale.clean_batches`: up to
`CLEAN_AHEAD` batches) while this thread deduplicates, checks and loads the batch before: the ordered
stages see every earlier batch in the warehouse.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from prefect import get_run_logger
from prefect.utilities.annotations import opaque

from flows import pipeline
from flows.checks import RunChecks, gate_added, gate_cleaned, gate_deduplicated, gate_warehouse
from flows.fetching import FetchChecks
from flows.ledger import Ledger
from flows.scale import CleanedBatch, clean_batches
from flows.stages import after, dedupe_task, load_task, orphan_rejections, record_task
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

    work: Iterator[tuple[str, CleanedBatch, list[Document]]] = (
        (f"batch {n}", cleaned, arrived.popleft())
        for n, cleaned in enumerate(clean_batches(arriving(), settings), start=1))
    if ledger.articles:
        work = chain([("spooled articles", CleanedBatch(CleanOutcome(articles=ledger.articles), []), [])], work)
    previous_load: LoadOutcome | None = None
    for label, cleaned, batch in work:
        fetch_checks.settle()  # the fetch checks of this batch's documents ran ...
        outcome, batch = fetch_checks.drop_quarantined(cleaned.outcome, batch)  # ... what they held back stops
        spooled = label == "spooled articles"
        ledger.unloaded(list(outcome.articles) if spooled else [], ledger.copies if spooled else [])
        articles, clean_check = clean_checked(outcome, batch, checks, label, ledger, upstream=cleaned.runs)
        deduped, valid, last = deduplicated(articles, checks, label, ledger, upstream=[clean_check, previous_load])
        ledger.release(batch)  # cleaned and checked: from here on the spool keeps its articles
        for stage in pipeline.added_stages(pipeline.PIPELINE):
            ledger.unloaded(valid, list(deduped.duplicates))
            valid, last = added_stage(stage, valid, checks, label, ledger, upstream=[last])
        ledger.unloaded(valid, list(deduped.duplicates))
        loaded = load(valid, deduped, checks, label, ledger, upstream=[last])
        ledger.unloaded([], [])
        if loaded is not None:
            previous_load = loaded
            get_run_logger().info("%s: %d documents -> %d articles, %d duplicates dropped, %d loaded", label,
                                  len(batch), len(articles), len(deduped.duplicates), loaded.stats.passed_on)
    gate_warehouse(checks, ledger)


def clean_checked(cleaned: CleanOutcome, batch: list[Document], checks: RunChecks, label: str, ledger: Ledger,
                  upstream: list[Any]) -> tuple[list[Article], Any]:
    """The batch's clean rejections recorded, then its check (after its clean task runs); the articles that go
    on, and what the next task run comes after."""
    if cleaned.rejections:
        record_task(checks.settings, checks.run_id, f"clean {label}", rejections=opaque(cleaned.rejections))
    ledger.quarantined("clean", len(cleaned.rejections))
    articles, verdict = gate_cleaned(cleaned, checks, label, ledger, upstream=upstream)
    # (spooled articles come without their documents: they were cleaned by an earlier run)
    ledger.took("clean", len(batch) or len(cleaned.articles) + len(cleaned.rejections), len(articles))
    return articles, verdict


def deduplicated(articles: list[Article], checks: RunChecks, label: str, ledger: Ledger,
                 upstream: list[Any]) -> tuple[DedupOutcome, list[Article], Any]:
    """Dedupe (after the clean check and the previous batch's load), then its check."""
    deduped = dedupe_task(opaque(articles), checks.settings, label, wait_for=after(*upstream))
    deduped.duplicates += ledger.copies  # copies dropped before the articles were spooled
    ledger.dropped("dedupe", len(articles) - len(deduped.kept))
    valid, verdict = gate_deduplicated(deduped, checks, label, ledger)
    ledger.took("dedupe", len(articles), len(valid))
    return deduped, valid, verdict or deduped


def added_stage(stage: pipeline.Stage, articles: list[Article], checks: RunChecks, label: str, ledger: Ledger,
                upstream: list[Any]) -> tuple[list[Article], Any]:
    """A stage added between dedupe and load: its task, its rejections recorded, then its own check."""
    if not articles:
        return [], None
    result: StageResult[Article] = stage.task(opaque(articles), checks.settings, label, wait_for=after(*upstream))
    if result.rejections:
        record_task(checks.settings, checks.run_id, f"{stage.name} {label}", rejections=opaque(result.rejections))
    ledger.quarantined(stage.name, len(result.rejections))
    passed, verdict = gate_added(stage, result, checks, label, ledger)
    ledger.took(stage.name, len(articles), len(passed))
    return passed, verdict or result


def load(articles: list[Article], deduped: DedupOutcome, checks: RunChecks, label: str, ledger: Ledger,
         upstream: list[Any]) -> LoadOutcome | None:
    """Load a batch (retried with backoff: the warehouse may be briefly away); copies pointing at an article
    that was not loaded are quarantined."""
    settings = checks.settings
    if not articles and not deduped.duplicates:
        ledger.took("load", 0, 0)
        return None
    loaded = load_task.with_options(retries=settings.load_retries, retry_delay_seconds=[
        settings.load_retry_delay * 2 ** attempt for attempt in range(settings.load_retries)])(
        opaque(articles), opaque(deduped), settings, checks.run_id, label, wait_for=after(*upstream))
    ledger.loaded(len(articles), loaded.stats.counts, len(loaded.orphans))
    ledger.duplicates += loaded.stats.counts["duplicates"]
    ledger.loaded_urls.update(loaded.article_ids)
    if loaded.orphans:
        record_task(settings, checks.run_id, f"load {label}", rejections=opaque(orphan_rejections(loaded.orphans)))
    return loaded
