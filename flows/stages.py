"""Thin Prefect task wrappers around the stage functions in `tasks/`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from tasks.clean import CleanOutcome, clean_documents
from tasks.crawlstate import WarehouseState, store_validators
from tasks.dedupe import DedupOutcome, deduplicate
from tasks.fetch import FetchOutcome, fetch_source
from tasks.load import LoadOutcome, load_batch
from tasks.rawstore import store_raw
from tasks.records import Article, Duplicate, FetchAttempt, Rejection
from tasks.settings import Settings
from tasks.sources import Source
from tasks.spool import warehouse_unavailable
from tasks.validate import Validator, Verdict
from tasks.warehouse import WarehouseIndex, get_engine, record_dq_results, record_fetches, record_rejections

# Inputs are large record lists: hashing them for Prefect's cache would cost more than the work.
STAGE_TASK = {"cache_policy": NONE, "persist_result": False}


@lru_cache(maxsize=4)
def validator_for(expectations_dir: Path) -> Validator:
    """One Great Expectations context per process (building it costs about a second)."""
    return Validator(expectations_dir)


@task(name="fetch", task_run_name="fetch {source.name}", **STAGE_TASK)
def fetch_task(source: Source, settings: Settings) -> FetchOutcome:
    """Fetch one source against what the warehouse already knows; keep raw bodies and validators."""
    engine = get_engine(settings.warehouse_url)
    outcome = fetch_source(source, settings, WarehouseState(engine))
    try:
        store_raw(engine, outcome.raw)
        store_validators(engine, outcome.validators)
    except Exception as exc:
        if not warehouse_unavailable(exc):
            raise
        # The warehouse went away: the documents still reach the flow, which spools what it cannot load.
        get_run_logger().warning("raw bodies of %s not stored: warehouse unavailable", source.name)
    return outcome


@task(name="clean", task_run_name="clean {label}", **STAGE_TASK)
def clean_task(documents: Sequence[Any], label: str) -> CleanOutcome:
    return clean_documents(documents)


@task(name="dedupe", task_run_name="dedupe {label}", **STAGE_TASK)
def dedupe_task(articles: Sequence[Article], settings: Settings, label: str) -> DedupOutcome:
    return deduplicate(articles, WarehouseIndex(get_engine(settings.warehouse_url)), settings)


@task(name="validate", task_run_name="check {stage} {label}", **STAGE_TASK)
def validate_task(stage: str, frame: Any, settings: Settings, label: str) -> Verdict:
    return validator_for(settings.expectations_dir).validate(stage, frame)


@task(name="load", task_run_name="load {label}", retries=2, retry_delay_seconds=[2, 10], **STAGE_TASK)
def load_task(articles: Sequence[Article], outcome: DedupOutcome, settings: Settings, run_id: str,
              label: str) -> LoadOutcome:
    kept = {a.canonical_url for a in articles}
    fingerprints = {url: p for url, p in outcome.fingerprints.items() if url in kept}
    duplicates = [d for d in outcome.duplicates if d.kept_article_id or d.kept_url in kept]
    return load_batch(get_engine(settings.warehouse_url), run_id, articles, fingerprints, duplicates, settings)


@task(name="record", task_run_name="record {what}", retries=2, retry_delay_seconds=2, **STAGE_TASK)
def record_task(settings: Settings, run_id: str, what: str,
                attempts: Sequence[FetchAttempt] = (), rejections: Sequence[Rejection] = (),
                dq_results: Sequence[dict[str, Any]] = ()) -> int:
    engine = get_engine(settings.warehouse_url)
    return (record_fetches(engine, run_id, attempts) + record_rejections(engine, run_id, rejections)
            + record_dq_results(engine, run_id, dq_results))


def quarantine_rows(stage: str, records: Sequence[Any], verdict: Verdict) -> tuple[list[Any], list[Rejection]]:
    """Split a batch by its verdict: rows passing every critical check, and rejections for the rest."""
    passed, rejected = [], []
    for index, record in enumerate(records):
        reasons = verdict.failed_rows.get(index)
        if not reasons:
            passed.append(record)
            continue
        payload = dataclasses.asdict(record)
        payload.pop("html", None)  # raw pages are large; the fetch log and URL identify them
        rejected.append(Rejection(stage, record.source, record.url, reasons, payload))
    return passed, rejected


def orphan_rejections(orphans: Sequence[Duplicate]) -> list[Rejection]:
    return [Rejection("load", d.source, d.url, [f"copy of {d.kept_url}, which was not loaded"],
                      dataclasses.asdict(d)) for d in orphans]
