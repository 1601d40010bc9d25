"""tasks/validate.py's own logic on small suites written here: what is quarantined, what only reported, how
a result is named and shown, which columns a suite reads. One Great Expectations context for the file."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tasks.validate import (
    RECORDS,
    SOURCES,
    Validator,
    Verdict,
    _condition,
    _error,
    _plain,
    _result_row,
    _severity,
    _short,
    columns_read,
    describe,
    import_great_expectations,
    load_suite_definition,
    table_of,
    warehouse_queries,
)

import_great_expectations()  # at collection: mutmut's workers fork after it, not each paying seconds for it

WORDS = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "words", "min_value": 10},
         "severity": "critical"}
LANG = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "lang", "value_set": ["en"]},
        "severity": "warning"}
TITLE = {"type": "expect_column_values_to_not_be_null",
         "kwargs": {"column": "title", "condition_parser": "great_expectations",
                    "row_condition": {"column": {"name": "lang"}, "operator": "==", "parameter": "en"}},
         "severity": "info"}
SHARE = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "share", "max_value": 0.5},
         "severity": "critical", "meta": {"on": "sources"}}
SHARE_WARNING = {**SHARE, "kwargs": {"column": "share", "max_value": 0.3}, "severity": "warning"}
MISSING = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "nowhere", "max_value": 1},
           "severity": "critical", "meta": {"on": "sources"}}
FAILED_SHARE = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "failed_share", "max_value": 0.6},
                "severity": "critical", "meta": {"on": "sources"}}
COUNT = {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 2}, "severity": "critical"}


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suites")
    for name, expectations in {"probe": [WORDS, LANG, TITLE, SHARE, SHARE_WARNING, MISSING],
                               "rows": [WORDS], "shares": [WORDS, FAILED_SHARE], "count": [COUNT]}.items():
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "expectations": expectations}))
    return Validator(folder)


def records(words: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"row_id": range(len(words)), "words": words,
                         "lang": ["en", "fr"] * (len(words) // 2) + ["en"] * (len(words) % 2),
                         "title": [None] * len(words), "unread": ["x"] * len(words)})


def test_critical_rows_are_quarantined_warnings_and_infos_only_reported(validator):
    sources = pd.DataFrame({"source": ["a", "b", "c"], "share": [0.9, 0.1, 0.75]})
    before = validator.validated
    verdict = validator.validate("clean", {RECORDS: records([5] * 12 + [50, 60]), SOURCES: sources}, "L", "probe")
    assert validator.validated == before + 2  # one per table
    assert (verdict.stage, verdict.suite, verdict.label) == ("clean", "probe", "L")
    reason = "expect_column_values_to_be_between(words, min_value=10.0): words=5"
    assert verdict.failed_rows == {i: [reason] for i in range(12)}
    assert verdict.failed_sources == {
        "a": ["expect_column_values_to_be_between(sources.share, max_value=0.5): share=0.9"],
        "c": ["expect_column_values_to_be_between(sources.share, max_value=0.5): share=0.75"]}
    assert verdict.batch_failures == ['expect_column_values_to_be_between(sources.nowhere, max_value=1.0) '
                                      '(observed Error: The column "nowhere" in BatchData does not exist.)']
    assert not verdict.success
    rows = {r["expectation"]: r for r in verdict.results}
    assert rows["expect_column_values_to_be_between(words, min_value=10.0)"] == {
        "stage": "clean", "suite": "probe", "expectation": "expect_column_values_to_be_between(words, min_value=10.0)",
        "severity": "critical", "success": False, "unexpected_count": 12, "unexpected_percent": 12 / 14 * 100,
        "observed_value": "[5, 5, 5, 5, 5, 5, 5, 5, 5, 5]"}  # the first ten of the twelve
    assert rows["expect_column_values_to_be_in_set(lang, value_set=['en'])"]["severity"] == "warning"
    info = rows["expect_column_values_to_not_be_null(title, where=lang == en)"]
    assert (info["severity"], info["success"], info["unexpected_count"]) == ("info", False, 7)
    share = rows["expect_column_values_to_be_between(sources.share, max_value=0.5)"]
    assert share["observed_value"] == "{'a': 0.9, 'c': 0.75}" and share["unexpected_count"] == 2
    # A warning on sources says which sources too, and fails none of them.
    warned = rows["expect_column_values_to_be_between(sources.share, max_value=0.3)"]
    assert warned["observed_value"] == "{'a': 0.9, 'c': 0.75}" and warned["severity"] == "warning"
    missing = rows["expect_column_values_to_be_between(sources.nowhere, max_value=1.0)"]
    assert missing["observed_value"] == 'error: Error: The column "nowhere" in BatchData does not exist.'
    assert missing["unexpected_count"] is None and missing["unexpected_percent"] is None


def test_the_sources_shown_are_the_first_twenty(validator):
    sources = pd.DataFrame({"source": [f"s{n:02}" for n in range(25)], "share": [0.9] * 25})
    verdict = validator.validate("clean", {SOURCES: sources}, suite="probe")
    shown = next(r for r in verdict.results if r["expectation"].endswith("max_value=0.5)"))["observed_value"]
    assert shown == repr({f"s{n:02}": 0.9 for n in range(20)})
    assert len(verdict.failed_sources) == 25


def test_a_table_not_given_or_empty_is_not_checked(validator):
    verdict = validator.validate("clean", records([50, 60]), suite="probe")  # a frame alone is the records
    assert verdict.success and len(verdict.results) == 3  # the three records expectations, no sources ones
    empty = validator.validate("clean", {RECORDS: records([]), SOURCES: pd.DataFrame({"source": [], "share": []})},
                               suite="probe")
    assert empty.results == [] and empty.success


def test_a_table_level_critical_failure_fails_the_batch_not_rows(validator):
    verdict = validator.validate("clean", records([50, 60, 70]), suite="count")
    assert verdict.failed_rows == {}
    assert verdict.batch_failures == ["expect_table_row_count_to_equal(value=2) (observed 3)"]


def test_the_stage_names_its_suite(validator, tmp_path):
    (tmp_path / "cleaned.json").write_text(json.dumps({"name": "cleaned", "expectations": [WORDS]}))
    verdict = Validator(tmp_path).validate("clean", records([1, 50]))
    assert verdict.suite == "cleaned" and list(verdict.failed_rows) == [0]


def test_check_batch_fails_a_source_on_its_share_of_unusable_pages(validator):
    # a: rows 0 (fails) and 1 -> 1 of 2 unusable; b: row 2 and two pages rejected before -> 2 of 3.
    verdict = validator.check_batch("clean", {RECORDS: records([5, 50, 60])}, "L", ["a", "a", "b"],
                                    already_rejected=["b", "b"], share_column="failed_share", suite="shares")
    assert list(verdict.failed_rows) == [0]
    assert (verdict.stage, verdict.label) == ("clean", "L")
    assert {r["stage"] for r in verdict.results} == {"clean"}  # the sources' results too
    assert verdict.failed_sources == {
        "b": ["expect_column_values_to_be_between(sources.failed_share, max_value=0.6): failed_share=0.6667"]}
    share = next(r for r in verdict.results if "failed_share" in r["expectation"])
    assert share["observed_value"] == "{'b': 0.6667}"
    only_rows = validator.check_batch("clean", {RECORDS: records([5, 50])}, "L", ["a", "b"], suite="rows")
    assert len(only_rows.results) == 1 and only_rows.failed_sources == {}  # no sources table in that suite


def test_prepare_builds_every_suite_once(tmp_path):
    for stage_suite in ("fetched", "cleaned", "deduplicated", "loaded"):
        (tmp_path / f"{stage_suite}.json").write_text(json.dumps({"name": stage_suite, "expectations": [
            WORDS, SHARE] if stage_suite != "loaded" else [{**COUNT, "meta": {"on": "articles"}}]}))
    validator = Validator(tmp_path)
    validator.prepare()
    assert sorted(validator._definitions) == sorted(
        (suite, table, "") for suite in ("fetched", "cleaned", "deduplicated") for table in (RECORDS, SOURCES))
    assert "loaded.articles" in validator._gx_suites
    validator.prepare(f"sqlite:///{tmp_path / 'w.db'}")  # no run named: no warehouse query yet
    assert all(key[0] != "loaded" for key in validator._definitions)
    validator.prepare(f"sqlite:///{tmp_path / 'w.db'}", "run-7")
    assert ("loaded", "articles", "-warehouse-1-run-7") in validator._definitions
    assert validator._sql_source(f"sqlite:///{tmp_path / 'w.db'}").name == "warehouse-1"
    assert validator._sql_source(f"sqlite:///{tmp_path / 'other.db'}").name == "warehouse-2"


def test_data_docs_are_built_only_for_a_run_that_validated(tmp_path):
    (tmp_path / "rows.json").write_text(json.dumps({"name": "rows", "expectations": [WORDS]}))
    assert Validator(tmp_path).build_docs() is None  # no site
    validator = Validator(tmp_path, docs_dir=tmp_path / "docs", run_name="run-x")
    assert validator.build_docs() is None  # nothing validated
    validator.validate("clean", records([5, 50]), suite="rows")
    index = validator.build_docs()
    assert index == tmp_path / "docs" / "index.html" and index.is_file()
    assert "rows" in index.read_text(encoding="utf-8")
    assert validator._unsaved == []


# --- the pure parts --------------------------------------------------------------------------------------


def test_verdict_merge_and_success():
    one = Verdict("clean", "cleaned", results=[{"r": 1}], failed_rows={1: ["x"]}, failed_sources={"a": ["y"]},
                  batch_failures=["a"])
    two = Verdict("clean", "cleaned", results=[{"r": 2}], failed_rows={1: ["z"], 2: ["w"]}, failed_sources={"a": ["v"]},
                  batch_failures=["b"])
    assert one.merge(two) is one
    assert one.results == [{"r": 1}, {"r": 2}] and one.failed_rows == {1: ["x", "z"], 2: ["w"]}
    assert one.failed_sources == {"a": ["y", "v"]} and one.batch_failures == ["a", "b"]
    assert Verdict("s", "t").success
    assert not Verdict("s", "t", failed_rows={0: ["x"]}).success
    assert not Verdict("s", "t", failed_sources={"a": ["x"]}).success
    assert not Verdict("s", "t", batch_failures=["x"]).success


def test_describe_names_an_expectation_by_what_matters():
    assert describe("expect_x", {"column": "words", "min_value": 3, "batch_id": "b", "result_format": "BASIC",
                                 "catch_exceptions": True, "condition_parser": "p"}) == "expect_x(words, min_value=3)"
    assert describe("expect_x", {"value": 3}, "articles") == "expect_x(articles, value=3)"
    assert describe("expect_x", {"column": "id", "b": 1, "a": 2}, "articles") == "expect_x(articles.id, a=2, b=1)"
    assert describe("expect_x", {"value": 3}) == "expect_x(value=3)"
    assert describe("expect_x", {"column": "c"}) == "expect_x(c)"
    assert describe("expect_x", {}) == "expect_x"
    assert describe("expect_x", {"column": "c", "row_condition": 'lang=="en"'}) == 'expect_x(c, where=lang=="en")'
    assert describe("expect_x", {"value_set": ["a" * 100]}) == f"expect_x(value_set=['{'a' * 77}…)"


def test_conditions_shorts_and_plain_values():
    assert _condition({"column": {"name": "lang"}, "operator": "!=", "parameter": "en"}) == "lang != en"
    assert _condition("lang == 'en'") == "lang == 'en'" and _condition({"other": 1}) == "{'other': 1}"
    assert _short("x" * 80) == "x" * 80 and _short("x" * 81) == "x" * 79 + "…"
    assert _short("x" * 10, limit=5) == "xxxx…" and _short(12) == "12" and _short(None) == "None"
    assert _plain(np.int64(3)) == 3 and type(_plain(np.int64(3))) is int
    assert _plain(np.float64(0.123456)) == 0.1235 and _plain(2.0) == 2.0
    assert _plain([np.int64(1), (np.float64(0.5), "a")]) == [1, [0.5, "a"]]
    assert _plain({"k": np.int64(2), "n": None}) == {"k": 2, "n": None}


def test_result_rows_are_plain():
    row = _result_row("clean", "cleaned", "e", "critical", True, np.int64(3), np.float64(7.5), "v" * 600)
    assert row == {"stage": "clean", "suite": "cleaned", "expectation": "e", "severity": "critical",
                   "success": True, "unexpected_count": 3, "unexpected_percent": 7.5,
                   "observed_value": "v" * 499 + "…"}
    assert type(row["unexpected_count"]) is int and type(row["unexpected_percent"]) is float
    empty = _result_row("s", "t", "e", "info", False, None, None, None)
    assert (empty["unexpected_count"], empty["unexpected_percent"], empty["observed_value"]) == (None, None, None)
    assert _result_row("s", "t", "e", "info", False, 0, 0.0, [np.int64(1)])["observed_value"] == "[1]"


def test_severity_and_errors_of_results():
    assert _severity(SimpleNamespace(severity=None)) == "critical"
    assert _severity(SimpleNamespace(severity="warning")) == "warning"
    assert _severity(SimpleNamespace(severity=SimpleNamespace(value="info"))) == "info"
    assert _error(SimpleNamespace(exception_info=None)) is None
    assert _error(SimpleNamespace(exception_info={"raised_exception": False, "exception_message": None})) is None
    assert _error(SimpleNamespace(exception_info={"raised_exception": True, "exception_message": "boom"})) == "boom"
    assert _error(SimpleNamespace(exception_info={"raised_exception": True})) == "an exception was raised"
    assert _error(SimpleNamespace(exception_info={"metric": {"raised_exception": True,
                                                             "exception_message": "no column"}})) == "no column"


def test_columns_read_by_a_suite():
    def suite(*expectations):
        return {"expectations": list(expectations)}

    assert columns_read(suite(WORDS, LANG, SHARE), RECORDS) == {"row_id", "words", "lang"}
    assert columns_read(suite(WORDS, SHARE), SOURCES) == {"source", "share"}
    assert columns_read(suite(TITLE), RECORDS) == {"row_id", "title", "lang"}  # the condition's column too
    pair = {"type": "expect_column_pair_values_a_to_be_greater_than_b",
            "kwargs": {"column_A": "a", "column_B": "b", "column_list": ["c", "d"]}}
    assert columns_read(suite(pair, {"type": "expect_x", "kwargs": None}), RECORDS) == {"row_id", "a", "b", "c", "d"}
    assert columns_read(suite(COUNT), RECORDS) is None  # a whole-table expectation reads every column
    text_condition = {"type": "expect_x", "kwargs": {"column": "a", "row_condition": 'lang=="en"'}}
    assert columns_read(suite(text_condition), RECORDS) is None
    assert columns_read(suite({**COUNT, "meta": {"on": "sources"}}, WORDS), RECORDS) == {"row_id", "words"}
    assert table_of({"meta": None}) == RECORDS and table_of({"meta": {"on": "duplicates"}}) == "duplicates"


def test_warehouse_queries_name_the_run_quoted():
    queries = warehouse_queries("run o'brien")
    assert queries["articles"].endswith("WHERE w.run_id = 'run o''brien' AND w.kind = 'article'")
    assert queries["duplicates"].endswith("WHERE w.run_id = 'run o''brien' AND w.kind = 'duplicate'")
    assert "LEFT JOIN articles a ON a.id = d.article_id" in queries["duplicates"]


def test_suites_are_read_from_the_configured_folder(tmp_path, monkeypatch):
    from tasks.settings import get_settings

    (tmp_path / "mine.json").write_text(json.dumps({"expectations": [WORDS]}))
    monkeypatch.setenv("NEWSFLOW_EXPECTATIONS_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert load_suite_definition("mine")["expectations"] == [WORDS]
        assert Validator().expectations_dir == tmp_path
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# --- what issue 19's mutation run of validate.py left alive ------------------------------------------------


def test_only_the_columns_a_suite_reads_go_to_great_expectations(validator, monkeypatch):
    given = []
    run = validator._run

    def spy(definition, result_format, batch_parameters=None, expectation_parameters=None):
        given.append(sorted(batch_parameters["dataframe"].columns))
        return run(definition, result_format, batch_parameters, expectation_parameters)

    monkeypatch.setattr(validator, "_run", spy)
    validator.validate("clean", records([5, 50]), suite="rows")
    assert given == [["row_id", "words"], ["row_id", "words"]]  # the counts, then the failing rows in full


def test_a_batch_that_passes_is_validated_once_per_table(validator, monkeypatch):
    runs = []
    run = validator._run
    monkeypatch.setattr(validator, "_run", lambda definition, *args: runs.append(definition.name)
                        or run(definition, *args))
    sources = pd.DataFrame({"source": ["a"], "share": [0.1]})
    verdict = validator.validate("clean", {RECORDS: records([50, 60]), SOURCES: sources}, suite="probe")
    # The second pass (every failing row) only for what failed: here the missing column's error, reported
    # as such, and the info on titles, which quarantines nothing.
    assert runs == ["probe.records", "probe.sources"]
    assert verdict.failed_rows == {} and verdict.failed_sources == {} and len(verdict.batch_failures) == 1


def test_a_batch_level_failure_with_nothing_observed(validator):
    config = SimpleNamespace(type="expect_table_row_count_to_equal", kwargs={"value": 2}, severity="critical",
                             id="e1")
    outcome = SimpleNamespace(results=[SimpleNamespace(expectation_config=config, success=False, result={},
                                                       exception_info=None)])
    verdict = Verdict("load", "loaded")
    validator._read(outcome, "articles", verdict, batch_level=True)
    assert verdict.batch_failures == ["expect_table_row_count_to_equal(articles, value=2) (observed )"]
    assert verdict.results[0]["observed_value"] is None


def test_a_fresh_validator_is_ephemeral_and_quiet(tmp_path, monkeypatch, capfd):
    import great_expectations as gx

    project = tmp_path / "project"
    gx.get_context(mode="file", project_root_dir=project)  # a Great Expectations project where the run starts
    monkeypatch.chdir(project)
    (tmp_path / "rows.json").write_text(json.dumps({"name": "rows", "meta": {"notes": "why"},
                                                    "expectations": [WORDS]}))
    capfd.readouterr()
    validator = Validator(tmp_path)
    verdict = validator.validate("clean", records([5, 50]), suite="rows")
    assert list(verdict.failed_rows) == [0]
    assert type(validator.context).__name__ == "EphemeralDataContext"
    assert not list((project / "gx" / "expectations").rglob("*.json"))  # nothing written into that project
    assert "%|" not in capfd.readouterr().err  # no progress bars (tqdm's "  0%|   | 0/8 ..."), wherever stderr goes
    assert validator.context.suites.get("rows").meta["notes"] == "why"  # the suite's meta goes along


def test_data_docs_pages_name_the_run_the_suite_and_the_table(tmp_path, monkeypatch, caplog):
    (tmp_path / "probe.json").write_text(json.dumps({"name": "probe", "expectations": [WORDS, SHARE]}))
    validator = Validator(tmp_path, docs_dir=tmp_path / "docs", run_name="run-x")
    sources = pd.DataFrame({"source": ["a"], "share": [0.9]})
    validator.validate("clean", {RECORDS: records([5, 50]), SOURCES: sources}, suite="probe")
    monkeypatch.setenv("NEWSFLOW_DATA_DOCS_ASSETS_DIR", str(tmp_path / "no-assets"))
    from tasks.settings import get_settings

    get_settings.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="tasks.validate"):
            index = validator.build_docs()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert any(r.name == "tasks.validate" and r.getMessage().startswith(
        "Data Docs: the Data Docs assets are not installed in ") for r in caplog.records)
    validations = index.parent / "validations"
    # suite/run/time/datasource-asset.html, the time left out (GX makes a folder of each dot in a suite's
    # name): each validation under its suite (the failing rows' pass beside it) and the run, named by the
    # data source and the table.
    pages = sorted("/".join((*p.relative_to(validations).parts[:-2], p.name)) for p in validations.rglob("*.html"))
    assert pages == ["probe/failed-1/run-x/newsflow-probe.records.html", "probe/run-x/newsflow-probe.records.html",
                     "probe/sources/failed-2/run-x/newsflow-probe.sources.html",
                     "probe/sources/run-x/newsflow-probe.sources.html"]
    page = next((index.parent / "validations" / "probe" / "run-x").rglob("*.html")).read_text(encoding="utf-8")
    assert "&lt;dataframe&gt;" in page  # the batch shown by name, not its rows
    assert "run-x" in index.read_text(encoding="utf-8")


def test_deferred_imports_load_on_first_use(tmp_path, monkeypatch):
    from tasks.validate import _Deferred, defer_unused_imports

    leaf = tmp_path / "deferpkg" / "inner"
    leaf.mkdir(parents=True)
    (tmp_path / "deferpkg" / "__init__.py").write_text("")
    (leaf / "__init__.py").write_text("")
    (leaf / "leaf.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("deferpkg", "deferpkg.inner", "deferpkg.inner.leaf")
    try:
        # A package that does not exist and a module its package lacks are passed over, not stopped at.
        defer_unused_imports(["nowhere_pkg.mod", "json", "deferpkg.inner.leaf", "deferpkg.absent"])
        import json as real_json

        assert sys.modules["json"] is real_json and "deferpkg.absent" not in sys.modules
        stand_in = sys.modules["deferpkg.inner.leaf"]
        assert isinstance(stand_in, _Deferred)
        assert sys.modules["deferpkg.inner"].leaf is stand_in  # `from deferpkg.inner import leaf` gets it too
        assert not hasattr(stand_in, "__wrapped__")  # introspection does not load it
        assert isinstance(sys.modules["deferpkg.inner.leaf"], _Deferred)
        assert stand_in.VALUE == 42  # first use: the real module is imported, in its place
        real = sys.modules["deferpkg.inner.leaf"]
        assert not isinstance(real, _Deferred) and real.VALUE == 42
        assert sys.modules["deferpkg.inner"].leaf is real
        assert "VALUE" in dir(stand_in)  # whoever took the stand-in before holds the whole module now
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_validate_warehouse_fails_the_batch_on_the_run_s_rows(tmp_path):
    from tasks import migrate

    loaded = {**COUNT, "kwargs": {"value": {"$PARAMETER": "articles_loaded"}}, "meta": {"on": "articles"}}
    (tmp_path / "loaded.json").write_text(json.dumps({"name": "loaded", "expectations": [loaded]}))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate.upgrade(url)
    verdict = Validator(tmp_path).validate_warehouse(url, "run-1", {"articles_loaded": 1})
    assert (verdict.stage, verdict.suite, verdict.label) == ("load", "loaded", "warehouse")
    # The run's own figure in place of the parameter; the run wrote no rows.
    assert verdict.batch_failures == ["expect_table_row_count_to_equal(articles, value=1) (observed 0)"]
    assert [r["stage"] for r in verdict.results] == ["load"]
