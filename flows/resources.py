"""What one run holds open, and closes when it ends: its cleaning processes, the politeness state of its HTTP
clients, and the connections of the warehouse engines it used. Nothing of it outlives the run: a flow opens
`RunResources` and closes it on every way out.

A command-line run starts its cleaning processes before the flow, while Prefect's temporary server boots
(flows/early.py): it offers that pool to the run it starts (`tasks.cleaners.offer_cleaners`) and closes it
itself after.
"""

from __future__ import annotations

from tasks.cleaners import CleanerPool, offered_cleaners
from tasks.http import HttpSession
from tasks.settings import Settings
from tasks.warehouse import dispose_engines


class RunResources:
    """A run's cleaning processes (`cleaners`, kept warm between its batches) and HTTP politeness state
    (`http`: each host's turn, robots.txt, the bound on requests in flight); closing it ends the workers the
    run started and disposes the warehouse engines' pooled connections."""

    def __init__(self, settings: Settings) -> None:
        offered = offered_cleaners()
        self._own_cleaners = offered is None
        self.cleaners = CleanerPool(settings) if offered is None else offered
        self.http = HttpSession(settings)

    def __enter__(self) -> RunResources:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._own_cleaners:
                self.cleaners.close()
            self.http.close()
        finally:
            dispose_engines()
