"""Data-quality checks with Great Expectations: one suite per stage, stored as JSON in expectations/.

A suite's expectations run on tables describing the stage's output batch. By default an expectation
checks the `records` table (one row per record, with a `row_id`; for the dedupe stage, the articles kept
and the copies dropped); `"meta": {"on": "sources"}` makes it check the `sources` table (one row per source
of the batch, with per-source shares). The `loaded` suite checks the warehouse tables themselves through a
SQL data source (`"on": "articles"` or `"duplicates"`, the rows of the run).

What a failed expectation does depends on its `severity` (a native field of Great Expectations 1.x):
- `critical`, on records: the failing rows are held back (quarantined) with the
  expectation and the offending value as reasons; the rest goes on;
- `critical`, on sources: the stage fails for each failing source (a site changed its layout);
- `critical`, on the whole table (an aggregate, or a warehouse check): the stage fails for the batch;
- `warning`/`info`: reported only.

Great Expectations is imported lazily (importing it costs seconds); one context is built per run, and
its validation results become the run's Data Docs site.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import threading
import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd

ROW_ID = "row_id"
BASIC = {"result_format": "BASIC"}  # counts, percent and a sample of unexpected values
SUITE_FOR_STAGE = {"fetch": "fetched", "clean": "cleaned", "dedupe": "deduplicated", "load": "loaded"}
RECORDS, SOURCES, DUPLICATES, ARTICLES = "records", "sources", "duplicates", "articles"
# How failing rows of each table are identified in Great Expectations' results.
INDEX_COLUMNS = {RECORDS: [ROW_ID], SOURCES: ["source"], ARTICLES: ["id"], DUPLICATES: ["id"]}


# Imported by Great Expectations for expectations and metrics no suite here uses (KL divergence, KS tests and
# their charts), at import time: about 40% of its import (scipy.stats alone pulls scipy.optimize and
# scipy.spatial). They are imported on first use instead, whole, as a plain import would.
DEFERRED_MODULES = ("scipy.stats", "altair")


class _Deferred(types.ModuleType):
    """Stands in `sys.modules` for a module not imported yet; the first attribute it lacks imports the real
    one, whose attributes it then takes on. (importlib's LazyLoader does not do: an `import` statement reads
    the module's `__spec__`, which loads it.)"""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__spec__ = None  # read by every import of the name: must not load it
        self._newsflow_lock = threading.RLock()

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # introspection (copy, pickle, inspect) does not load the module
        with self._newsflow_lock:  # (re-entrant: the real module's own imports may ask the stand-in)
            name = self.__name__
            if sys.modules.get(name) is self:
                del sys.modules[name]
                parent, _, child = name.rpartition(".")
                if parent and getattr(sys.modules.get(parent), child, None) is self:
                    delattr(sys.modules[parent], child)  # the import sets the real one there
            real = importlib.import_module(name)
            self.__dict__.update({k: v for k, v in vars(real).items() if k != "__getattr__"})
        return getattr(real, attr)


def defer_unused_imports(names: Sequence[str] = DEFERRED_MODULES) -> None:
    """Put a stand-in in `sys.modules` for each of `names` not imported yet (its parent package is)."""
    for name in names:
        if name in sys.modules:
            continue
        parent, _, child = name.rpartition(".")
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except (ImportError, ValueError):
            continue
        stand_in = _Deferred(name)
        sys.modules[name] = stand_in
        if parent:  # `from scipy import stats` takes the package's attribute
            setattr(importlib.import_module(parent), child, stand_in)


def import_great_expectations() -> None:
    """Import what a Validator needs (a few CPU seconds), e.g. on a thread while the run starts up."""
    defer_unused_imports()
    import great_expectations  # noqa: F401
    from great_expectations.core.run_identifier import RunIdentifier  # noqa: F401
    from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: F401
    from great_expectations.validator.v1_validator import Validator  # noqa: F401

    from tasks import gx_speedups  # noqa: F401


class StageFailed(RuntimeError):
    """A batch-level critical expectation failed: the stage's output cannot be trusted."""


@dataclass(slots=True)
class Verdict:
    """The outcome of one suite on one batch."""

    stage: str
    suite: str
    label: str = ""  # what was checked: a source, a batch, the warehouse
    results: list[dict[str, Any]] = field(default_factory=list)  # one per expectation: rows of dq_results
    failed_rows: dict[int, list[str]] = field(default_factory=dict)  # records row id -> critical failures
    failed_sources: dict[str, list[str]] = field(default_factory=dict)  # source -> critical failures
    batch_failures: list[str] = field(default_factory=list)  # critical failures of the whole batch

    def merge(self, other: Verdict) -> Verdict:
        """Add the results of another validation of the same batch (another of its tables)."""
        self.results += other.results
        for mine, theirs in ((self.failed_rows, other.failed_rows), (self.failed_sources, other.failed_sources)):
            for key, reasons in theirs.items():
                mine.setdefault(key, []).extend(reasons)
        self.batch_failures += other.batch_failures
        return self

    @property
    def success(self) -> bool:
        return not (self.failed_rows or self.failed_sources or self.batch_failures)


def load_suite_definition(suite: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or get_settings().expectations_dir) / f"{suite}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def table_of(expectation: dict[str, Any]) -> str:
    return (expectation.get("meta") or {}).get("on", RECORDS)


def columns_read(definition: dict[str, Any], table: str) -> set[str] | None:
    """The columns of `table` that a suite's expectations read, with the row ids; None when some
    expectation reads the whole table (or a row condition we do not parse)."""
    columns: set[str] = set(INDEX_COLUMNS[table])
    for expectation in definition["expectations"]:
        if table_of(expectation) != table:
            continue
        kwargs = expectation.get("kwargs") or {}
        condition = kwargs.get("row_condition")
        if expectation["type"].startswith("expect_table_") or (condition and not isinstance(condition, dict)):
            return None
        columns |= {kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)}
        columns |= set(kwargs.get("column_list") or ())
        if condition:
            columns.add((condition.get("column") or {}).get("name"))
    return columns


def warehouse_queries(run_id: str) -> dict[str, str]:
    """The rows one run wrote (`run_writes`: another run touching them later does not take them away), as
    the `loaded` suite's tables."""
    run = run_id.replace("'", "''")
    return {
        ARTICLES: "SELECT a.id, a.canonical_url, a.content_hash, a.text, a.word_count FROM run_writes w "
                  f"JOIN articles a ON a.id = w.row_id WHERE w.run_id = '{run}' AND w.kind = 'article'",
        # LEFT JOIN: a duplicate whose article is gone has no `kept_article_id` (an orphan).
        DUPLICATES: "SELECT d.id, d.url, d.article_id, a.id AS kept_article_id FROM run_writes w "
                    "JOIN duplicates d ON d.id = w.row_id LEFT JOIN articles a ON a.id = d.article_id "
                    f"WHERE w.run_id = '{run}' AND w.kind = 'duplicate'",
    }


class Validator:
    """One Great Expectations context per run; validates stage tables against the suites on disk.

    Suites are read once per run (edit a threshold, and the next run uses it). When `docs_dir` is given,
    `build_docs()` renders every validation of the run as a Data Docs site there.
    """

    def __init__(self, expectations_dir: Path | None = None, docs_dir: Path | None = None,
                 run_name: str | None = None) -> None:
        defer_unused_imports()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        from tasks import gx_speedups

        gx_speedups.install()
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self._gx = gx
        self.expectations_dir = expectations_dir or get_settings().expectations_dir
        self.docs_dir = docs_dir
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.context.enable_analytics(False)  # GX_ANALYTICS_ENABLED=false is set too (tasks.settings)
        # Only our site: the ephemeral context's default one would go to a temporary directory.
        self.context.variables.data_docs_sites = {}
        if docs_dir is not None:
            self.context.add_data_docs_site("newsflow", {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
        self._pandas = self.context.data_sources.add_pandas("newsflow")
        self._sql: dict[str, Any] = {}
        self._definitions: dict[tuple[str, str], Any] = {}  # (suite, table) -> ValidationDefinition
        self._suites: dict[str, dict[str, Any]] = {}
        self._gx_suites: dict[str, Any] = {}
        self._failure_definitions: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._original_id: dict[str, str] = {}  # expectation id in a failures suite -> in its whole suite
        self._unsaved: list[tuple[Any, Any, Any]] = []  # validation results not yet in the context's store
        self.validated = 0
        self.run_name = run_name  # shown in the Data Docs

    def _run(self, definition: Any, result_format: dict[str, Any], batch_parameters: dict[str, Any] | None = None,
             expectation_parameters: dict[str, Any] | None = None) -> Any:
        """What `ValidationDefinition.run` does, less its per-call costs this class makes needless: no
        freshness check of suite and definition (built here once per run, never changed), and the results
        kept for the Data Docs (stored by `build_docs`, once per run; not at all without a site)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator as BatchValidator

        from tasks.gx_speedups import cached_configurations

        validator = BatchValidator(batch_definition=definition.batch_definition, batch_parameters=batch_parameters,
                                   result_format=result_format)
        with cached_configurations():
            results = validator.validate_expectation_suite(definition.suite, expectation_parameters)
        if self.docs_dir is not None:
            run_id = RunIdentifier(run_name=self.run_name, run_time=datetime.now(UTC))
            results.meta.update(validation_id=definition.id, checkpoint_id=None, run_id=run_id,
                                validation_time=run_id.run_time,
                                batch_parameters={k: "<dataframe>" if k == "dataframe" else v
                                                  for k, v in (batch_parameters or {}).items()} or None)
            suite_id, result_id = definition._get_expectation_suite_and_validation_result_ids(validator, run_id)
            self._unsaved.append((results, result_id, suite_id))
        return results

    # --- building the GX objects once ---------------------------------------------------------

    def suite_definition(self, suite: str) -> dict[str, Any]:
        if suite not in self._suites:
            self._suites[suite] = load_suite_definition(suite, self.expectations_dir)
        return self._suites[suite]

    def tables_of(self, suite: str) -> list[str]:
        return sorted({table_of(e) for e in self.suite_definition(suite)["expectations"]})

    def _gx_suite(self, suite: str, table: str) -> Any:
        name = suite if table == RECORDS else f"{suite}.{table}"
        if name not in self._gx_suites:
            definition = self.suite_definition(suite)
            expectations = [e for e in definition["expectations"] if table_of(e) == table]
            self._gx_suites[name] = self.context.suites.add(self._gx.ExpectationSuite(
                name=name, expectations=expectations, meta=definition.get("meta") or {}))
        return self._gx_suites[name]

    def _definition(self, suite: str, table: str, asset_factory: Any, variant: str = "") -> Any:
        key = (suite, table, variant)
        if key not in self._definitions:
            batch_definition = asset_factory()
            self._definitions[key] = self.context.validation_definitions.add(self._gx.ValidationDefinition(
                name=f"{suite}.{table}{variant}", data=batch_definition, suite=self._gx_suite(suite, table)))
        return self._definitions[key]

    def _failures_definition(self, suite: str, table: str, failed: list[str]) -> Any:
        """The failed expectations of a suite's table (by id), on their own: their failing rows in full."""
        key = (suite, table, tuple(failed))
        if key not in self._failure_definitions:
            whole = self._gx_suite(suite, table)
            number = len(self._failure_definitions) + 1
            name = f"{whole.name}.failed-{number}"
            picked = [e for e in whole.expectations if e.id in failed]
            sub = self.context.suites.add(self._gx.ExpectationSuite(
                name=name, expectations=[e.configuration.to_json_dict() for e in picked], meta=whole.meta))
            for original, copy in zip(picked, sub.expectations, strict=True):
                self._original_id[copy.id] = original.id
            self._failure_definitions[key] = self.context.validation_definitions.add(self._gx.ValidationDefinition(
                name=name, data=self._dataframe_definition(suite, table).batch_definition, suite=sub))
        return self._failure_definitions[key]

    def _needed(self, suite: str, table: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Only the columns the table's expectations read (and the row ids): Great Expectations hashes
        and handles every column of the frame it is given."""
        columns = columns_read(self.suite_definition(suite), table)
        if columns is None:
            return frame
        kept = [c for c in frame.columns if c in columns]
        return frame[kept] if len(kept) < len(frame.columns) else frame

    def prepare(self, warehouse_url: str | None = None, run_id: str | None = None) -> None:
        """Build every suite's Great Expectations objects now (once per run), not in the first batch;
        the warehouse checks' too when the warehouse and the run are given."""
        for suite in SUITE_FOR_STAGE.values():
            for table in self.tables_of(suite):
                if suite != SUITE_FOR_STAGE["load"]:
                    self._dataframe_definition(suite, table)
                elif warehouse_url and run_id:
                    self._warehouse_definition(warehouse_url, run_id, table)
                else:
                    self._gx_suite(suite, table)

    def _dataframe_definition(self, suite: str, table: str) -> Any:
        def factory() -> Any:
            asset = self._pandas.add_dataframe_asset(f"{suite}.{table}")
            return asset.add_batch_definition_whole_dataframe(f"{suite}.{table}")
        return self._definition(suite, table, factory)

    # --- validating ---------------------------------------------------------------------------

    def validate(self, stage: str, tables: pd.DataFrame | dict[str, pd.DataFrame], label: str = "",
                 suite: str | None = None) -> Verdict:
        """Check a stage's batch: `tables` maps table names (records, sources, duplicates) to frames."""
        if not isinstance(tables, dict):
            tables = {RECORDS: tables}
        suite_name = suite or SUITE_FOR_STAGE[stage]
        verdict = Verdict(stage=stage, suite=suite_name, label=label)
        for table in self.tables_of(suite_name):
            frame = tables.get(table)
            if frame is None or frame.empty:
                continue  # nothing of that kind in this batch (no duplicates found, ...)
            # Counts and a sample for every expectation (BASIC costs far less than COMPLETE), then every
            # failing row only for the critical expectations that failed: those quarantine rows
            frame = self._needed(suite_name, table, frame)
            outcome = self._run(self._dataframe_definition(suite_name, table), BASIC, {"dataframe": frame})
            # (on sources, of any severity: which sources failed is what the reports show)
            failed = [r.expectation_config.id for r in outcome.results
                      if not r.success and _error(r) is None
                      and (table == SOURCES or _severity(r.expectation_config) == "critical")]
            rows: dict[str, list[dict[str, Any]]] = {}
            if failed:
                detail = self._run(self._failures_definition(suite_name, table, failed), {
                    "result_format": "COMPLETE", "unexpected_index_column_names": INDEX_COLUMNS[table],
                    "return_unexpected_index_query": False}, {"dataframe": frame})
                rows = {self._original_id[r.expectation_config.id]: (r.result or {}).get("unexpected_index_list")
                        for r in detail.results}
            self._read(outcome, table, verdict, rows=rows)
        return verdict

    def check_batch(self, stage: str, tables: dict[str, pd.DataFrame], label: str, row_sources: Sequence[str],
                    already_rejected: Sequence[str] = (), share_column: str = "failed_share",
                    suite: str | None = None) -> Verdict:
        """A stage's quality gate on one batch: its records (and duplicates), then, if the suite has
        per-source expectations, the share of each source's pages the stage could not use: those it
        `already_rejected` itself (one source name per page) and the rows failing a critical check.
        `row_sources` names the source of each records row, then of each page found unchanged since the last
        run (usable, not in the records)."""
        from tasks.frames import sources_frame

        suite = suite or SUITE_FOR_STAGE[stage]
        verdict = self.validate(stage, tables, label, suite)
        if SOURCES in self.tables_of(suite):
            usable = [s for i, s in enumerate(row_sources) if i not in verdict.failed_rows]
            unusable = [*already_rejected, *(row_sources[i] for i in verdict.failed_rows)]
            verdict.merge(self.validate(stage, {SOURCES: sources_frame(usable, unusable, share_column)}, label,
                                        suite))
        return verdict

    def validate_warehouse(self, warehouse_url: str, run_id: str, counts: dict[str, int],
                           label: str = "warehouse") -> Verdict:
        """Run the `loaded` suite on the warehouse tables; `counts` are the run's own figures
        (`articles_loaded`, `duplicates_recorded`), referred to in the suite as `{"$PARAMETER": name}`."""
        suite_name = SUITE_FOR_STAGE["load"]
        verdict = Verdict(stage="load", suite=suite_name, label=label)
        for table in self.tables_of(suite_name):
            definition = self._warehouse_definition(warehouse_url, run_id, table)
            outcome = self._run(definition, BASIC, expectation_parameters=dict(counts))
            self._read(outcome, table, verdict, batch_level=True)
        return verdict

    def _warehouse_definition(self, warehouse_url: str, run_id: str, table: str) -> Any:
        """The `loaded` suite's check of one warehouse table; queries name the run: one per run and table."""
        source = self._sql_source(warehouse_url)

        def factory() -> Any:
            asset = source.add_query_asset(f"{table}-{run_id}", query=warehouse_queries(run_id)[table])
            return asset.add_batch_definition_whole_table(f"{table}-{run_id}")
        return self._definition(SUITE_FOR_STAGE["load"], table, factory, variant=f"-{source.name}-{run_id}")

    def _sql_source(self, warehouse_url: str) -> Any:
        """A SQL data source per warehouse (its connection string stays inside the context)."""
        if warehouse_url not in self._sql:
            name = f"warehouse-{len(self._sql) + 1}"
            if warehouse_url.startswith("sqlite"):
                self._sql[warehouse_url] = self.context.data_sources.add_sqlite(name, connection_string=warehouse_url)
            else:
                with warnings.catch_warnings():  # "a more specific data source may be more appropriate"
                    warnings.simplefilter("ignore")
                    self._sql[warehouse_url] = self.context.data_sources.add_sql(name, connection_string=warehouse_url)
        return self._sql[warehouse_url]

    def _read(self, outcome: Any, table: str, verdict: Verdict, batch_level: bool = False,
              rows: dict[str, Any] | None = None) -> None:
        """Turn Great Expectations' results into dq_results rows and critical failures by row/source;
        `rows` are the failing rows of the critical expectations that failed, by expectation id."""
        self.validated += 1
        for result in outcome.results:
            config = result.expectation_config
            severity = _severity(config)
            name = describe(config.type, config.kwargs, table)
            details = result.result or {}
            rows_failed = (rows or {}).get(config.id)
            observed = details.get("observed_value")
            column = config.kwargs.get("column")
            if observed is None and rows_failed and table == SOURCES:  # which sources, with their values
                observed = {str(row["source"]): row.get(column) for row in rows_failed[:20]}
            elif observed is None and details.get("partial_unexpected_list"):
                observed = details["partial_unexpected_list"][:10]
            error = _error(result) if not result.success else None
            verdict.results.append(_result_row(
                verdict.stage, verdict.suite, name, severity, bool(result.success), details.get("unexpected_count"),
                details.get("unexpected_percent"), observed if error is None else f"error: {error}"))
            if result.success or severity != "critical":
                continue
            if error or rows_failed is None or batch_level:
                shown = error or (observed if observed is not None else "")
                verdict.batch_failures.append(f"{name} (observed {_short(shown)})")
                continue
            for row in rows_failed:
                value = _plain(row.get(column)) if column else None
                reason = f"{name}: {column}={_short(value)}" if column else name
                if table == SOURCES:
                    verdict.failed_sources.setdefault(str(row["source"]), []).append(reason)
                else:
                    verdict.failed_rows.setdefault(int(row[ROW_ID]), []).append(reason)

    def build_docs(self) -> Path | None:
        """Render the run's validations as a Data Docs site; the path of its index page."""
        if self.docs_dir is None or not self.validated:
            return None
        store = self.context.validation_results_store
        for results, result_id, suite_id in self._unsaved:
            store.store_validation_results(suite_validation_result=results,
                                           suite_validation_result_identifier=result_id,
                                           expectation_suite_identifier=suite_id)
        self._unsaved.clear()
        self.context.build_data_docs(site_names=["newsflow"])
        index = self.docs_dir / "index.html"
        if not index.exists():
            return None
        from tasks.datadocs import localize_site
        from tasks.settings import get_settings

        for warning in localize_site(self.docs_dir, get_settings().data_docs_assets_dir):  # offline: no CDN
            logging.getLogger(__name__).warning("Data Docs: %s", warning)
        return index


def _error(result: Any) -> str | None:
    """The message of the exception an expectation raised, if it raised one. Great Expectations 1.x puts it
    at the top of `exception_info` for some failures, and for a metric that failed (a missing column) under
    that metric's id: read at the top only, the message was lost and the expectation taken as merely failed."""
    info = result.exception_info or {}
    raised = [info, *(v for v in info.values() if isinstance(v, dict))]
    for entry in raised:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "an exception was raised")
    return None


def _severity(config: Any) -> str:
    return str(getattr(config.severity, "value", config.severity) or "critical")


def describe(kind: str, kwargs: dict[str, Any], table: str = RECORDS) -> str:
    """A readable name for an expectation: its type, the arguments that matter, and its table if not records."""
    shown = {k: v for k, v in kwargs.items()
             if k not in ("batch_id", "result_format", "catch_exceptions", "row_condition", "condition_parser")}
    column = shown.pop("column", None)
    if kwargs.get("row_condition"):
        shown["where"] = _condition(kwargs["row_condition"])
    args = ", ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items()))
    subject = (f"{table}.{column}" if column else table) if table != RECORDS else (column or "")
    return f"{kind}({subject}{', ' if subject and args else ''}{args})" if subject or args else kind


def _condition(condition: Any) -> str:
    if isinstance(condition, dict) and "column" in condition:
        return f"{condition['column'].get('name')} {condition.get('operator')} {condition.get('parameter')}"
    return str(condition)


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
        "observed_value": None if observed is None else _short(_plain(observed), 500),
    }


def _plain(value: Any) -> Any:
    """numpy scalars and containers as plain Python, so that stored values read like the data."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    value = value.item() if hasattr(value, "item") else value
    return round(value, 4) if isinstance(value, float) else value
