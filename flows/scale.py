"""Where the work runs. Fetching is I/O-bound: threads (the flow's default task runner and the fetch
stage's own pool). Cleaning is CPU-bound: chunks of documents go to time-limited cleaning processes, one
per core, waited on by as many threads of the flow's process and kept warm between batches (parsers and
language model loaded; see tasks.cleaners), or to a Dask cluster (prefect-dask) when
`NEWSFLOW_DASK_ADDRESS` names one. Batches stream (flows/batches.py): a batch is cleaned while the ones
before it are deduplicated and loaded, and the next ones are being fetched."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from flows.stages import clean_task
from tasks.cleaners import CleanerPool
from tasks.records import CleanOutcome, Document
from tasks.settings import Settings
from tasks.sources import Source
from tasks.urls import host_of


def cpu_workers(settings: Settings) -> int:
    return settings.cpu_workers or os.cpu_count() or 1


def cpu_task_runner(settings: Settings) -> TaskRunner[Any]:
    """The Dask cluster named in the settings, else a process pool with one worker per core (used when
    cleaning has no time limit; with one, threads wait on time-limited cleaning processes)."""
    if settings.dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise RuntimeError("NEWSFLOW_DASK_ADDRESS is set but prefect-dask is not installed: "
                               "pip install 'newsflow[dask]'") from None
        return DaskTaskRunner(address=settings.dask_address)
    return ProcessPoolTaskRunner(max_workers=cpu_workers(settings))


def warm_cleaners(settings: Settings, cleaners: CleanerPool, count: int | None = None) -> None:
    """Start `count` of the run's cleaning processes (default: one per core) ahead of the first batch (see
    tasks.cleaners.CleanerPool.prepare), when the batches will be cleaned by them: not on a Dask cluster, nor
    in a process pool without time limits."""
    if not settings.dask_address and settings.clean_timeout_seconds > 0:
        cleaners.prepare(cpu_workers(settings) if count is None else count)


def interleave_sources(sources: Sequence[Source]) -> list[Source]:
    """Round-robin over the hosts sources are read from (their feed, sitemap or first URL), keeping the
    file's order within a host: the sources fetched at once are on different hosts, so one host's
    politeness delay does not serialise them."""
    by_host: dict[str, list[Source]] = {}
    for source in sources:
        url = source.first_url()
        by_host.setdefault(host_of(url) if url else "", []).append(source)
    groups = list(by_host.values())
    return [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    size = max(1, size)
    return [items[i:i + size] for i in range(0, len(items), size)]


def split_for_workers(batch: Sequence[Any], settings: Settings) -> list[Sequence[Any]]:
    """A batch's clean chunks: at least `cpu_chunk_size` documents each (every chunk costs a process's
    start-up), no more chunks than pool workers (a Dask cluster takes as many as there are)."""
    chunks = max(1, len(batch) // max(1, settings.cpu_chunk_size))
    if not settings.dask_address:
        chunks = min(chunks, cpu_workers(settings))
    return chunked(batch, -(-len(batch) // chunks)) if batch else [batch]


class StageProgress:
    """A progress artifact in the UI for a long stage, updated as its parts finish."""

    def __init__(self, stage: str, total: int, unit: str) -> None:
        self.stage, self.total, self.unit, self.done = stage, max(1, total), unit, 0
        self.deferred = 0  # items over the sources' budgets, left for the next runs
        self.artifact_id = create_progress_artifact(progress=0.0, key=f"{stage}-progress",
                                                    description=self._describe())

    def _describe(self) -> str:
        left = f"; {self.deferred:,} items left for the next runs (over the sources' budgets)" if self.deferred else ""
        return f"{self.stage}: {self.done} of {self.total} {self.unit} done{left}"

    def advance(self, n: int = 1, deferred: int = 0) -> None:
        self.done = min(self.total, self.done + n)
        self.deferred += deferred
        self._update()

    def grow(self, n: int) -> None:
        """More parts became known (a streamed stage learns its total as it goes)."""
        self.total += n
        self._update()

    def _update(self) -> None:
        update_progress_artifact(self.artifact_id, progress=100.0 * self.done / self.total,
                                 description=self._describe())


def merge_clean_outcomes(outcomes: Sequence[CleanOutcome]) -> CleanOutcome:
    merged = CleanOutcome()
    for outcome in outcomes:
        merged.articles.extend(outcome.articles)
        merged.rejections.extend(outcome.rejections)
        merged.stats.merge(outcome.stats)
    return merged


class CleanRunner:
    """Where a run's batches are cleaned, each mapped over its chunks: started with the first batch, closed
    with the run (`with CleanRunner(settings) as cleaner`)."""

    def __init__(self, settings: Settings, cleaners: CleanerPool | None = None) -> None:
        self.settings = settings
        self.cleaners = cleaners  # the run's cleaning processes (None: cleaned where the task runs)
        self.runner: TaskRunner[Any] | None = None
        self.progress: StageProgress | None = None

    def __enter__(self) -> CleanRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            self.runner.__exit__(None, None, None)

    def submit(self, batch: Sequence[Document], label: str) -> list[PrefectFuture[CleanOutcome]]:
        """The clean task runs of a batch's chunks, one per worker (see `split_for_workers`)."""
        settings = self.settings
        if self.runner is None:
            unbounded = settings.clean_timeout_seconds <= 0  # no time limit: no need for a process per document
            if settings.dask_address or (unbounded and cpu_workers(settings) > 1):
                self.runner = cpu_task_runner(settings)
                self.cleaners = None  # cleaned where the task runs
            else:  # each thread waits on a time-limited cleaning process, kept warm between batches
                self.runner = ThreadPoolTaskRunner(max_workers=cpu_workers(settings))
            self.runner.__enter__()
        chunks = split_for_workers(batch, settings)
        if self.progress is None:
            self.progress = StageProgress("clean", len(chunks), "chunks")
        else:
            self.progress.grow(len(chunks))
        labels = [label] if len(chunks) == 1 else [f"{label} chunk {c}" for c in range(1, len(chunks) + 1)]
        # Opaque: Prefect need not walk every document for futures. Not for Dask: its serialisation turns
        # the annotation (a named tuple) into a plain tuple that Prefect no longer unwraps.
        wrap = (lambda chunk: chunk) if settings.dask_address else opaque
        extra = {} if self.cleaners is None else {"cleaners": opaque(self.cleaners)}
        return [self.runner.submit(clean_task, {"documents": wrap(list(chunk)), "label": label, **extra})
                for label, chunk in zip(labels, chunks, strict=True)]

    def cleaned(self, chunks: int) -> None:
        """`chunks` more are done (the progress shown in the UI)."""
        if self.progress is not None and chunks:
            self.progress.advance(chunks)
