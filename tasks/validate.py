"""Data-quality checks with Great Expectations: one suite per stage, stored as JSON in expectations/.

Each suite runs on a stage's output batch (a pandas frame, one row per record). Rows failing a
**critical** row-level expectation are returned with the failed expectations as reasons, so the flow
can quarantine them and go on; warnings are reported only. Great Expectations is imported lazily:
importing it costs seconds, and only this stage needs it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

ROW_ID = "row_id"
SUITE_FOR_STAGE = {"fetch": "fetched", "clean": "cleaned", "dedupe": "deduplicated", "load": "loaded"}


class StageFailed(RuntimeError):
    """A batch-level critical expectation failed: the stage's output cannot be trusted."""


@dataclass(slots=True)
class Verdict:
    """The outcome of one suite on one batch."""

    stage: str
    suite: str
    results: list[dict[str, Any]] = field(default_factory=list)  # one per expectation: rows of dq_results
    failed_rows: dict[int, list[str]] = field(default_factory=dict)  # row id -> critical failures
    batch_failures: list[str] = field(default_factory=list)  # critical failures not tied to rows

    @property
    def success(self) -> bool:
        return not self.failed_rows and not self.batch_failures


def load_suite_definition(suite: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or get_settings().expectations_dir) / f"{suite}.json"
    return json.loads(path.read_text(encoding="utf-8"))


class Validator:
    """One Great Expectations context per run; validates stage batches against the suites on disk."""

    def __init__(self, expectations_dir: Path | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self._gx = gx
        self.expectations_dir = expectations_dir or get_settings().expectations_dir
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("newsflow")
        self._batches: dict[str, Any] = {}

    def _batch_definition(self, suite: str) -> Any:
        if suite not in self._batches:
            asset = self._source.add_dataframe_asset(suite)
            self._batches[suite] = asset.add_batch_definition_whole_dataframe(suite)
        return self._batches[suite]

    def validate(self, stage: str, frame: pd.DataFrame, suite: str | None = None) -> Verdict:
        suite_name = suite or SUITE_FOR_STAGE[stage]
        definition = load_suite_definition(suite_name, self.expectations_dir)
        suite_obj = self._gx.ExpectationSuite(**definition)
        verdict = Verdict(stage=stage, suite=suite_name)
        if frame.empty:
            # Nothing to check row by row; an empty batch is reported, not validated.
            verdict.results.append(_result_row(stage, suite_name, "batch is not empty", "info", False, 0, None, 0))
            return verdict
        batch = self._batch_definition(suite_name).get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite_obj, result_format={
            "result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]})
        for result in outcome.results:
            config = result.expectation_config
            severity = str(getattr(config.severity, "value", config.severity) or "critical")
            name = describe(config.type, config.kwargs)
            details = result.result or {}
            verdict.results.append(_result_row(
                stage, suite_name, name, severity, bool(result.success), details.get("unexpected_count"),
                details.get("unexpected_percent"), details.get("observed_value")))
            if result.success or severity != "critical":
                continue
            rows = details.get("unexpected_index_list")
            if rows is None:
                verdict.batch_failures.append(f"{name} (observed {details.get('observed_value')!r})")
                continue
            column = config.kwargs.get("column")
            for row in rows:
                value = row.get(column) if column else None
                reason = f"{name}: {column}={_short(value)}" if column else name
                verdict.failed_rows.setdefault(int(row[ROW_ID]), []).append(reason)
        return verdict


def describe(kind: str, kwargs: dict[str, Any]) -> str:
    """A readable name for an expectation: its type and the arguments that matter."""
    shown = {k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format", "catch_exceptions")}
    column = shown.pop("column", None)
    args = ", ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items()))
    return f"{kind}({column}{', ' if column and args else ''}{args})" if column or args else kind


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _result_row(stage: str, suite: str, expectation: str, severity: str, success: bool,
                unexpected_count: Any, unexpected_percent: Any, observed: Any) -> dict[str, Any]:
    return {
        "stage": stage, "suite": suite, "expectation": expectation, "severity": severity,
        "success": success,
        "unexpected_count": int(unexpected_count) if unexpected_count is not None else None,
        "unexpected_percent": float(unexpected_percent) if unexpected_percent is not None else None,
        "observed_value": None if observed is None else _short(observed, 500),
    }
