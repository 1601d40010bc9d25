"""The `ingest-news` flow: fetch -> clean -> deduplicate -> validate -> load, with quality checks
after every stage. Thin orchestration only: the work is in `tasks/`."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from flows.config import sources_from_variable
from flows.config import warehouse_url as resolve_warehouse_url
from flows.early import cleaners_for
from flows.scale import StageProgress, clean_batches, interleave_sources, warm_cleaners
from flows.stages import (
    check_warehouse_task,
    close_validator,
    data_docs_task,
    dedupe_task,
    fetch_more_task,
    fetch_task,
    load_task,
    orphan_rejections,
    prepare_validator,
    quarantine_rows,
    record_task,
    validate_task,
    validated,
)
from tasks.clean import LANGUAGE_FILTER, CleanOutcome
from tasks.datadocs import docs_link
from tasks.dedupe import DedupOutcome
from tasks.fetch import FetchOutcome
from tasks.frames import articles_frame, deduplicated_frame, documents_frame
from tasks.kinds import source_kind
from tasks.localfiles import with_sources_folder
from tasks.records import Article, Document, Duplicate, Rejection
from tasks.report import render_markdown, run_summary
from tasks.settings import Settings, get_settings
from tasks.sources import Source, SourceUnavailable, resolve_sources
from tasks.spool import SpoolFile, discard, read_spool, warehouse_unavailable, write_spool
from tasks.validate import SUITE_FOR_STAGE, StageFailed, Verdict, columns_read, load_suite_definition
from tasks.warehouse import WarehouseError, finish_run, get_engine, safe_url, start_run

STAGES = ("fetch", "clean", "dedupe", "validate", "load")


class RunReport:
    """Counts of what each stage took in and passed on, kept as the run goes."""

    def __init__(self) -> None:
        # Every stage's figures, zero until it sees something (a run with nothing new still reports them).
        self.counts: Counter[str] = Counter({f"{stage}_{side}": 0 for stage in STAGES for side in ("in", "out")})
        self.counts.update({"quarantined": 0, "duplicates": 0, "deferred": 0})
        self.deferred_sources: Counter[str] = Counter()  # source -> items left for the next runs
        self.quarantined_by_stage: Counter[str] = Counter()
        self.verdicts: list[Verdict] = []
        self.failed_sources: dict[str, list[str]] = {}  # source -> why it failed a stage
        self.failures: list[str] = []  # one sentence per source/stage failed, for the run's message
        self.unavailable: list[str] = []  # one sentence per source that yielded nothing (SourceUnavailable)
        self.loaded_urls: set[str] = set()  # canonical URLs written by this run

    def stage(self, name: str, taken_in: int, passed_on: int) -> None:
        self.counts[f"{name}_in"] += taken_in
        self.counts[f"{name}_out"] += passed_on

    def quarantined(self, stage: str, n: int) -> None:
        self.quarantined_by_stage[stage] += n
        self.counts["quarantined"] += n

    def fail(self, stage: str, source: str, reasons: list[str]) -> None:
        self.failed_sources.setdefault(source, []).extend(reasons)
        self.failures.append(f"source {source!r} failed the {stage} stage: {'; '.join(reasons)}")

    def defer(self, source: str, n: int) -> None:
        if n:
            self.deferred_sources[source] += n
            self.counts["deferred"] += n

    def as_dict(self) -> dict[str, Any]:
        return {**dict(self.counts), "quarantined_by_stage": dict(self.quarantined_by_stage),
                "deferred_sources": dict(self.deferred_sources), "failures": list(self.failures)}


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


def _gate(stage: str, records: list[Any], build_tables: Callable[[list[Any]], dict[str, Any]],
          settings: Settings, run_id: str, label: str, report: RunReport,
          already_rejected: list[str] = (), share_column: str = "failed_share") -> list[Any]:
    """Run the stage's suite on a batch and return the records that go on.

    Records of sources that failed earlier are held back first. Rows failing a critical expectation are
    quarantined with the reasons. Then, per source, the share of its pages this stage could not use
    (`already_rejected` by the stage itself, one source name per page, or failing a critical check) is
    checked: a source over its bound fails this stage, all its records are quarantined and the run
    will end failed, naming it and the expectation.
    """
    if not records and not already_rejected and not any(len(t) for t in build_tables([]).values()):
        return []  # nothing to judge: no Great Expectations run (an unchanged re-run validates nothing)
    earlier = {r.source for r in records} & set(report.failed_sources)
    held_back = {s: [f"source {s} failed earlier in this run: {report.failed_sources[s][0]}"] for s in earlier}
    records, rejected = quarantine_rows(stage, records, {}, held_back)
    verdict = validate_task(stage, quote(build_tables(records)), settings, run_id, label,
                            quote([r.source for r in records]), quote(list(already_rejected)), share_column)
    report.verdicts.append(verdict)
    failed_sources = dict(verdict.failed_sources)
    if verdict.batch_failures:  # a whole-batch check failed: every source in the batch fails
        for source in {r.source for r in records} or {label}:
            failed_sources[source] = [*failed_sources.get(source, []), *verdict.batch_failures]
    for source, reasons in failed_sources.items():
        report.fail(stage, source, [*reasons, *_common_row_failures(source, records, verdict)])
    passed, failed = quarantine_rows(stage, records, verdict.failed_rows, {
        s: [f"source {s} failed the {stage} stage: {r}" for r in reasons] for s, reasons in failed_sources.items()})
    rejected += failed
    if rejected:  # (the validate task stored the results)
        record_task(settings, run_id, f"{stage} quality {label}", rejections=quote(rejected))
    report.quarantined(stage, len(rejected))
    return passed


def gate_fetched(outcomes: list[Any], kinds: dict[str, str], settings: Settings, run_id: str,
                 report: RunReport) -> list[Document]:
    """The `fetched` suite on a group of sources' documents at once: one validation per group (about a
    batch), not one per source (each costs Great Expectations' fixed overhead); its per-source
    expectations still judge each source on its own row of the `sources` table."""
    local = {name for name, kind in kinds.items() if not source_kind(kind).over_http}  # no HTTP status expected
    return _gate("fetch", [d for outcome in outcomes for d in outcome.documents],
                 lambda docs: {"records": documents_frame(docs, local_sources=local)}, settings, run_id,
                 f"{len(outcomes)} sources", report,
                 already_rejected=[r.source for outcome in outcomes for r in outcome.rejections],
                 share_column="failed_share")


def _common_row_failures(source: str, records: list[Any], verdict: Verdict, top: int = 2) -> list[str]:
    """What most of a failed source's rows failed, so the run's message says why its pages were unusable."""
    counts = Counter(reason.split(": ", 1)[0] for index, reasons in verdict.failed_rows.items()
                     if index < len(records) and records[index].source == source for reason in reasons)
    return [f"{n} of its rows failed {name}" for name, n in counts.most_common(top)]


def _hold_back_duplicates(duplicates: list[Duplicate], failed: dict[int, list[str]]) -> tuple[list[Duplicate],
                                                                                             list[Rejection]]:
    """Duplicates failing a critical check (pointing at no article) are quarantined, not loaded; `failed`:
    reasons by index in `duplicates`."""
    kept, rejected = [], []
    for index, duplicate in enumerate(duplicates):
        reasons = failed.get(index)
        if reasons:
            rejected.append(Rejection("dedupe", duplicate.source, duplicate.url, reasons,
                                      dataclasses.asdict(duplicate)))
        else:
            kept.append(duplicate)
    return kept, rejected


def _publish(report: RunReport, run_id: str, settings: Settings, docs_index: str | None) -> None:
    """Artifacts with keys, so the UI versions them across runs: a table per stage, the run's summary
    (from the warehouse, as `newsflow quality` prints it) and a link to the Data Docs site."""
    for stage, suite in SUITE_FOR_STAGE.items():
        table = [{"checked": v.label, "expectation": r["expectation"], "severity": r["severity"],
                  "result": "pass" if r["success"] else "FAIL", "unexpected": r["unexpected_count"],
                  "unexpected %": None if r["unexpected_percent"] is None else round(r["unexpected_percent"], 2),
                  "observed": r["observed_value"]}
                 for v in report.verdicts if v.stage == stage for r in v.results]
        if table:
            create_table_artifact(key=f"quality-{suite}", table=table,
                                  description=f"Expectations of the {suite} suite in run {run_id}")
    summary = run_summary(get_engine(settings.warehouse_url), run_id)
    docs = docs_link(settings, Path(docs_index)) if docs_index else None
    if summary:
        create_markdown_artifact(key="run-summary", markdown=render_markdown(summary, docs),
                                 description="What each stage took in, let through and held back")
    if docs:
        create_link_artifact(key="data-docs", link=docs,
                             link_text=f"Great Expectations Data Docs of run {run_id}",
                             description="Every expectation of the run, with the unexpected values")


class Pending:
    """What the run holds that the warehouse does not have yet: spooled if the warehouse goes away.

    Documents are held from the moment a source's fetch is taken in until their batch is cleaned and
    checked (quarantined ones leave when their rejection is recorded); its articles are held until loaded.
    """

    def __init__(self, spooled: list[SpoolFile]) -> None:
        self._documents: dict[int, Document] = {}
        self.spooled_documents: list[Document] = [d for f in spooled for d in f.documents]
        self.hold(self.spooled_documents)
        self.articles: list[Article] = [a for f in spooled for a in f.articles]
        self.duplicates: list[Duplicate] = [d for f in spooled for d in f.duplicates]

    @property
    def documents(self) -> list[Document]:
        return list(self._documents.values())

    def hold(self, documents: Iterable[Document]) -> None:
        self._documents.update((id(d), d) for d in documents)

    def release(self, documents: Iterable[Document]) -> None:
        for document in documents:
            self._documents.pop(id(document), None)


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


def _load(articles: list[Article], deduped: Any, settings: Settings, run_id: str, label: str) -> Any:
    return load_task.with_options(retries=settings.load_retries, retry_delay_seconds=[
        settings.load_retry_delay * 2 ** attempt for attempt in range(settings.load_retries)])(
        quote(articles), quote(deduped), settings, run_id, label)


def process_documents(documents: Iterable[Document], settings: Settings, run_id: str, engine: Any,
                      report: RunReport, pending: Pending | None = None, checks: FetchChecks | None = None) -> None:
    """Clean -> dedupe -> validate -> load, with the quality gates, then the warehouse checks; shared by
    `ingest-news` (which streams its fetched documents in) and `reprocess-news` (documents rebuilt from
    the raw store). `pending` tracks what is not loaded yet, its spooled cleaned articles going first as
    their own batch."""
    logger = get_run_logger()
    pending = pending or Pending([])
    # Batch by batch, as documents arrive: later batches see earlier ones loaded. Cleaning is CPU-bound and
    # runs ahead in the worker processes while this thread deduplicates, checks and loads.
    batches: deque[list[Document]] = deque()

    def arriving() -> Iterator[list[Document]]:
        for batch in _batches(documents, settings.batch_size):
            pending.hold(batch)
            batches.append(batch)
            yield batch

    cleaned_batches = clean_batches(arriving(), settings)
    work: Iterator[tuple[str, CleanOutcome, list[Document]]] = (
        (f"batch {n}", cleaned, batches.popleft()) for n, cleaned in enumerate(cleaned_batches, start=1))
    if pending.articles:  # spooled cleaned articles first, as their own batch
        work = chain([("spooled articles", CleanOutcome(articles=pending.articles), [])], work)
    checks = checks or FetchChecks()
    for label, cleaned, batch in work:
        checks.settle()  # the fetch checks of this batch's documents ran ...
        cleaned, batch = checks.drop_quarantined(cleaned, batch)  # ... and what they held back goes no further
        precleaned = label == "spooled articles"
        pending.articles = list(cleaned.articles) if precleaned else []
        pending.duplicates = pending.duplicates if precleaned else []
        if cleaned.rejections:
            record_task(settings, run_id, f"clean {label}", rejections=quote(cleaned.rejections))
        report.quarantined("clean", len(cleaned.rejections))
        articles = gate_cleaned(cleaned, settings, run_id, label, report)
        report.stage("clean", len(batch), len(articles))

        deduped = dedupe_task(quote(articles), settings, label)
        deduped.duplicates += pending.duplicates  # copies dropped before the articles were spooled
        report.stage("dedupe", len(articles), len(deduped.kept))
        valid = gate_deduplicated(deduped, settings, run_id, label, report)
        report.stage("validate", len(deduped.kept), len(valid))

        # Cleaned and checked: if the load fails for good, these are what the spool keeps.
        pending.release(batch)
        pending.articles, pending.duplicates = valid, list(deduped.duplicates)
        loaded = _load(valid, deduped, settings, run_id, label) if valid or deduped.duplicates else None
        pending.articles, pending.duplicates = [], []
        report.stage("load", len(valid), loaded.stats.passed_on if loaded else 0)
        if loaded is None:
            continue
        report.counts["duplicates"] += loaded.stats.counts["duplicates"]
        report.loaded_urls.update(loaded.article_ids)
        if loaded.orphans:
            rejected = orphan_rejections(loaded.orphans)
            record_task(settings, run_id, f"load {label}", rejections=quote(rejected))
            report.quarantined("load", len(rejected))
        logger.info("%s: %d documents -> %d articles, %d duplicates dropped, %d loaded", label,
                    len(batch), len(articles), len(deduped.duplicates), loaded.stats.passed_on)

    gate_warehouse(settings, run_id, report)


def gate_cleaned(cleaned: CleanOutcome, settings: Settings, run_id: str, label: str,
                 report: RunReport) -> list[Article]:
    """The `cleaned` suite on a batch's articles; per source, the pages without usable text (articles the
    language filter held back have text: a source of them has not lost its layout)."""
    read = columns_read(load_suite_definition("cleaned", settings.expectations_dir), "records")
    no_text = [r.source for r in cleaned.rejections if r.payload.get("filtered_by") != LANGUAGE_FILTER]
    return _gate("clean", cleaned.articles, lambda kept: {"records": articles_frame(kept, columns=read)},
                 settings, run_id, label, report, already_rejected=no_text, share_column="no_text_share")


def gate_deduplicated(deduped: DedupOutcome, settings: Settings, run_id: str, label: str,
                      report: RunReport) -> list[Article]:
    """The `deduplicated` suite on one table of the articles kept and the copies dropped (one validation:
    each costs Great Expectations' fixed overhead); copies pointing at nothing are held back (removed from
    `deduped.duplicates`)."""
    kept_urls = {a.canonical_url for a in deduped.kept}
    checked = len(report.verdicts)
    read = columns_read(load_suite_definition("deduplicated", settings.expectations_dir), "records")
    went_on: list[Article] = []

    def tables(kept: list[Article]) -> dict[str, Any]:
        went_on[:] = kept  # the articles the table was built from: row ids past them are the copies
        return {"records": deduplicated_frame(kept, deduped.duplicates, kept_urls, columns=read)}

    valid = _gate("dedupe", deduped.kept, tables, settings, run_id, label, report)
    verdict = report.verdicts[-1] if len(report.verdicts) > checked else None  # none: nothing to check
    failed = {row - len(went_on): reasons for row, reasons in (verdict.failed_rows if verdict else {}).items()
              if row >= len(went_on)}
    if failed:
        deduped.duplicates, held = _hold_back_duplicates(deduped.duplicates, failed)
        record_task(settings, run_id, f"dedupe duplicates {label}", rejections=quote(held))
        report.quarantined("dedupe", len(held))
    return valid


def gate_warehouse(settings: Settings, run_id: str, report: RunReport) -> None:
    """The warehouse itself, through a SQL data source: the run's rows reconcile with its counts."""
    if not report.loaded_urls and not report.counts["duplicates"]:
        return  # nothing written: nothing for the warehouse checks to reconcile
    verdict = check_warehouse_task(settings, run_id, {"articles_loaded": len(report.loaded_urls),
                                                      "duplicates_recorded": report.counts["duplicates"]})
    report.verdicts.append(verdict)  # (its results are stored by the task)
    if verdict.batch_failures:
        report.failures.append(f"the warehouse failed the load checks: {'; '.join(verdict.batch_failures)}")


class _FetchPlan:
    """Which fetch task runs next: a part of a source whose listing was read, preferring a source with
    nothing in flight (its host is free), else the next source's listing. Sources come interleaved by
    host; a source's parts keep their order."""

    def __init__(self, specs: Sequence[Source]) -> None:
        self.waiting = deque(interleave_sources(specs))
        self.parts: dict[str, deque[tuple[Source, list[Any], bool, int]]] = {}  # source -> parts to fetch
        self.busy: Counter[str] = Counter()  # source -> its task runs in flight
        self.listing_validators: dict[str, dict[str, Any]] = {}  # held until a source's last part is taken

    def add_parts(self, source: Source, outcome: FetchOutcome, size: int) -> int:
        links = outcome.remaining
        parts = [(source, links[i:i + size], outcome.trusted, n)
                 for n, i in enumerate(range(0, len(links), max(1, size)), start=2)]
        if parts:
            self.parts[source.name] = deque(parts)
            self.listing_validators[source.name] = outcome.listing_validators
        outcome.remaining, outcome.listing_validators = [], {}
        return len(parts)

    def next(self, settings: Settings) -> tuple[Source, PrefectFuture[FetchOutcome]] | None:
        free = next((name for name, parts in self.parts.items() if parts and not self.busy[name]), None)
        if free is None and self.waiting:
            source = self.waiting.popleft()
            future = fetch_task.submit(source, settings)
        else:
            name = free or next((n for n, parts in self.parts.items() if parts), None)
            if name is None:
                return None
            source, links, trusted, part = self.parts[name].popleft()
            future = fetch_more_task.submit(source, quote(links), trusted, part, settings)
        self.busy[source.name] += 1
        return source, future

    def finished(self, name: str, outcome: FetchOutcome) -> None:
        """A task run of `name` was taken in; once the source has nothing left, its listings' validators
        (held by `add_parts`) ride on its last outcome, recorded with it."""
        self.busy[name] -= 1
        if not self.busy[name] and not self.parts.get(name):
            self.parts.pop(name, None)
            outcome.listing_validators = self.listing_validators.pop(name, {})


def fetch_outcomes(specs: Sequence[Source], settings: Settings) -> Iterator[FetchOutcome]:
    """Fetch outcomes as they are taken in: each source's listing with its first pages, then its further
    parts of at most `fetch_task_pages` pages, with at most `fetch_tasks_in_flight` task runs being fetched
    or waiting to be taken in (the next starts as one is taken): what bounds the pages held in flight.
    Requests to different hosts run in parallel (bounded by `fetch_concurrency`), one at a time per host."""
    progress = StageProgress("fetch", len(specs), "fetch tasks (a source, or a part of its pages)")
    plan = _FetchPlan(specs)
    in_flight: deque[tuple[Source, PrefectFuture[FetchOutcome]]] = deque()

    def fill() -> None:
        while len(in_flight) < max(1, settings.fetch_tasks_in_flight):
            submitted = plan.next(settings)
            if submitted is None:
                return
            in_flight.append(submitted)

    fill()
    while in_flight:
        source, future = in_flight.popleft()
        outcome = future.result()
        if outcome.remaining:
            progress.grow(plan.add_parts(source, outcome, settings.fetch_task_pages))
        plan.finished(source.name, outcome)
        fill()
        progress.advance(deferred=outcome.deferred)
        yield outcome


class FetchChecks:
    """The fetch checks of a group of sources, run once its documents went on to cleaning: the cleaning
    processes start on them while the checks run (the run's first check waits seconds for Great
    Expectations to start). A batch's clean outcome is taken only once the checks of its documents ran
    (`settle`), and what they quarantined is dropped from it (`drop_quarantined`)."""

    def __init__(self) -> None:
        self._waiting: deque[Callable[[], None]] = deque()
        self.quarantined: set[tuple[str, str | None]] = set()  # (source, URL) of documents held back

    def add(self, check: Callable[[], None]) -> None:
        self._waiting.append(check)

    def settle(self) -> None:
        while self._waiting:
            self._waiting.popleft()()

    def judged(self, documents: list[Document], passed: list[Document]) -> None:
        kept = {id(d) for d in passed}
        self.quarantined.update((d.source, d.url) for d in documents if id(d) not in kept)

    def drop_quarantined(self, cleaned: CleanOutcome, batch: list[Document]) -> tuple[CleanOutcome, list[Document]]:
        """The batch's clean outcome and documents without those the fetch checks held back (recorded there)."""
        if not self.quarantined or not batch:
            return cleaned, batch
        held = self.quarantined
        kept = CleanOutcome(articles=[a for a in cleaned.articles if (a.source, a.url) not in held],
                            rejections=[r for r in cleaned.rejections if (r.source, r.url) not in held],
                            stats=cleaned.stats)
        return kept, [d for d in batch if (d.source, d.url) not in held]


def fetched_documents(specs: Sequence[Source], kinds: dict[str, str], settings: Settings, run_id: str,
                      report: RunReport, pending: Pending, checks: FetchChecks) -> Iterator[Document]:
    """The documents that pass the fetch stage, as they come: spooled ones of earlier runs first, then a
    group of sources at a time (about a batch of documents: one record task and one quality check per
    group, not per source)."""
    report.counts["fetch_out"] += len(pending.spooled_documents)
    yield from pending.spooled_documents
    group: list[FetchOutcome] = []
    warming = False
    for outcome in fetch_outcomes(specs, settings):
        if outcome.documents or outcome.rejections:
            prepare_validator(run_id, settings)  # something to check: build the checks while fetching goes on
        if outcome.documents and not warming:
            warming = True  # and start the cleaning processes, once: before any batch borrows them
            warm_cleaners(settings, cleaners_for(specs, settings))
        pending.hold(outcome.documents)  # spooled if the warehouse goes away from here on
        group.append(outcome)
        if sum(len(o.documents) for o in group) >= settings.batch_size:
            yield from _pass_on(group, kinds, settings, run_id, report, pending, checks)
            group = []
    if group:
        yield from _pass_on(group, kinds, settings, run_id, report, pending, checks)


def _pass_on(outcomes: list[FetchOutcome], kinds: dict[str, str], settings: Settings, run_id: str,
             report: RunReport, pending: Pending, checks: FetchChecks) -> Iterator[Document]:
    """A group's documents go on to cleaning first; its checks run when the next document is asked for
    (cleaning under way), or earlier if a batch's outcome needs them."""
    documents = [d for o in outcomes for d in o.documents]
    checks.add(lambda: checks.judged(documents, _take_fetched(outcomes, kinds, settings, run_id, report, pending)))
    yield from documents
    checks.settle()


def _take_fetched(outcomes: list[FetchOutcome], kinds: dict[str, str], settings: Settings, run_id: str,
                  report: RunReport, pending: Pending) -> list[Document]:
    """Record a group of sources' attempts and rejections, and run the fetch checks on their documents."""
    logger = get_run_logger()
    names = [o.source for o in outcomes]
    record_task(settings, run_id, f"fetch {', '.join(names) if len(names) <= 3 else f'{len(names)} parts'}",
                attempts=quote([a for o in outcomes for a in o.attempts]),
                rejections=quote([r for o in outcomes for r in o.rejections]),
                validators=quote({url: v for o in outcomes for url, v in o.listing_validators.items()}))
    for outcome in outcomes:
        report.counts["fetch_in"] += outcome.stats.taken_in
        report.quarantined("fetch", len(outcome.rejections))
        report.defer(outcome.source, outcome.deferred)
        if outcome.unavailable:
            report.unavailable.append(f"source {outcome.source!r} yielded nothing: {outcome.unavailable}")
        logger.info("%s: fetched %d documents, %d attempts, %d rejected%s", outcome.source,
                    len(outcome.documents), len(outcome.attempts), len(outcome.rejections),
                    f", {outcome.deferred:,} left for the next runs (over its budget)" if outcome.deferred else "")
    passed = gate_fetched(outcomes, kinds, settings, run_id, report)
    kept = {id(d) for d in passed}
    pending.release(d for o in outcomes for d in o.documents if id(d) not in kept)  # quarantined: recorded
    report.counts["fetch_out"] += len(passed)
    return passed


def end_run(engine: Any, run_id: str, report: RunReport, settings: Settings,
            error: BaseException | None = None) -> None:
    """Record how the run ended and publish its reports. A run with failed sources ends failed (raises
    StageFailed, or SourceUnavailable when sources only yielded nothing) after the others were loaded: loud,
    naming each source and expectation, path or URL."""
    message = f"{type(error).__name__}: {error}" if error else "; ".join(report.unavailable + report.failures)
    finish_run(engine, run_id, "failed" if message else "completed", report.counts, message or None,
               dict(report.deferred_sources))
    _publish_safely(report, run_id, settings)
    if message and error is None:
        raise (StageFailed if report.failures else SourceUnavailable)(message)


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
    kinds = {s.name: s.kind for s in specs}
    engine = get_engine(settings.warehouse_url)
    run_id = str(flow_run.id or uuid.uuid4())
    start_run(engine, run_id, flow_run.id)
    report = RunReport()
    spooled = read_spool(settings)  # what earlier runs could not load comes first
    if spooled:
        logger.info("taking %d spooled file(s) that earlier runs could not load", len(spooled))
    pending = Pending(spooled)
    try:
        # Fetch streams into clean -> dedupe -> validate -> load: sources are fetched a window at a time
        # while earlier batches are cleaned and loaded; nothing waits for (or holds) the whole crawl.
        checks = FetchChecks()
        process_documents(fetched_documents(specs, kinds, settings, run_id, report, pending, checks),
                          settings, run_id, engine, report, pending, checks)
    except Exception as exc:
        failure: BaseException = exc
        if warehouse_unavailable(exc):
            failure = _keep_for_next_run(settings, run_id, pending, spooled, exc)
            logger.error("%s", failure)
        try:
            end_run(engine, run_id, report, settings, failure)
        except Exception as unrecorded:  # the warehouse is gone: the run's own failure is what matters
            logger.warning("could not record the failed run: %s", type(unrecorded).__name__)
        if failure is exc:
            raise
        raise failure from None
    discard(spooled)  # loaded by this run
    end_run(engine, run_id, report, settings)
    logger.info("run %s completed: %s", run_id, dict(report.counts))
    return {"run_id": run_id, **report.as_dict()}


def _publish_safely(report: RunReport, run_id: str, settings: Settings) -> None:
    """Reports must not hide the run's own outcome: a failure to publish them is logged, not raised."""
    try:
        _publish(report, run_id, settings, data_docs_task(settings, run_id) if validated(run_id) else None)
    except Exception as exc:
        get_run_logger().warning("could not publish the quality reports: %s: %s", type(exc).__name__, exc)
    finally:
        close_validator(run_id)
