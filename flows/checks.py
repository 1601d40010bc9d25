"""The quality gates: after each stage, its suite judges a batch; rows failing a critical expectation are
quarantined, and a source whose share of unusable pages is over its bound fails the stage (its records
are held back from then on, and the run ends failed, naming it).

The run's Great Expectations context is owned by its `RunChecks` (flows/run_checks.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import opaque

from flows.ledger import Ledger
from flows.pipeline import Stage, suites
from flows.run_checks import RunChecks
from flows.stages import check_warehouse_task, data_docs_task, quarantine_rows, record_task, validate
from tasks.datadocs import docs_link
from tasks.dedupe import DedupOutcome
from tasks.fetch import FetchOutcome
from tasks.frames import articles_frame, deduplicated_frame, documents_frame
from tasks.kinds import source_kind
from tasks.records import LANGUAGE_FILTER, Article, CleanOutcome, Document, Duplicate, Rejection, StageResult
from tasks.report import render_markdown, run_summary
from tasks.validate import Verdict, columns_read, load_suite_definition
from tasks.warehouse import get_engine


def gate(stage: str, records: list[Any], build_tables: Callable[[list[Any]], dict[str, Any]], checks: RunChecks,
         label: str, ledger: Ledger, already_rejected: Sequence[str] = (), share_column: str = "failed_share",
         suite: str | None = None, unchanged: Sequence[str] = ()) -> tuple[list[Any], Verdict | None]:
    """Run the stage's suite on a batch; the records that go on, and the verdict (None: nothing to judge).
    Called by the stage's check task run (flows/stages.check_task).

    Records of sources that failed earlier are held back first. Rows failing a critical expectation are
    quarantined with the reasons. Then, per source, the share of its pages this stage could not use
    (`already_rejected` by the stage itself, one source name per page, or failing a critical check) is
    checked: a source over its bound fails this stage, all its records are quarantined and the run
    will end failed, naming it and the expectation. Pages found `unchanged` (one source name each) were
    usable: they count in their source's share, not checked again.
    """
    if not records and not already_rejected and not any(len(t) for t in build_tables([]).values()):
        return [], None  # nothing to judge: no Great Expectations run (an unchanged re-run validates nothing)
    settings, run_id = checks.settings, checks.run_id
    earlier = {r.source for r in records} & set(ledger.failed_sources)
    held_back = {s: [f"source {s} failed earlier in this run: {ledger.failed_sources[s][0]}"] for s in earlier}
    records, rejected = quarantine_rows(stage, records, {}, held_back)
    verdict = validate(checks, stage, build_tables(records), label, [*(r.source for r in records), *unchanged],
                       list(already_rejected), share_column, suite)
    failed_sources = dict(verdict.failed_sources)
    if verdict.batch_failures:  # a whole-batch check failed: every source in the batch fails
        for source in {r.source for r in records} or {label}:
            failed_sources[source] = [*failed_sources.get(source, []), *verdict.batch_failures]
    passed, failed = quarantine_rows(stage, records, verdict.failed_rows, {
        s: [f"source {s} failed the {stage} stage: {r}" for r in reasons] for s, reasons in failed_sources.items()})
    rejected += failed
    if rejected:  # (the validation stored the results)
        record_task(settings, run_id, f"{stage} quality {label}", rejections=opaque(rejected))
    # The ledger last: a check task run retried after a failure above counts nothing twice.
    ledger.verdicts.append(verdict)
    for source, reasons in failed_sources.items():
        ledger.fail(stage, source, [*reasons, *_common_row_failures(source, records, verdict)])
    ledger.quarantined(stage, len(rejected))
    return passed, verdict


def _common_row_failures(source: str, records: list[Any], verdict: Verdict, top: int = 2) -> list[str]:
    """What most of a failed source's rows failed, so the run's message says why its pages were unusable."""
    counts = Counter(reason.split(": ", 1)[0] for index, reasons in verdict.failed_rows.items()
                     if index < len(records) and records[index].source == source for reason in reasons)
    return [f"{n} of its rows failed {name}" for name, n in counts.most_common(top)]


def gate_fetched(outcomes: list[FetchOutcome], kinds: dict[str, str], checks: RunChecks,
                 ledger: Ledger) -> list[Document]:
    """The `fetched` suite on a group of sources' documents at once: one validation per group (about a
    batch), not one per source (each costs Great Expectations' fixed overhead); its per-source
    expectations still judge each source on its own row of the `sources` table."""
    local = {name for name, kind in kinds.items() if not source_kind(kind).over_http}  # no HTTP status expected
    passed, _ = gate("fetch", [d for outcome in outcomes for d in outcome.documents],
                     lambda docs: {"records": documents_frame(docs, local_sources=local)}, checks,
                     f"{len(outcomes)} sources", ledger,
                     already_rejected=[r.source for outcome in outcomes for r in outcome.rejections],
                     unchanged=[outcome.source for outcome in outcomes for _ in outcome.unchanged])
    return passed


def gate_stored(documents: list[Document], checks: RunChecks, ledger: Ledger, label: str) -> list[Document]:
    """The `fetched` suite on documents read back from the raw store (no HTTP status to expect)."""
    passed, _ = gate("fetch", documents, lambda docs: {"records": documents_frame(docs, via_http=False)},
                     checks, label, ledger)
    return passed


def gate_cleaned(cleaned: CleanOutcome, checks: RunChecks, label: str,
                 ledger: Ledger) -> tuple[list[Article], Verdict | None]:
    """The `cleaned` suite on a batch's articles; per source, the pages without usable text (articles the
    language filter held back have text: a source of them has not lost its layout)."""
    read = columns_read(load_suite_definition("cleaned", checks.settings.expectations_dir), "records")
    no_text = [r.source for r in cleaned.rejections if r.payload.get("filtered_by") != LANGUAGE_FILTER]
    return gate("clean", cleaned.articles, lambda kept: {"records": articles_frame(kept, columns=read)},
                checks, label, ledger, already_rejected=no_text, share_column="no_text_share")


def gate_deduplicated(deduped: DedupOutcome, checks: RunChecks, label: str, ledger: Ledger,
                      spooled_copies: int = 0) -> tuple[list[Article], Verdict | None]:
    """The `deduplicated` suite on one table of the articles kept and the copies dropped (one validation:
    each costs Great Expectations' fixed overhead); copies pointing at nothing are held back (removed from
    `deduped.duplicates`, whose last `spooled_copies` came spooled with the articles)."""
    kept_urls = {a.canonical_url for a in deduped.kept}
    read = columns_read(load_suite_definition("deduplicated", checks.settings.expectations_dir), "records")
    went_on: list[Article] = []

    def tables(kept: list[Article]) -> dict[str, Any]:
        went_on[:] = kept  # the articles the table was built from: row ids past them are the copies
        return {"records": deduplicated_frame(kept, deduped.duplicates, kept_urls, columns=read)}

    valid, verdict = gate("dedupe", deduped.kept, tables, checks, label, ledger)
    failed = {row - len(went_on): reasons for row, reasons in (verdict.failed_rows if verdict else {}).items()
              if row >= len(went_on)}
    if failed:
        of_batch = len(deduped.duplicates) - spooled_copies  # (then the copies spooled with the articles)
        deduped.duplicates, held = _hold_back_duplicates(deduped.duplicates, failed)
        record_task(checks.settings, checks.run_id, f"dedupe duplicates {label}", rejections=opaque(held))
        ledger.quarantined("dedupe", len(held))
        ledger.dropped("dedupe", -sum(1 for index in failed if index < of_batch))  # quarantined, not dropped
    return valid, verdict


def gate_added(stage: Stage, result: StageResult[Article], checks: RunChecks, label: str,
               ledger: Ledger) -> tuple[list[Article], Verdict | None]:
    """A stage added between dedupe and load, judged by its own suite on the articles it passes on."""
    if not stage.suite:
        return result.records, None
    return gate(stage.name, result.records, lambda kept: {"records": articles_frame(kept)}, checks, label, ledger,
                suite=stage.suite)


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


def gate_warehouse(checks: RunChecks, ledger: Ledger) -> None:
    """The warehouse itself, through a SQL data source: the run's rows reconcile with its counts."""
    if not ledger.loaded_urls and not ledger.duplicates:
        return  # nothing written: nothing for the warehouse checks to reconcile
    verdict = check_warehouse_task(opaque(checks), {"articles_loaded": len(ledger.loaded_urls),
                                                   "duplicates_recorded": ledger.duplicates})
    ledger.verdicts.append(verdict)  # (its results are stored by the task)
    if verdict.batch_failures:
        ledger.failures.append(f"the warehouse failed the load checks: {'; '.join(verdict.batch_failures)}")


def publish(ledger: Ledger, checks: RunChecks, pipeline: Sequence[Stage]) -> None:
    """Artifacts with keys, so the UI versions them across runs: a table per stage, the run's summary
    (from the warehouse, as `newsflow quality` prints it) and a link to the Data Docs site. Reports must
    not hide the run's own outcome: a failure to publish them is logged, not raised."""
    try:
        _publish(ledger, checks, pipeline)
    except Exception as exc:
        get_run_logger().warning("could not publish the quality reports: %s: %s", type(exc).__name__, exc)
    finally:
        checks.close()


def _publish(ledger: Ledger, checks: RunChecks, pipeline: Sequence[Stage]) -> None:
    run_id = checks.run_id
    docs_index = data_docs_task(opaque(checks)) if checks.validated else None
    for stage, suite in suites(pipeline).items():
        table = [{"checked": v.label, "expectation": r["expectation"], "severity": r["severity"],
                  "result": "pass" if r["success"] else "FAIL", "unexpected": r["unexpected_count"],
                  "unexpected %": None if r["unexpected_percent"] is None else round(r["unexpected_percent"], 2),
                  "observed": r["observed_value"]}
                 for v in ledger.verdicts if v.stage == stage for r in v.results]
        if table:
            create_table_artifact(key=f"quality-{suite}", table=table,
                                  description=f"Expectations of the {suite} suite in run {run_id}")
    summary = run_summary(get_engine(checks.settings.warehouse_url), run_id)
    docs = docs_link(checks.settings, Path(docs_index)) if docs_index else None
    if summary:
        create_markdown_artifact(key="run-summary", markdown=render_markdown(summary, docs),
                                 description="What each stage took in, let through and held back")
    if docs:
        create_link_artifact(key="data-docs", link=docs,
                             link_text=f"Great Expectations Data Docs of run {run_id}",
                             description="Every expectation of the run, with the unexpected values")
