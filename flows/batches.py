"""A run's batches, each a chain of Prefect task runs passing their results on as futures:

    fetch check(s) of its documents ─┐
    clean (mapped over its chunks) ──┴> clean check -> dedupe -> dedupe check -> added stages -> load
                                                         └ after the previous batch's load

The flow's thread only cuts the arriving documents into batches and submits each batch's chain; it does
not wait for a batch unless `NEWSFLOW_BATCHES_IN_FLIGHT` are in flight (then for the first to finish,
`prefect.futures.as_completed`), so later sources are fetched while earlier batches are cleaned and a
run holds a few batches, never the corpus. Dedupe and load run one batch after another (they must see
every earlier batch in the warehouse), and each stage's check after the same check of the batch before
(what one check quarantines, the next holds back). Every input is a future passed `opaque()`: Prefect
records the edges (the UI draws each batch as a chain) without walking the records.

Shared by `ingest-news` (fetched documents, flows/fetching.py) and `reprocess-news` (the raw store).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.utilities.annotations import opaque

from flows import pipeline
from flows.checks import gate_added, gate_cleaned, gate_deduplicated, gate_warehouse
from flows.ledger import SPOOLED, Ledger
from flows.resources import RunResources
from flows.run_checks import RunChecks
from flows.scale import CleanRunner, merge_clean_outcomes
from flows.stages import after, check_task, dedupe_task, load_task, orphan_rejections, record_task
from tasks.dedupe import DedupOutcome
from tasks.records import Article, CleanOutcome, Document, Duplicate

Held = set[tuple[str, str | None]]  # (source, URL) of documents a fetch check quarantined


@dataclass(slots=True)
class Arrival:
    """Documents as they come in, and the task run of their fetch check (None: checked already)."""
    documents: list[Document]
    check: PrefectFuture[Held] | None = None
    cut: bool = False  # the batch being filled goes on now, short (the pages held are over their byte budget)


@dataclass(slots=True)
class Batch:
    label: str
    documents: list[Document]  # until submitted: then only its clean task runs and clean check hold them
    fetch_checks: list[PrefectFuture[Held]] = field(default_factory=list)
    articles: list[Article] = field(default_factory=list)  # spooled ones: cleaned by an earlier run
    copies: list[Duplicate] = field(default_factory=list)
    cleaning: list[PrefectFuture[CleanOutcome]] = field(default_factory=list)
    steps: list[PrefectFuture[Any]] = field(default_factory=list)  # clean check, dedupe, its check, added
    load: PrefectFuture[Any] | None = None  # (set by `submit`)
    size: int = 0  # its documents (set by `submit`)

    @property
    def runs(self) -> list[PrefectFuture[Any]]:
        """Its task runs in chain order (its load last)."""
        return [*self.cleaning, *self.steps, *([self.load] if self.load else [])]


def process_documents(arrivals: Iterable[Arrival], checks: RunChecks, ledger: Ledger,
                      resources: RunResources | None = None) -> None:
    """Every batch through the pipeline (spooled cleaned articles first, as their own batch), at most
    `batches_in_flight` at once; then the warehouse checks. A failure is raised once nothing is in flight:
    the ledger then holds what is not loaded (for the spool). The run's `resources` clean the batches."""
    settings = checks.settings
    in_flight: list[Batch] = []
    previous: Batch | None = None
    with CleanRunner(settings, resources.cleaners if resources else None) as cleaner:
        try:
            for batch in _batches(arrivals, ledger, settings.batch_size):
                while len(in_flight) >= max(1, settings.batches_in_flight):
                    settle(_first_finished(in_flight), cleaner, checks, ledger)
                previous = submit(batch, previous, cleaner, checks, ledger)
                in_flight.append(previous)
            while in_flight:
                settle(in_flight.pop(0), cleaner, checks, ledger)
        except Exception:
            _drain(in_flight, cleaner, checks, ledger)
            raise
    gate_warehouse(checks, ledger)


def _batches(arrivals: Iterable[Arrival], ledger: Ledger, size: int) -> Iterator[Batch]:
    """Batches of `size` documents as they arrive (the last one shorter, and one cut short by its arrival),
    each with the fetch checks of its documents; spooled cleaned articles first."""
    if ledger.spooled_articles or ledger.spooled_copies:
        yield Batch(SPOOLED, [], articles=ledger.spooled_articles, copies=ledger.spooled_copies)
    number, documents, waits = 1, [], []
    for arrival in arrivals:
        ledger.hold(arrival.documents)  # (fetched ones are held already)
        left = arrival.documents
        while left:
            taken, left = left[:max(1, size) - len(documents)], left[max(1, size) - len(documents):]
            documents += taken
            if arrival.check is not None and arrival.check not in waits:
                waits.append(arrival.check)
            if len(documents) >= max(1, size):
                yield Batch(f"batch {number}", documents, waits)
                number, documents, waits = number + 1, [], []
        if arrival.cut and documents:
            yield Batch(f"batch {number}", documents, waits)
            number, documents, waits = number + 1, [], []
    if documents:
        yield Batch(f"batch {number}", documents, waits)


def submit(batch: Batch, previous: Batch | None, cleaner: CleanRunner, checks: RunChecks, ledger: Ledger) -> Batch:
    """The batch's chain of task runs, each taking the futures of those before it."""
    settings, label = checks.settings, batch.label
    run, steps = (opaque(checks), opaque(ledger)), batch.steps
    # The pages go to the clean task runs and the clean check, and no further: once that check has run they
    # are gone from memory (the batch keeps their number), while the batch waits for dedupe and load.
    documents, batch.documents, batch.size = batch.documents, [], len(batch.documents)
    batch.cleaning = cleaner.submit(documents, label) if documents else []
    cleaned = [opaque(f) for f in batch.cleaning] or [opaque(CleanOutcome(articles=batch.articles))]
    steps.append(check_task.submit("clean", label, clean_checked, [
        cleaned, [opaque(f) for f in batch.fetch_checks], opaque(documents), opaque(batch.copies), *run, label],
        wait_for=after(previous and previous.steps[0])))
    del documents
    ledger.releasing(label, steps[0])
    steps.append(dedupe_task.submit(opaque(steps[0]), settings, label, wait_for=after(previous and previous.load)))
    steps.append(check_task.submit("dedupe", label, dedupe_checked, [
        opaque(steps[1]), opaque(steps[0]), opaque(batch.copies), *run, label]))
    for stage in pipeline.added_stages(pipeline.PIPELINE):  # (after the previous batch's: after its load)
        steps.append(check_task.submit(stage.name, label, added_stage, [stage, opaque(steps[-1]), *run, label]))
    batch.load = load_task.with_options(retries=settings.load_retries, retry_delay_seconds=[
        settings.load_retry_delay * 2 ** attempt for attempt in range(settings.load_retries)]).submit(
        opaque(steps[-1]), settings, checks.run_id, label, wait_for=after(steps[1]))
    return batch


def clean_checked(cleaned: list[CleanOutcome], held: list[Held], documents: list[Document], copies: list[Duplicate],
                  checks: RunChecks, ledger: Ledger, label: str) -> list[Article]:
    """The batch's clean outcome without what its fetch checks quarantined, its rejections recorded, then
    its check: the articles that go on. From here the ledger holds the batch's articles (and the copies
    spooled with them), no longer its documents: a page weighs about 30 times its article."""
    outcome = merge_clean_outcomes(cleaned)
    quarantined = set().union(*held)
    if quarantined:  # recorded by the fetch check
        outcome.articles = [a for a in outcome.articles if (a.source, a.url) not in quarantined]
        outcome.rejections = [r for r in outcome.rejections if (r.source, r.url) not in quarantined]
        documents = [d for d in documents if (d.source, d.url) not in quarantined]
    if outcome.rejections:
        record_task(checks.settings, checks.run_id, f"clean {label}", rejections=opaque(outcome.rejections))
    articles, _ = gate_cleaned(outcome, checks, label, ledger)
    ledger.quarantined("clean", len(outcome.rejections))
    # (spooled articles come without their documents: they were cleaned by an earlier run)
    ledger.took("clean", len(documents) or len(outcome.articles) + len(outcome.rejections), len(articles))
    ledger.unloaded(label, articles, list(copies))
    ledger.release(documents, batch=label)
    return articles


def dedupe_checked(deduped: DedupOutcome, articles: list[Article], copies: list[Duplicate], checks: RunChecks,
                   ledger: Ledger, label: str) -> DedupOutcome:
    """The dedupe check (with the copies dropped before spooled articles were spooled): the outcome that
    goes on, its `kept` narrowed to the articles that passed; the ledger then holds those and the copies."""
    deduped = dataclasses.replace(deduped, duplicates=[*deduped.duplicates, *copies])
    valid, _ = gate_deduplicated(deduped, checks, label, ledger, spooled_copies=len(copies))
    ledger.dropped("dedupe", len(articles) - len(deduped.kept))
    ledger.took("dedupe", len(articles), len(valid))
    ledger.unloaded(label, valid, list(deduped.duplicates))
    return dataclasses.replace(deduped, kept=valid)


def added_stage(stage: pipeline.Stage, deduped: DedupOutcome, checks: RunChecks, ledger: Ledger,
                label: str) -> DedupOutcome:
    """A stage added between dedupe and load: its task on the articles that passed so far, its rejections
    recorded, then its own check."""
    if not deduped.kept:
        return deduped
    result = stage.task(opaque(deduped.kept), checks.settings, label)
    if result.rejections:
        record_task(checks.settings, checks.run_id, f"{stage.name} {label}", rejections=opaque(result.rejections))
    passed, _ = gate_added(stage, result, checks, label, ledger)
    ledger.quarantined(stage.name, len(result.rejections))
    ledger.took(stage.name, len(deduped.kept), len(passed))
    ledger.unloaded(label, passed, list(deduped.duplicates))
    return dataclasses.replace(deduped, kept=passed)


def settle(batch: Batch, cleaner: CleanRunner, checks: RunChecks, ledger: Ledger) -> None:
    """A batch whose chain has finished: its first failure raised as it was; else its load's figures in the
    ledger, copies pointing at an article that was not loaded quarantined."""
    for run in batch.runs:
        run.result()
    outcome, loaded = batch.steps[-1].result(), batch.load.result()
    ledger.loaded(len(outcome.kept), loaded.stats.counts, len(loaded.orphans))
    ledger.cleared(batch.label)
    cleaner.cleaned(len(batch.cleaning))
    ledger.duplicates += loaded.stats.counts["duplicates"]
    ledger.loaded_urls.update(loaded.article_ids)
    if loaded.orphans:
        record_task(checks.settings, checks.run_id, f"load {batch.label}",
                    rejections=opaque(orphan_rejections(loaded.orphans)))
    get_run_logger().info("%s: %d documents -> %d articles, %d duplicates dropped, %d loaded", batch.label,
                          batch.size, len(batch.steps[0].result()), len(outcome.duplicates),
                          loaded.stats.passed_on)


def _first_finished(in_flight: list[Batch]) -> Batch:
    """The first batch in flight whose load finished (taken out of `in_flight`)."""
    finished = next(as_completed([b.load for b in in_flight]))
    batch = next(b for b in in_flight if b.load is finished)
    in_flight.remove(batch)
    return batch


def _drain(in_flight: list[Batch], cleaner: CleanRunner, checks: RunChecks, ledger: Ledger) -> None:
    """After a failure: wait for what is in flight (nothing changes the ledger after this), and settle the
    batches that were loaded all the same, so that the spool keeps only what the warehouse lacks."""
    wait([run for batch in in_flight for run in batch.runs])
    for batch in in_flight:
        try:
            settle(batch, cleaner, checks, ledger)
        except Exception:  # this batch or one before it failed: the ledger keeps what it holds
            continue
