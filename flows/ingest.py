"""The `ingest-news` flow: fetch -> clean -> deduplicate -> validate -> load, with quality checks
after every stage. Thin orchestration only: the work is in `tasks/`."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from flows.config import sources_from_variable
from flows.config import warehouse_url as resolve_warehouse_url
from flows.scale import StageProgress, clean_batches
from flows.stages import (
    dedupe_task,
    fetch_task,
    load_task,
    orphan_rejections,
    quarantine_rows,
    record_task,
    validate_task,
)
from tasks.clean import CleanOutcome
from tasks.frames import articles_frame, documents_frame, loaded_frame
from tasks.records import Article, Document, Duplicate
from tasks.settings import Settings, get_settings
from tasks.sources import resolve_sources
from tasks.spool import SpoolFile, discard, read_spool, warehouse_unavailable, write_spool
from tasks.validate import StageFailed, Verdict
from tasks.warehouse import WarehouseError, finish_run, get_engine, safe_url, start_run


class RunReport:
    """Counts of what each stage took in and passed on, kept as the run goes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.quarantined_by_stage: Counter[str] = Counter()
        self.verdicts: list[Verdict] = []

    def stage(self, name: str, taken_in: int, passed_on: int) -> None:
        self.counts[f"{name}_in"] += taken_in
        self.counts[f"{name}_out"] += passed_on

    def quarantined(self, stage: str, n: int) -> None:
        self.quarantined_by_stage[stage] += n
        self.counts["quarantined"] += n

    def as_dict(self) -> dict[str, Any]:
        return {**dict(self.counts), "quarantined_by_stage": dict(self.quarantined_by_stage)}


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), max(1, size))] or [[]]


def _gate(stage: str, records: list[Any], frame: Any, settings: Settings, run_id: str, label: str,
          report: RunReport) -> list[Any]:
    """Run the stage's suite; quarantine rows failing critical checks; fail on batch-level failures."""
    verdict = validate_task(stage, frame, settings, label)
    report.verdicts.append(verdict)
    passed, rejected = quarantine_rows(stage, records, verdict)
    record_task(settings, run_id, f"{stage} quality {label}", rejections=rejected, dq_results=verdict.results)
    report.quarantined(stage, len(rejected))
    if verdict.batch_failures:
        raise StageFailed(f"{stage} stage failed critical checks for {label}: {'; '.join(verdict.batch_failures)}")
    if records and not passed:
        raise StageFailed(f"{stage} stage: every record of {label} failed critical checks "
                          f"({'; '.join(sorted({r for rs in verdict.failed_rows.values() for r in rs})[:3])})")
    return passed


def _publish(report: RunReport, run_id: str) -> None:
    table = [{"stage": v.stage, "expectation": r["expectation"], "severity": r["severity"],
              "result": "pass" if r["success"] else "FAIL", "unexpected": r["unexpected_count"]}
             for v in report.verdicts for r in v.results]
    if table:
        create_table_artifact(key="data-quality", table=table, description=f"Expectations of run {run_id}")
    counts = report.counts
    lines = ["| stage | in | out |", "|---|---|---|"]
    lines += [f"| {s} | {counts[s + '_in']} | {counts[s + '_out']} |"
              for s in ("fetch", "clean", "dedupe", "validate", "load")]
    create_markdown_artifact(
        key="run-summary",
        markdown=f"# Run {run_id}\n\n" + "\n".join(lines)
        + f"\n\nQuarantined: {counts['quarantined']} · duplicates dropped: {counts['duplicates']}\n",
        description="What each stage took in and passed on",
    )


class Pending:
    """What the run holds that the warehouse does not have yet: spooled if the warehouse goes away."""

    def __init__(self, spooled: list[SpoolFile]) -> None:
        self.documents: list[Document] = [d for f in spooled for d in f.documents]
        self.articles: list[Article] = [a for f in spooled for a in f.articles]
        self.duplicates: list[Duplicate] = [d for f in spooled for d in f.duplicates]


def _keep_for_next_run(settings: Settings, run_id: str, pending: Pending, spooled: list[SpoolFile],
                       error: BaseException) -> WarehouseError:
    """Spool what is not loaded (new file first, then the ones this run took) and say so in one line."""
    path = write_spool(settings, run_id, pending.documents, pending.articles, pending.duplicates)
    discard(spooled)
    reason = (str(error).splitlines() or [type(error).__name__])[0]
    kept = (f"{len(pending.articles)} cleaned articles and {len(pending.documents)} fetched documents are kept "
            f"in {path}; the next run loads them first" if path else "nothing was pending")
    return WarehouseError(f"warehouse {safe_url(settings.warehouse_url)} unavailable during the run "
                          f"({type(error).__name__}: {reason}); {kept}")


def process_documents(documents: list[Document], settings: Settings, run_id: str, engine: Any,
                      report: RunReport, pending: Pending | None = None) -> None:
    """Clean -> dedupe -> validate -> load, with the quality gates; shared by `ingest-news` and
    `reprocess-news` (which feeds it documents rebuilt from the raw store). `pending` tracks what is
    not loaded yet, its spooled cleaned articles going first as their own batch."""
    logger = get_run_logger()
    pending = pending or Pending([])
    # Clean -> dedupe -> validate -> load, batch by batch: later batches see earlier ones loaded.
    # Cleaning is CPU-bound: all batches go to the process pool (or Dask) at once, in small chunks.
    batches = _batches(documents, settings.batch_size)
    cleaned_batches = iter(clean_batches(batches, settings))
    # Spooled cleaned articles first, as their own batch.
    work: list[tuple[str, list[Document], list[Article] | None]] = (
        [("spooled articles", [], pending.articles)] if pending.articles else [])
    work += [(f"batch {n}", b, None) for n, b in enumerate(batches, start=1)]
    for index, (label, batch, precleaned) in enumerate(work):
        pending.documents = [d for _, b, _ in work[index:] for d in b]
        pending.articles = list(precleaned or [])
        pending.duplicates = pending.duplicates if precleaned else []
        cleaned = next(cleaned_batches) if precleaned is None else CleanOutcome(articles=precleaned)
        record_task(settings, run_id, f"clean {label}", rejections=cleaned.rejections)
        report.quarantined("clean", len(cleaned.rejections))
        articles = _gate("clean", cleaned.articles, articles_frame(cleaned.articles), settings, run_id,
                         label, report) if cleaned.articles else []
        report.stage("clean", len(batch), len(articles))

        deduped = dedupe_task(articles, settings, label)
        deduped.duplicates += pending.duplicates  # copies dropped before the articles were spooled
        report.stage("dedupe", len(articles), len(deduped.kept))
        valid = _gate("dedupe", deduped.kept, articles_frame(deduped.kept), settings, run_id, label,
                      report) if deduped.kept else []
        report.stage("validate", len(deduped.kept), len(valid))

        # Cleaned and checked: if the load fails for good, these are what the spool keeps.
        pending.documents = [d for _, b, _ in work[index + 1:] for d in b]
        pending.articles, pending.duplicates = valid, list(deduped.duplicates)
        loaded = load_task.with_options(retries=settings.load_retries, retry_delay_seconds=[
            settings.load_retry_delay * 2 ** attempt for attempt in range(settings.load_retries)])(
            valid, deduped, settings, run_id, label)
        pending.articles, pending.duplicates = [], []
        report.stage("load", len(valid), loaded.stats.passed_on)
        report.counts["duplicates"] += loaded.stats.counts["duplicates"]
        if loaded.orphans:
            rejected = orphan_rejections(loaded.orphans)
            record_task(settings, run_id, f"load {label}", rejections=rejected)
            report.quarantined("load", len(rejected))
        logger.info("%s: %d documents -> %d articles, %d duplicates dropped, %d loaded", label,
                    len(batch), len(articles), len(deduped.duplicates), loaded.stats.passed_on)

    pending.documents = []
    frame = loaded_frame(engine, run_id)
    _gate("load", [], frame, settings, run_id, "warehouse", report)


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
    engine = get_engine(settings.warehouse_url)
    run_id = str(flow_run.id or uuid.uuid4())
    start_run(engine, run_id, flow_run.id)
    report = RunReport()
    spooled = read_spool(settings)  # what earlier runs could not load comes first
    if spooled:
        logger.info("taking %d spooled file(s) that earlier runs could not load", len(spooled))
    pending = Pending(spooled)
    try:
        # Fetch: every source in parallel (I/O bound), every attempt recorded.
        documents: list[Document] = list(pending.documents)
        fetch_progress = StageProgress("fetch", len(specs), "sources")
        outcomes = []
        for future in [fetch_task.submit(s, settings) for s in specs]:
            outcomes.append(future.result())
            fetch_progress.advance()
        pending.documents += [d for outcome in outcomes for d in outcome.documents]  # spooled if need be
        for outcome in outcomes:
            record_task(settings, run_id, f"fetch {outcome.source}", attempts=outcome.attempts,
                        rejections=outcome.rejections)
            report.stage("fetch", outcome.stats.taken_in, len(outcome.documents))
            report.quarantined("fetch", len(outcome.rejections))
            logger.info("%s: fetched %d documents, %d attempts, %d rejected", outcome.source,
                        len(outcome.documents), len(outcome.attempts), len(outcome.rejections))
            documents.extend(_gate("fetch", outcome.documents, documents_frame(outcome.documents),
                                   settings, run_id, outcome.source, report)
                             if outcome.documents else [])
        report.counts["fetch_out"] = len(documents)

        process_documents(documents, settings, run_id, engine, report, pending)
    except Exception as exc:
        failure: BaseException = exc
        if warehouse_unavailable(exc):
            failure = _keep_for_next_run(settings, run_id, pending, spooled, exc)
            logger.error("%s", failure)
        try:
            finish_run(engine, run_id, "failed", report.counts, f"{type(failure).__name__}: {failure}")
        except Exception as unrecorded:  # the warehouse is gone: the run's own failure is what matters
            logger.warning("could not record the failed run: %s", type(unrecorded).__name__)
        if failure is exc:
            raise
        raise failure from None
    finish_run(engine, run_id, "completed", report.counts)
    discard(spooled)  # loaded by this run
    _publish(report, run_id)
    logger.info("run %s completed: %s", run_id, dict(report.counts))
    return {"run_id": run_id, **report.as_dict()}
