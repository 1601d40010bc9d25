"""What a command-line run will need, started before its flow: Prefect's temporary server (several seconds
to boot, in a process of its own) and, when the run has local files to clean and check, the cleaning
processes and the import of Great Expectations, on threads that overlap the server's start-up instead of
following it. The server's process is launched first, before anything else competes for this process's
interpreter: the rest overlaps its boot. A run of feeds may have nothing new: those start only when
documents arrive."""

from __future__ import annotations

import contextlib
import glob
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tasks.cleaners import CleanerPool, offer_cleaners
from tasks.settings import Settings
from tasks.sources import FilesSource, Source, WarcSource

ONE_DOCUMENT = (".txt", ".html", ".htm")  # a JSON Lines file or a WARC archive may hold thousands


def local_documents(specs: Sequence[Source]) -> tuple[int, bool]:
    """The local files the sources name (0: nothing to clean yet), and whether each is one document."""
    paths = [Path(path) for spec in specs if isinstance(spec, FilesSource | WarcSource)
             for path in glob.iglob(spec.path, recursive=True) if Path(path).is_file()]
    return len(paths), all(path.suffix.lower() in ONE_DOCUMENT for path in paths)


def cleaners_for(specs: Sequence[Source], settings: Settings) -> int:
    """The cleaning processes to start ahead of a run: one per core, unless the run only reads a few
    one-document files: a chunk has at least `cpu_chunk_size` documents, so two files need one process."""
    workers = settings.cpu_workers or os.cpu_count() or 1  # (flows.scale.cpu_workers, without its imports)
    files, countable = local_documents(specs)
    if not countable or len(specs) != sum(isinstance(s, FilesSource | WarcSource) for s in specs):
        return workers  # feeds, sitemaps, pages, archives: as many documents as they bring
    return min(workers, -(-files // max(1, settings.cpu_chunk_size)))


@dataclass
class EarlyStart:
    """What was started ahead of a run. As a context manager: the run started within the block cleans with
    `cleaners` (offered to it), whose workers end with the block."""

    cleaners: CleanerPool
    threads: list[threading.Thread] = field(default_factory=list)
    server: threading.Thread | None = None
    _scope: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> EarlyStart:
        self._scope.enter_context(self.cleaners)  # closed last: the workers end when the block does
        self._scope.enter_context(offer_cleaners(self.cleaners))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._scope.close()

    def wait_for_server(self) -> None:
        """Before the flow asks Prefect for a client (which would start a second server meanwhile)."""
        if self.server is not None:
            self.server.join()


def _thread(target, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _start_server(launched: threading.Event) -> None:
    """Import the temporary server's code and start it; `launched` is set once its process is spawned (or
    that failed), while this thread goes on waiting for the server to answer."""
    try:
        import prefect.main  # noqa: F401  (sets up Prefect's logging, as the flow's import would: the start is logged)
        from prefect.server.api.server import SubprocessASGIServer

        # The same instance the flow's client then finds running; if it fails, that client starts it again
        # and reports the error where it belongs.
        server = SubprocessASGIServer()
    except Exception:
        launched.set()
        raise

    def watch() -> None:
        while server.server_process is None and not stopped.is_set():
            time.sleep(0.005)
        launched.set()

    stopped = threading.Event()
    _thread(watch, "prefect-server-launch")
    try:
        with contextlib.suppress(Exception):
            server.start()
    finally:
        stopped.set()


def _launch_server() -> threading.Thread | None:
    """Start the temporary server on a thread (which then waits for it to answer) and return once its
    process is launched: until then, what comes next in this process (the flow's imports, opening the
    warehouse, Great Expectations' import, the cleaning processes) would compete with the server's imports
    for this interpreter and delay its launch by seconds; from then on, it overlaps the server's boot, in
    a process of its own."""
    launched = threading.Event()
    thread = _thread(lambda: _start_server(launched), "prefect-server-start")
    if thread is not None:
        while thread.is_alive() and not launched.wait(0.1):
            pass
    return thread


def start_early(specs: Sequence[Source], settings: Settings) -> EarlyStart:
    """Start the temporary server (unless PREFECT_API_URL names one) and, for local files, what cleaning
    and checking them needs. Use it as a context manager around the run: its cleaners are the run's."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    early = EarlyStart(CleanerPool(settings))
    if not PREFECT_API_URL.value() and PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        early.server = _launch_server()
    if local_documents(specs)[0]:
        from tasks.validate import import_great_expectations

        early.threads.append(_thread(import_great_expectations, "gx-import"))
        if not settings.dask_address:  # (a Dask cluster cleans in its own workers)
            early.cleaners.prepare(cleaners_for(specs, settings))
    return early
