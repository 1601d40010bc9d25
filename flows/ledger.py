"""The run's ledger: the one object that holds the state of a run as it goes.

It merges what every stage of the pipeline took in, passed on, quarantined and dropped, remembers which
sources failed a stage (their later records are held back; the run ends failed, naming them), and knows
what the warehouse does not have yet: documents from the moment they are fetched until their batch is
cleaned and checked, then that batch's articles and copies until they are loaded. If the warehouse goes
away, that is what the spool keeps for the next run. The bytes of the documents it holds are what
`NEWSFLOW_MAX_BYTES_IN_FLIGHT` bounds: over it, fetching waits for a batch's clean check (`room`).

A run's batches are in flight at once (their task runs on the flow's threads), so every change takes the
ledger's lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import wraps
from typing import Any

from prefect.futures import PrefectFuture, as_completed

from tasks.records import Article, Document, Duplicate
from tasks.spool import SpoolFile
from tasks.validate import Verdict

# What each stage took in, and what became of it: passed on (out), quarantined, dropped on purpose as copies
# of other articles (kept as duplicates), or found unchanged since an earlier run (passed on no further).
# Every stage's row adds up: in = out + quarantined + dropped + unchanged.
SIDES = ("in", "out", "quarantined", "dropped", "unchanged")
SPOOLED = "spooled articles"  # the batch of cleaned articles earlier runs could not load


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(method)
    def locked(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _size(document: Document) -> int:
    return len(document.html or "") + len(document.text or "")


class Ledger:
    def __init__(self, stages: Sequence[str], spooled: Sequence[SpoolFile] = ()) -> None:
        self._lock = threading.RLock()
        self.stages = list(stages)
        # Every stage's figures, zero until it sees something (a run with nothing new still reports them).
        self.counts: dict[str, Counter[str]] = {stage: Counter(dict.fromkeys(SIDES, 0)) for stage in self.stages}
        self.duplicates = 0  # copies recorded by the load stage
        self.stories_opened = 0  # stories started by this run's loads
        self.stories_joined = 0  # articles of this run that joined a story started before it
        self.deferred_sources: Counter[str] = Counter()  # source -> items over its budget, left for the next runs
        self.verdicts: list[Verdict] = []
        self.failed_sources: dict[str, list[str]] = {}  # source -> why it failed a stage
        self.failures: list[str] = []  # one sentence per source/stage failed, for the run's message
        self.unavailable: list[str] = []  # one sentence per source that yielded nothing (SourceUnavailable)
        self.loaded_urls: set[str] = set()  # canonical URLs written by this run
        # What the warehouse does not have yet (see the module's docstring).
        self._documents: dict[int, Document] = {}
        self.bytes_held = 0  # characters of the held documents' bodies
        self.bytes_peak = 0  # the most `bytes_held` has been
        self._releases: dict[str, PrefectFuture[Any]] = {}  # batch -> its clean check (lets its documents go)
        self.spooled_documents: list[Document] = [d for f in spooled for d in f.documents]
        self.hold(self.spooled_documents)
        self.spooled_articles: list[Article] = [a for f in spooled for a in f.articles]
        self.spooled_copies: list[Duplicate] = [d for f in spooled for d in f.duplicates]
        # batch -> its checked articles and copies, until they are loaded
        self._unloaded: dict[str, tuple[list[Article], list[Duplicate]]] = {}
        if self.spooled_articles or self.spooled_copies:
            self._unloaded[SPOOLED] = (self.spooled_articles, self.spooled_copies)

    # --- what the stages did ------------------------------------------------------------------

    @_locked
    def took(self, stage: str, taken_in: int, passed_on: int) -> None:
        self._stage(stage).update({"in": taken_in, "out": passed_on})

    @_locked
    def quarantined(self, stage: str, n: int) -> None:
        self._stage(stage)["quarantined"] += n

    @_locked
    def dropped(self, stage: str, n: int) -> None:
        """Records a stage dropped on purpose, kept elsewhere (a dedupe stage's copies)."""
        self._stage(stage)["dropped"] += n

    @_locked
    def unchanged(self, stage: str, n: int) -> None:
        """Records found as they were in an earlier run: passed on no further (fetch), or not written (load)."""
        self._stage(stage)["unchanged"] += n

    @_locked
    def fetched(self, documents: int, rejected: int, unchanged: int, passed: int) -> None:
        """A group of fetch outcomes: the documents read (`passed` of them passed the fetch checks, the
        others quarantined by them, as `gate` counts), the items rejected while fetching, and those found
        unchanged (304, or read again the same)."""
        self.took("fetch", documents + rejected + unchanged, passed)
        self.quarantined("fetch", rejected)
        self.unchanged("fetch", unchanged)

    @_locked
    def loaded(self, articles: int, counts: Counter[str], orphans: int) -> None:
        """A batch's load (its `LoadOutcome.stats`): the articles written new or with a changed text pass on;
        texts as they were are unchanged; copies of an article another run loaded meanwhile are dropped (as
        duplicates); copies whose article is missing are quarantined."""
        self.took("load", articles + orphans, counts["new"] + counts["changed"])
        self.dropped("load", counts["copies"])
        self.unchanged("load", counts["unchanged"])
        self.quarantined("load", orphans)
        self.stories_opened += counts["stories_opened"]
        self.stories_joined += counts["stories_joined"]

    @_locked
    def fail(self, stage: str, source: str, reasons: list[str]) -> None:
        self.failed_sources.setdefault(source, []).extend(reasons)
        self.failures.append(f"source {source!r} failed the {stage} stage: {'; '.join(reasons)}")

    @_locked
    def defer(self, source: str, n: int) -> None:
        if n:
            self.deferred_sources[source] += n

    def _stage(self, stage: str) -> Counter[str]:
        if stage not in self.counts:
            raise KeyError(f"{stage!r} is not a stage of the pipeline ({', '.join(self.stages)})")
        return self.counts[stage]

    @property
    def quarantined_total(self) -> int:
        return sum(c["quarantined"] for c in self.counts.values())

    def stage_counts(self) -> list[dict[str, Any]]:
        """What `pipeline_runs.stage_counts` stores: every stage's figures, in pipeline order."""
        return [{"stage": stage, **{side: int(self.counts[stage][side]) for side in SIDES}} for stage in self.stages]

    def as_dict(self) -> dict[str, Any]:
        """The flow's return value: `<stage>_in` / `<stage>_out` for each stage, the totals, and per stage."""
        stages = self.stage_counts()
        flat = {f"{c['stage']}_{side}": c[side] for c in stages for side in ("in", "out")}
        if "dedupe" in self.counts:  # the columns' `validate` row: the dedupe stage's check, after its copies
            dedupe = self.counts["dedupe"]
            kept = dedupe["in"] - dedupe["dropped"]
            flat.update(dedupe_out=kept, validate_in=kept, validate_out=dedupe["out"])
        return {**flat, "quarantined": self.quarantined_total, "duplicates": self.duplicates,
                "deferred": sum(self.deferred_sources.values()), "deferred_sources": dict(self.deferred_sources),
                "stories": {"new": self.stories_opened, "joined": self.stories_joined},
                "quarantined_by_stage": {c["stage"]: c["quarantined"] for c in stages},
                "stages": stages, "failures": list(self.failures)}

    # --- what the warehouse does not have yet ----------------------------------------------------

    @property
    def documents(self) -> list[Document]:
        with self._lock:
            return list(self._documents.values())

    @_locked
    def hold(self, documents: Iterable[Document]) -> None:
        for document in documents:
            if id(document) not in self._documents:
                self._documents[id(document)] = document
                self.bytes_held += _size(document)
        self.bytes_peak = max(self.bytes_peak, self.bytes_held)

    @_locked
    def release(self, documents: Iterable[Document], batch: str | None = None) -> None:
        """Documents let go (a `batch`'s, at its clean check: nothing more to wait for from it)."""
        for document in documents:
            if self._documents.pop(id(document), None) is not None:
                self.bytes_held -= _size(document)
        self._releases.pop(batch, None)

    @_locked
    def releasing(self, batch: str, check: PrefectFuture[Any]) -> None:
        """A batch's clean check was submitted: once it has run, the batch's documents are let go."""
        self._releases[batch] = check

    @property
    def releasing_any(self) -> bool:
        """Whether a batch submitted has not let its documents go yet."""
        with self._lock:
            return bool(self._releases)

    def room(self, budget: int, wait: bool = True) -> bool:
        """Whether the documents held are within `budget` bytes (0: no budget), so that more may be fetched.
        Over it, and with `wait`, first waits for the clean checks submitted to finish, one at a time, until
        enough was let go; False if none is left to wait for (the documents held are in no batch yet: the
        caller must let them reach one)."""
        while budget and self.bytes_held > budget:
            with self._lock:
                pending = list(self._releases.items())
            if not wait or not pending:
                return False
            done = next(as_completed([check for _, check in pending]))  # (its documents are let go by now)
            with self._lock:
                for batch, check in pending:
                    if check is done and self._releases.get(batch) is check:
                        del self._releases[batch]
        return True

    @_locked
    def unloaded(self, batch: str, articles: list[Article], copies: list[Duplicate]) -> None:
        """A batch's articles and copies, checked and not loaded yet."""
        self._unloaded[batch] = (articles, copies)

    @_locked
    def cleared(self, batch: str) -> None:
        """A batch loaded: the warehouse has its articles and copies."""
        self._unloaded.pop(batch, None)
        self._releases.pop(batch, None)

    @property
    def articles(self) -> list[Article]:
        with self._lock:
            return [a for articles, _ in self._unloaded.values() for a in articles]

    @property
    def copies(self) -> list[Duplicate]:
        with self._lock:
            return [d for _, copies in self._unloaded.values() for d in copies]
