"""Where documents are cleaned under a time limit: worker processes, each cleaning one document at a time and
ended when one overruns, and the pool that keeps them warm between a run's batches.

This module imports no cleaning library: the parsers and the language model are loaded in the workers (and
in-process only when there is no worker), so a process that merely hands documents over, the flow's, never
pays for them. A `CleanerPool` lives as long as the run that opened it (a context manager): its workers end
when it closes, not at some later exit of the process.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from multiprocessing.pool import Pool

from tasks.records import Article, CleanOutcome, Document, Rejection
from tasks.settings import Settings, get_settings

WORKER_START_TIMEOUT = 120  # seconds for a fresh worker to import the parsers (slow on a loaded machine)
MAX_SPARE_CLEANERS = 4  # cleaners a pool keeps between batches: one per concurrent caller at most
logger = logging.getLogger(__name__)


def clean_in_worker(document: Document, settings: Settings | None) -> Article | Rejection:
    """`tasks.clean.clean_safely`, imported where it runs (in the worker process)."""
    from tasks.clean import clean_safely

    return clean_safely(document, settings)


def warm_up() -> None:
    """Load what cleaning needs (parsers, the language model, ICU's word dictionaries) in a fresh worker."""
    from tasks.clean import warm_up as load

    load()


def _reject(document: Document, reason: str) -> Rejection:
    return Rejection("clean", document.source, document.url, [reason], {"content_type": document.content_type})


def in_worker_process() -> bool:
    """A daemonic process (a Dask worker, a process pool's) may not start children: it cleans in-process."""
    return multiprocessing.current_process().daemon


class TimeLimitedCleaner:
    """Cleans documents one by one in a worker process, ending any that takes longer than `timeout` seconds.

    A runaway parse cannot be interrupted inside a thread (lxml holds the interpreter in C code), so the
    work happens in a spawned process that is killed and replaced when a document overruns. Works from
    Prefect's worker threads; `spawn` keeps the child free of the parent's threads and locks.
    """

    def __init__(self, timeout: float, settings: Settings | None = None,
                 work: Callable[[Document, Settings | None], Article | Rejection] = clean_in_worker,
                 warm: Callable[[], None] = warm_up) -> None:
        self.timeout = timeout
        self.settings = settings
        self.work = work
        self.warm = warm
        self._pool: Pool | None = None
        self._starting = threading.Lock()  # a warm-up thread (CleanerPool.prepare) may be starting the worker
        self._no_workers = False
        self._served = 0  # documents handed to the current worker
        self.max_documents = (settings or get_settings()).clean_worker_max_documents

    def __enter__(self) -> TimeLimitedCleaner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> Pool:
        with self._starting:
            return self._start_locked()

    def _start_locked(self) -> Pool:
        if self._pool is None:
            # Not `maxtasksperchild`: the pool would start the replacement itself, and its imports and model
            # loading would count against the next document's time limit. `clean` recycles it instead.
            self._pool = multiprocessing.get_context("spawn").Pool(1)
            self._served = 0
            # Imports and model loading happen here, outside any document's time limit.
            self._pool.apply_async(self.warm).get(WORKER_START_TIMEOUT)
        return self._pool

    def warm_quietly(self) -> None:
        """Start the worker now (on a thread of its own); a failure is left to the first document."""
        with self._starting:
            try:
                self._start_locked()
            except Exception:  # the first document starts it again and reports what is wrong
                logger.debug("cleaner warm-up failed", exc_info=True)
                self._close_locked()

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one is running."""
        workers = getattr(self._pool, "_pool", None) or []
        return workers[0].pid if workers else None

    def close(self) -> None:
        self._close_locked()

    def _close_locked(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def _in_process(self, document: Document) -> Article | Rejection:
        return self.work(document, self.settings)

    def clean(self, document: Document) -> Article | Rejection:
        if self._no_workers:
            return self._in_process(document)
        if self._served >= self.max_documents:
            self.close()  # recycled: the next worker is started and warmed up before this document's clock
        try:
            pool = self._start()
        except Exception as exc:  # no processes here (sandbox, resource limits): clean in-process, unbounded
            logger.warning("no worker process for cleaning (%s: %s): cleaning in-process without a time limit",
                           type(exc).__name__, exc)
            self.close()
            self._no_workers = True
            return self._in_process(document)
        self._served += 1
        pending = pool.apply_async(self.work, (document, self.settings))
        try:
            return pending.get(self.timeout)
        except multiprocessing.TimeoutError:
            self.close()  # the worker is still busy with this page: end it, the next call starts a new one
            return _reject(document, f"cleaning took longer than the {self.timeout:g} s limit")
        except Exception as exc:  # the worker died (memory, crash) or the document could not be sent
            self.close()
            return _reject(document, f"cleaning failed in the worker process: {type(exc).__name__}: {exc}")


class CleanerPool:
    """A run's cleaners, kept warm between its batches (a worker costs a spawn and the parsers' import, a
    second or more, per batch otherwise): borrowed by each batch's clean task, given back after it, and all
    ended when the pool closes. Opened by whoever runs the flow (the flow itself, or the command line ahead
    of it, so that the workers start while Prefect's server boots) and closed by it."""

    def __init__(self, settings: Settings, max_spare: int = MAX_SPARE_CLEANERS) -> None:
        self.settings = settings
        self.max_spare = max_spare
        self._spare: list[TimeLimitedCleaner] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> CleanerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def spare(self) -> list[TimeLimitedCleaner]:
        """The cleaners kept now (a copy)."""
        with self._lock:
            return list(self._spare)

    def borrow(self, timeout: float, settings: Settings) -> TimeLimitedCleaner:
        with self._lock:
            cleaner = self._spare.pop() if self._spare else None
        if cleaner is None:
            return TimeLimitedCleaner(timeout, settings)
        cleaner.timeout, cleaner.settings = timeout, settings
        return cleaner

    def give_back(self, cleaner: TimeLimitedCleaner) -> None:
        with self._lock:
            if not self._closed and len(self._spare) < self.max_spare:
                self._spare.append(cleaner)
                return
        cleaner.close()

    def prepare(self, count: int) -> None:
        """Start up to `count` cleaners' workers on threads of their own (a spawn, the parsers' imports, the
        language model: a second or more each) while the run is still fetching its first batch; the batches
        then borrow them warm. Cleaners already kept count, not those borrowed: call it before the first
        batch."""
        if self.settings.clean_timeout_seconds <= 0 or in_worker_process():
            return  # cleaned in-process: no worker to start
        with self._lock:
            if self._closed:
                return
            fresh = [TimeLimitedCleaner(self.settings.clean_timeout_seconds, self.settings)
                     for _ in range(min(count, self.max_spare) - len(self._spare))]
            self._spare.extend(fresh)  # borrowable at once: a borrower waits for the warm-up under way
        for cleaner in fresh:
            threading.Thread(target=cleaner.warm_quietly, name="cleaner-warm-up", daemon=True).start()

    def close(self) -> None:
        """End every kept worker process; cleaners given back later are ended at once."""
        with self._lock:
            spare, self._spare, self._closed = self._spare, [], True
        for cleaner in spare:
            cleaner.close()

    def clean(self, documents: Iterable[Document], settings: Settings | None = None) -> CleanOutcome:
        """Clean a batch, each document in a borrowed worker under `clean_timeout_seconds` (in-process when
        that is 0, or in a process that may not start children)."""
        settings = settings or self.settings
        documents = list(documents)
        if settings.clean_timeout_seconds > 0 and documents and not in_worker_process():
            cleaner = self.borrow(settings.clean_timeout_seconds, settings)
            try:
                results = [cleaner.clean(document) for document in documents]
            except BaseException:
                cleaner.close()
                raise
            self.give_back(cleaner)
        else:
            results = [clean_in_worker(document, settings) for document in documents]
        return CleanOutcome.of(results)


# A pool offered to the run started in this context: set and reset by `offer_cleaners`, it lasts a block.
_OFFERED: ContextVar[CleanerPool | None] = ContextVar("newsflow_offered_cleaners", default=None)


@contextmanager
def offer_cleaners(pool: CleanerPool) -> Iterator[CleanerPool]:
    """Within the block, a run started in this context cleans with `pool` (already warming up) instead of a
    pool of its own; the caller keeps it, and closes it."""
    token = _OFFERED.set(pool)
    try:
        yield pool
    finally:
        _OFFERED.reset(token)


def offered_cleaners() -> CleanerPool | None:
    return _OFFERED.get()


def clean_documents(documents: Iterable[Document], settings: Settings | None = None) -> CleanOutcome:
    """Clean a batch: every document becomes an article or a rejection with its reason; the batch goes on.

    With `clean_timeout_seconds` > 0 each document is cleaned in a worker process under that time limit,
    ended with the batch (a run keeps its workers between batches: `CleanerPool`).
    """
    settings = settings or get_settings()
    with CleanerPool(settings) as pool:
        return pool.clean(documents, settings)
