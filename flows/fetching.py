"""The fetch side of a run: which fetch task runs next, at most `fetch_tasks_in_flight` at once and none while
the pages held are over `max_bytes_in_flight` until a clean check lets some go (what bounds the pages held
in flight), and the documents streamed on to the batches (flows/batches.py) a group of sources (about a
batch) at a time, each group with the task run of its fetch check."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import opaque

from flows.batches import Arrival
from flows.checks import RunChecks, gate_fetched
from flows.early import cleaners_for
from flows.ledger import Ledger
from flows.resources import RunResources
from flows.scale import StageProgress, interleave_sources, warm_cleaners
from flows.stages import after, check_task, fetch_more_task, fetch_task, record_task
from tasks.fetch import FetchOutcome
from tasks.http import HttpSession
from tasks.settings import Settings
from tasks.sources import Source


class _FetchPlan:
    """Which fetch task runs next: a part of a source whose listing was read, preferring a source with
    nothing in flight (its host is free), else the next source's listing. Sources come interleaved by
    host; a source's parts keep their order."""

    def __init__(self, specs: Sequence[Source], http: HttpSession) -> None:
        self.http = http  # the run's politeness state, handed to each fetch task run
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
            future = fetch_task.submit(source, settings, opaque(self.http))
        else:
            name = free or next((n for n, parts in self.parts.items() if parts), None)
            if name is None:
                return None
            source, links, trusted, part = self.parts[name].popleft()
            future = fetch_more_task.submit(source, opaque(links), trusted, part, settings, opaque(self.http))
        self.busy[source.name] += 1
        return source, future

    def finished(self, name: str, outcome: FetchOutcome) -> None:
        """A task run of `name` was taken in; once the source has nothing left, its listings' validators
        (held by `add_parts`) ride on its last outcome, recorded with it."""
        self.busy[name] -= 1
        if not self.busy[name] and not self.parts.get(name):
            self.parts.pop(name, None)
            outcome.listing_validators = self.listing_validators.pop(name, {})


def fetch_outcomes(specs: Sequence[Source], settings: Settings,
                   room: Callable[[bool], bool] = lambda wait: True,
                   taken: Callable[[FetchOutcome], None] = lambda outcome: None,
                   http: HttpSession | None = None) -> Iterator[FetchOutcome]:
    """Fetch outcomes as they are taken in: each source's listing with its first pages, then its further
    parts of at most `fetch_task_pages` pages, with at most `fetch_tasks_in_flight` task runs being fetched
    or waiting to be taken in (the next starts as one is taken), and none while there is no `room` (the
    pages held by the run, counted by `taken` as each outcome comes in, are over their byte budget):
    once nothing is in flight and the consumer is back, `room(True)` waits for pages to be let go, and with
    none to wait for one task runs at a time (the pages held must reach a batch). What bounds the pages held.
    Requests to different hosts run in parallel (bounded by `fetch_concurrency`), one at a time per host."""
    progress = StageProgress("fetch", len(specs), "fetch tasks (a source, or a part of its pages)")
    plan = _FetchPlan(specs, http or HttpSession(settings))
    in_flight: deque[tuple[Source, PrefectFuture[FetchOutcome]]] = deque()

    def fill(wait: bool) -> None:
        while len(in_flight) < max(1, settings.fetch_tasks_in_flight):
            if not room(False):  # over the budget
                if in_flight or not wait:
                    return
                room(True)  # wait for clean checks to let pages go; with none left to wait for, one task runs
            submitted = plan.next(settings)
            if submitted is None:
                return
            in_flight.append(submitted)

    fill(wait=True)
    while in_flight:
        source, future = in_flight.popleft()
        outcome = future.result()
        taken(outcome)
        if outcome.remaining:
            progress.grow(plan.add_parts(source, outcome, settings.fetch_task_pages))
        plan.finished(source.name, outcome)
        fill(wait=False)  # within the budget: the next tasks run while this outcome goes on
        progress.advance(deferred=outcome.deferred)
        yield outcome
        fill(wait=True)  # over it: once the consumer is back (its batch submitted), wait for a clean check


def fetched(specs: Sequence[Source], checks: RunChecks, ledger: Ledger, resources: RunResources) -> Iterator[Arrival]:
    """The documents as they are fetched: spooled ones of earlier runs first (checked then), then a group of
    sources at a time (about a batch of documents: one record task and one fetch check per group, not per
    source; cut short when the pages held are over their byte budget and in no batch to wait for), each
    group with the task run of its check, which its batches' clean checks wait for (their cleaning starts
    meanwhile)."""
    settings = checks.settings
    kinds = {s.name: s.kind for s in specs}
    budget = settings.max_bytes_in_flight
    ledger.took("fetch", len(ledger.spooled_documents), len(ledger.spooled_documents))
    if ledger.spooled_documents:
        yield Arrival(ledger.spooled_documents, cut=not ledger.room(budget, wait=False))
    group: list[FetchOutcome] = []
    warming = False
    previous: PrefectFuture[Any] | None = None
    for outcome in fetch_outcomes(specs, settings, room=lambda wait: ledger.room(budget, wait),
                                  taken=lambda outcome: ledger.hold(outcome.documents),  # (spooled if the
                                  http=resources.http):  # warehouse goes away from here on)
        if outcome.documents or outcome.rejections:
            checks.prepare()  # something to check: build the checks while fetching goes on
        if outcome.documents and not warming:
            warming = True  # and start the cleaning processes, once: before any batch borrows them
            warm_cleaners(settings, resources.cleaners, cleaners_for(specs, settings))
        group.append(outcome)
        # Over the budget with no batch to wait for (the pages held are in none): they go on now, a short batch.
        cut = not ledger.room(budget, wait=False) and not ledger.releasing_any
        if cut or sum(len(o.documents) for o in group) >= settings.batch_size:
            arrival = _take(group, kinds, checks, ledger, previous)
            arrival.cut = cut
            previous = arrival.check or previous
            yield arrival
            group = []
    if group:
        yield _take(group, kinds, checks, ledger, previous)


def _take(outcomes: list[FetchOutcome], kinds: dict[str, str], checks: RunChecks, ledger: Ledger,
          previous: PrefectFuture[Any] | None) -> Arrival:
    """Record a group of sources' attempts and rejections; its documents go on with their fetch check (after
    the group before's: a source failing one is held back in the next)."""
    logger = get_run_logger()
    names = [o.source for o in outcomes]
    record_task(checks.settings, checks.run_id,
                f"fetch {', '.join(names) if len(names) <= 3 else f'{len(names)} parts'}",
                attempts=opaque([a for o in outcomes for a in o.attempts]),
                rejections=opaque([r for o in outcomes for r in o.rejections]),
                validators=opaque({url: v for o in outcomes for url, v in o.listing_validators.items()}))
    for outcome in outcomes:
        if outcome.unavailable:
            ledger.unavailable.append(f"source {outcome.source!r} yielded nothing: {outcome.unavailable}")
        ledger.defer(outcome.source, outcome.deferred)
        logger.info("%s: fetched %d documents, %d attempts, %d rejected%s%s", outcome.source,
                    len(outcome.documents), len(outcome.attempts), len(outcome.rejections),
                    f", {_unchanged(outcome)} unchanged" if _unchanged(outcome) else "",
                    f", {outcome.deferred:,} left for the next runs (over its budget)" if outcome.deferred else "")
    documents = [d for o in outcomes for d in o.documents]
    if not documents and not any(o.rejections for o in outcomes):
        ledger.fetched(0, 0, sum(_unchanged(o) for o in outcomes), 0)
        return Arrival([])  # nothing to check
    check = check_task.submit("fetch", f"{len(outcomes)} sources", fetch_checked, [
        opaque(outcomes), kinds, opaque(checks), opaque(ledger)], wait_for=after(previous))
    return Arrival(documents, check)


def fetch_checked(outcomes: list[FetchOutcome], kinds: dict[str, str], checks: RunChecks,
                  ledger: Ledger) -> set[tuple[str, str | None]]:
    """The fetch check of a group: (source, URL) of the documents it quarantined (recorded here)."""
    passed = gate_fetched(outcomes, kinds, checks, ledger)
    kept = {id(d) for d in passed}
    held = [d for o in outcomes for d in o.documents if id(d) not in kept]
    ledger.release(held)  # quarantined: recorded
    ledger.fetched(sum(len(o.documents) for o in outcomes), sum(len(o.rejections) for o in outcomes),
                   sum(_unchanged(o) for o in outcomes), len(passed))
    return {(d.source, d.url) for d in held}


def _unchanged(outcome: FetchOutcome) -> int:
    """Pages answered 304, and documents read again the same as stored (listings answered 304 are no pages)."""
    return outcome.stats.counts["not_modified"] + len(outcome.unchanged)
