"""Where the work runs. Fetching is I/O-bound: threads (the flow's default task runner and the fetch
stage's own pool). Cleaning is CPU-bound: small chunks of documents go to a process pool sized to the
machine, or to a Dask cluster (prefect-dask) when `NEWSFLOW_DASK_ADDRESS` names one."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from flows.stages import clean_task
from tasks.clean import CleanOutcome
from tasks.records import Document
from tasks.settings import Settings


def cpu_workers(settings: Settings) -> int:
    return settings.cpu_workers or os.cpu_count() or 1


def cpu_task_runner(settings: Settings) -> TaskRunner[Any]:
    """The Dask cluster named in the settings, else a process pool with one worker per core."""
    if settings.dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise RuntimeError("NEWSFLOW_DASK_ADDRESS is set but prefect-dask is not installed: "
                               "pip install 'newsflow[dask]'") from None
        return DaskTaskRunner(address=settings.dask_address)
    return ProcessPoolTaskRunner(max_workers=cpu_workers(settings))


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
        self.artifact_id = create_progress_artifact(progress=0.0, key=f"{stage}-progress",
                                                    description=self._describe())

    def _describe(self) -> str:
        return f"{self.stage}: {self.done} of {self.total} {self.unit} done"

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        update_progress_artifact(self.artifact_id, progress=100.0 * self.done / self.total,
                                 description=self._describe())


def merge_clean_outcomes(outcomes: Sequence[CleanOutcome]) -> CleanOutcome:
    merged = CleanOutcome()
    for outcome in outcomes:
        merged.articles.extend(outcome.articles)
        merged.rejections.extend(outcome.rejections)
        merged.stats.merge(outcome.stats)
    return merged


def clean_batches(batches: Sequence[Sequence[Document]], settings: Settings) -> Iterator[CleanOutcome]:
    """Each batch's clean outcome, in order. All chunks of all batches are submitted at once, so later
    batches are cleaned while earlier ones are deduplicated and loaded."""
    chunks = [split_for_workers(batch, settings) for batch in batches]
    total = sum(len(c) for c in chunks)
    if total <= 1 or (cpu_workers(settings) == 1 and not settings.dask_address):
        # A pool would cost more to start than the work (or there is one core): clean in this process.
        for number, batch in enumerate(batches, start=1):
            yield clean_task(batch, f"batch {number}")
        return
    progress = StageProgress("clean", total, "chunks")
    with cpu_task_runner(settings) as runner:
        futures = [[runner.submit(clean_task, {"documents": list(chunk), "label": f"batch {b} chunk {c}"})
                    for c, chunk in enumerate(batch_chunks, start=1)]
                   for b, batch_chunks in enumerate(chunks, start=1)]
        for batch_futures in futures:
            outcomes = []
            for future in batch_futures:
                outcomes.append(future.result())
                progress.advance()
            yield merge_clean_outcomes(outcomes)
