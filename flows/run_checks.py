"""The one object that owns a run's Great Expectations context and the thread that builds it."""

from __future__ import annotations

import logging
import threading

from tasks.report import data_docs_dir
from tasks.settings import Settings
from tasks.validate import Validator


class RunChecks:
    """The run's checks: its Great Expectations context (one per run: building it costs about a second, its
    suites read once), and the thread that builds it ahead."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings, self.run_id = settings, run_id
        self._validator: Validator | None = None
        self._lock = threading.Lock()  # the warm-up thread may be building it
        self.validating = threading.Lock()  # one validation at a time: batches in flight share the context
        self._warm_up: threading.Thread | None = None

    def validator(self) -> Validator:
        with self._lock:
            if self._validator is None:
                validator = Validator(self.settings.expectations_dir, data_docs_dir(self.settings, self.run_id),
                                      self.run_id)
                validator.prepare(self.settings.warehouse_url, self.run_id)
                self._validator = validator
            return self._validator

    def prepare(self) -> None:
        """Build the context on a thread of its own. Called when the run has something to check: an unchanged
        re-run never pays for it."""
        if self._warm_up is None and self._validator is None:
            self._warm_up = threading.Thread(target=self._build_quietly, name="validator-warm-up", daemon=True)
            self._warm_up.start()

    def _build_quietly(self) -> None:
        try:
            self.validator()
        except Exception:  # the first check builds it again and reports the error where it belongs
            logging.getLogger(__name__).debug("validator warm-up failed", exc_info=True)

    @property
    def validated(self) -> bool:
        """Whether the run built its checks; the Data Docs site then shows what was validated, if anything."""
        return self._validator is not None

    def close(self) -> None:
        with self._lock:  # (after a warm-up still running: it would leave its context behind)
            self._validator = None
