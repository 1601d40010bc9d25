"""Thin Prefect task wrappers around the stage functions in `tasks/`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import opaque

from flows.run_checks import RunChecks
from tasks.cleaners import CleanerPool
from tasks.crawlstate import state_for, store_file_progress, store_seen, store_validators
from tasks.dedupe import DedupOutcome, deduplicate
from tasks.feeds import Link
from tasks.fetch import FetchOutcome, fetch_links, fetch_source
from tasks.http import HttpSession, Validators
from tasks.load import LoadOutcome, load_batch
from tasks.rawstore import store_raw
from tasks.records import Article, CleanOutcome, Duplicate, FetchAttempt, Rejection
from tasks.settings import Settings
from tasks.sources import Source
from tasks.spool import warehouse_unavailable
from tasks.validate import Verdict
from tasks.warehouse import WarehouseIndex, get_engine, record_dq_results, record_fetches, record_rejections

# Inputs are large record lists: hashing them for Prefect's cache would cost more than the work. The flow
# also passes them `opaque()`, so that Prefect does not walk every record looking for futures (it still
# sees that a value is another task run's result, and draws the edge between the two).
STAGE_TASK = {"cache_policy": NONE, "persist_result": False}
T = TypeVar("T")


def after(*upstream: Any) -> list[Any]:
    """A task run's `wait_for`: the futures and results of the task runs it comes after (None: nothing), so
    that Prefect records them as its upstream runs and the UI draws a batch as a chain. Results are passed
    `opaque()`: Prefect recognises them without walking their records."""
    return [u if isinstance(u, PrefectFuture) else opaque(u) for u in upstream if u is not None]


@task(name="fetch", task_run_name="fetch {source.name}", **STAGE_TASK)
def fetch_task(source: Source, settings: Settings, http: HttpSession | None = None) -> FetchOutcome:
    """Read one source's listing and fetch its first pages (the others are left on `remaining`), against
    what the warehouse already knows; keep raw bodies and validators. `http`: the run's politeness state."""
    engine = get_engine(settings.warehouse_url)
    return _keep(engine, fetch_source(source, settings, state_for(engine, settings.full_refresh),
                                      max_pages=settings.fetch_task_pages, http=http), source, settings)


@task(name="fetch-more", task_run_name="fetch {source.name} part {part}", **STAGE_TASK)
def fetch_more_task(source: Source, links: list[Link], trusted: bool, part: int, settings: Settings,
                    http: HttpSession | None = None) -> FetchOutcome:
    """Fetch a further part of a source's pages (links its `fetch_task` left)."""
    engine = get_engine(settings.warehouse_url)
    return _keep(engine, fetch_links(source, links, settings, state_for(engine, settings.full_refresh), trusted,
                                     http=http), source, settings)


def _keep(engine: Any, outcome: FetchOutcome, source: Source, settings: Settings) -> FetchOutcome:
    """Store what was fetched: raw bodies, the validators for the next run's conditional GETs, how far
    local files were read (the next run goes on from there), and when unchanged pages were seen."""
    try:
        store_raw(engine, outcome.raw, settings.raw_compression_level)
        store_validators(engine, outcome.validators)
        store_file_progress(engine, outcome.progress)
        store_seen(engine, outcome.unchanged)
    except Exception as exc:
        if not warehouse_unavailable(exc):
            raise
        # The warehouse went away: the documents still reach the flow, which spools what it cannot load.
        get_run_logger().warning("raw bodies of %s not stored: warehouse unavailable", source.name)
    # The bodies are stored (or, the warehouse gone, lost either way): the flow needs only the documents,
    # and holding a second copy of every page until the run ends would double its memory.
    outcome.raw = []
    return outcome


@task(name="clean", task_run_name="clean {label}", **STAGE_TASK)
def clean_task(documents: Sequence[Any], label: str, cleaners: CleanerPool | None = None) -> CleanOutcome:
    """Clean a chunk in the run's warm cleaning processes (`cleaners`), or where the task runs (a process
    pool's or a Dask cluster's worker: no time limit there, or cleaning processes of its own)."""
    if cleaners is not None:
        return cleaners.clean(documents)
    from tasks.cleaners import clean_documents  # the parsers are imported only where they run

    return clean_documents(documents)


@task(name="dedupe", task_run_name="dedupe {label}", **STAGE_TASK)
def dedupe_task(articles: Sequence[Article], settings: Settings, label: str) -> DedupOutcome:
    index = WarehouseIndex(get_engine(settings.warehouse_url))
    seen_up_to = index.newest_id()  # before comparing: the load checks again only what came after
    outcome = deduplicate(articles, index, settings)
    outcome.seen_up_to = seen_up_to
    return outcome


def validate(checks: RunChecks, stage: str, tables: Any, label: str, row_sources: Sequence[str] = (),
             already_rejected: Sequence[str] = (), share_column: str = "failed_share",
             suite: str | None = None) -> Verdict:
    """A stage's suite on a batch: the records, then the per-source shares (see Validator.check_batch); the
    results go to dq_results. One validation at a time: the batches in flight share the run's context."""
    with checks.validating:
        verdict = checks.validator().check_batch(stage, tables, label, row_sources, already_rejected,
                                                 share_column, suite)
    record_dq_results(get_engine(checks.settings.warehouse_url), checks.run_id, verdict.results)
    return verdict


@task(name="validate", task_run_name="check {stage} {label}", retries=2, retry_delay_seconds=2, **STAGE_TASK)
def check_task(stage: str, label: str, judge: Callable[..., T], inputs: Sequence[Any]) -> T:
    """A stage's quality check on a batch, one task run: `judge` (a gate of flows/checks.py, or a step of
    flows/batches.py ending in one) with the results of the task runs it comes after. Its inputs are the
    upstream futures, passed `opaque()`: Prefect waits for them and records the edges, without walking
    their records."""
    return judge(*inputs)


@task(name="check-warehouse", task_run_name="check the warehouse", retries=2, retry_delay_seconds=2, **STAGE_TASK)
def check_warehouse_task(checks: RunChecks, counts: dict[str, int]) -> Verdict:
    settings = checks.settings
    verdict = checks.validator().validate_warehouse(settings.warehouse_url, checks.run_id, counts)
    record_dq_results(get_engine(settings.warehouse_url), checks.run_id, verdict.results)
    return verdict


@task(name="data-docs", task_run_name="build data docs", **STAGE_TASK)
def data_docs_task(checks: RunChecks) -> str | None:
    """The run's Great Expectations Data Docs site; the path of its index page."""
    index = checks.validator().build_docs() if checks.validated else None
    return str(index) if index else None


@task(name="load", task_run_name="load {label}", retries=2, retry_delay_seconds=[2, 10], **STAGE_TASK)
def load_task(outcome: DedupOutcome, settings: Settings, run_id: str, label: str) -> LoadOutcome:
    """Load a batch's checked articles (`outcome.kept`) and the copies pointing at them or at stored ones."""
    kept = {a.canonical_url for a in outcome.kept}
    fingerprints = {url: p for url, p in outcome.fingerprints.items() if url in kept}
    duplicates = [d for d in outcome.duplicates if d.kept_article_id or d.kept_url in kept]
    if not outcome.kept and not duplicates:
        return LoadOutcome()  # nothing to write
    return load_batch(get_engine(settings.warehouse_url), run_id, outcome.kept, fingerprints, duplicates, settings,
                      outcome.seen_up_to)


@task(name="record", task_run_name="record {what}", retries=2, retry_delay_seconds=2, **STAGE_TASK)
def record_task(settings: Settings, run_id: str, what: str, attempts: Sequence[FetchAttempt] = (),
                rejections: Sequence[Rejection] = (), validators: dict[str, Validators] | None = None) -> int:
    """Record fetch attempts and rejections; and the validators of listings whose pages are all fetched."""
    engine = get_engine(settings.warehouse_url)
    if validators:
        store_validators(engine, validators)
    return record_fetches(engine, run_id, attempts) + record_rejections(engine, run_id, rejections)


def quarantine_rows(stage: str, records: Sequence[Any], failed_rows: dict[int, list[str]],
                    source_reasons: dict[str, list[str]] | None = None) -> tuple[list[Any], list[Rejection]]:
    """Split a batch: rows passing every critical check, and rejections for failing rows and for every
    row of a failed source. The payload keeps the whole record (a page's body included), so that a
    released row can be re-run without fetching it again."""
    source_reasons = source_reasons or {}
    passed, rejected = [], []
    for index, record in enumerate(records):
        reasons = [*failed_rows.get(index, []), *source_reasons.get(record.source, [])]
        if not reasons:
            passed.append(record)
            continue
        rejected.append(Rejection(stage, record.source, record.url, reasons, dataclasses.asdict(record)))
    return passed, rejected


def orphan_rejections(orphans: Sequence[Duplicate]) -> list[Rejection]:
    return [Rejection("load", d.source, d.url, [f"copy of {d.kept_url}, which was not loaded"],
                      dataclasses.asdict(d)) for d in orphans]
