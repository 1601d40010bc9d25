"""Data quality: the suites in expectations/, quarantine with reasons, per-source stage failures,
suites edited on disk, the warehouse checks, and the reports (artifacts, Data Docs, `newsflow quality`)."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.settings import PROJECT_ROOT, Settings

VOCABULARY = " ".join((
    "the council harbour ferry school budget vote storm repair bridge island fishing quota festival library",
    "hospital housing plan residents said on monday that new money would be spent over three years after a",
    "long debate about roads rail buses and the future of local shops where families have lived for many",
    "generations while the mayor told reporters at the town hall meeting that work will begin in spring",
    "despite concerns raised by traders who fear higher rents parking charges and fewer visitors during",
    "summer months when tourists usually fill cafes hotels beaches and campsites along the coast",
)).split(" ")


def prose(seed: int, words: int = 90) -> str:
    """English-looking text, different enough per seed not to be taken for a near-duplicate."""
    rng = random.Random(seed)
    sentences, current = [], []
    for _ in range(words):
        current.append(rng.choice(VOCABULARY))
        if len(current) >= rng.randint(8, 14):
            sentences.append(" ".join(current).capitalize() + ".")
            current = []
    if current:
        sentences.append(" ".join(current).capitalize() + ".")
    return " ".join(sentences)


def article(seed: int, **overrides):
    from tasks.records import Article

    url = f"https://news.example/{seed}"
    fields = {"source": "desk", "url": url, "canonical_url": url, "text": prose(seed), "title": f"Story {seed}",
              "authors": ["Ann Reporter"], "published_at": datetime.now(UTC) - timedelta(days=2), "language": "en"}
    return Article(**{**fields, **overrides})


# One article per critical expectation of the `cleaned` suite, each breaking exactly that one.
BREAKING = {
    "title_chars": {"title": "T" * 400},
    "min_value=40": {"text": "Far too short to be an article."},
    "max_value=50000": {"text": "word " * 50_001},
    "has_markup": {"text": prose(900) + " <script>alert(1)</script>"},
    "published_age_days, min_value=-1": {"published_at": datetime.now(UTC) + timedelta(days=30)},
    "published_age_days, max_value=13000": {"published_at": datetime(1901, 1, 1, tzinfo=UTC)},
    "authors": {"authors": ["Ann Reporter", "ann@news.example"]},
    "canonical_url": {"canonical_url": "news.example/no-scheme"},
}


@pytest.fixture(scope="module")
def validator():
    from tasks.validate import Validator

    return Validator(PROJECT_ROOT / "expectations")


def test_each_critical_cleaned_expectation_quarantines_exactly_its_row(validator):
    from flows.stages import quarantine_rows
    from tasks.frames import articles_frame, sources_frame

    good = [article(seed) for seed in range(5)]
    bad = [article(100 + i, **fields) for i, fields in enumerate(BREAKING.values())]
    batch = good + bad
    verdict = validator.validate("clean", {"records": articles_frame(batch),
                                           "sources": sources_frame([a.source for a in batch], [], "no_text_share")})
    passed, rejected = quarantine_rows("clean", batch, verdict.failed_rows)

    assert passed == good
    assert [r.url for r in rejected] == [a.url for a in bad]
    for rejection, expected in zip(rejected, BREAKING, strict=True):
        assert len(rejection.reasons) == 1, rejection.reasons
        assert expected in rejection.reasons[0], (expected, rejection.reasons)
        assert rejection.reasons[0].startswith("expect_column_values_to_")
        # The offending value is named after the column.
        column = rejection.reasons[0].split("(", 1)[1].split(",", 1)[0].rstrip(")")
        assert f"{column}=" in rejection.reasons[0]
        assert rejection.payload["text"] == batch[good.__len__() + list(BREAKING).index(expected)].text
    assert verdict.failed_sources == {} and verdict.batch_failures == []
    # Warnings are results, never reasons.
    severities = {r["severity"] for r in verdict.results}
    assert {"critical", "warning"} <= severities
    assert all(r["unexpected_percent"] is not None for r in verdict.results if r["unexpected_count"])


def test_per_source_checks_fail_the_source_not_the_batch(validator):
    from tasks.frames import deduplicated_frame, documents_frame, sources_frame
    from tasks.records import Document, Duplicate

    # fetch: "down" lost 10 of 11 fetches; "steady" 1 of 5 (fine); "tiny" 1 of 1 (too few pages to judge).
    documents = [Document("down", "https://down.example/1", html="<p>x</p>", status_code=200)] + [
        Document("steady", f"https://steady.example/{i}", html="<p>x</p>", status_code=200) for i in range(4)]
    failed = ["down"] * 10 + ["steady", "tiny"]
    verdict = validator.validate("fetch", {"records": documents_frame(documents),
                                           "sources": sources_frame([d.source for d in documents], failed,
                                                                    "failed_share")})
    assert set(verdict.failed_sources) == {"down"}
    assert "failed_share=0.9091" in verdict.failed_sources["down"][0]
    warned = [r for r in verdict.results if r["severity"] == "warning" and "failed_share" in r["expectation"]]
    assert warned and not warned[0]["success"] and warned[0]["unexpected_count"] == 1

    # A page over HTTP without a status is held back; a file without one is fine.
    no_status = Document("steady", "https://steady.example/x", html="<p>x</p>")
    verdict = validator.validate("fetch", documents_frame([no_status], via_http=True))
    assert list(verdict.failed_rows) == [0] and "status_code" in verdict.failed_rows[0][0]
    assert validator.validate("fetch", documents_frame([no_status], via_http=False)).success

    # dedupe: a duplicate pointing at nothing kept nor stored is caught.
    kept = [article(1), article(2)]
    for a in kept:
        a.content_hash = f"{a.canonical_url.rsplit('/', 1)[1]:0>64}"
    duplicates = [Duplicate("https://copy.example/1", "desk", kept[0].canonical_url, "exact"),
                  Duplicate("https://copy.example/2", "desk", "https://gone.example/", "near", 0.8)]
    kept_urls = [a.canonical_url for a in kept]
    verdict = validator.validate("dedupe", deduplicated_frame(kept, duplicates, kept_urls))
    assert list(verdict.failed_rows) == [len(kept) + 1]  # the second copy, after the kept articles
    assert "points_at_article=False" in verdict.failed_rows[len(kept) + 1][0]
    assert len(verdict.results) == 4 and verdict.batch_failures == []  # one validation, no errors


def test_suite_edited_on_disk_changes_the_outcome(tmp_path, monkeypatch):
    from flows.run_checks import RunChecks
    from tasks.frames import articles_frame

    copy = tmp_path / "expectations"
    shutil.copytree(PROJECT_ROOT / "expectations", copy)
    monkeypatch.setenv("NEWSFLOW_EXPECTATIONS_DIR", str(copy))
    monkeypatch.setenv("NEWSFLOW_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    short = [article(1, text=prose(1, words=25)), article(2)]

    first = RunChecks(Settings(), "edit-before").validator().validate("clean", articles_frame(short))
    assert list(first.failed_rows) == [0]

    suite = json.loads((copy / "cleaned.json").read_text())
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "word_count" and "min_value" in expectation["kwargs"]:
            expectation["kwargs"]["min_value"] = 20
    (copy / "cleaned.json").write_text(json.dumps(suite))

    second = RunChecks(Settings(), "edit-after").validator().validate("clean", articles_frame(short))
    assert second.success
    assert any("min_value=20" in r["expectation"] for r in second.results)


def test_warehouse_checks_reconcile_with_the_run(warehouse_url, validator):
    from tasks.load import load_batch
    from tasks.records import Duplicate
    from tasks.warehouse import get_engine

    engine = get_engine(warehouse_url)
    articles = [article(1), article(2)]
    for number, a in enumerate(articles):
        a.content_hash = f"{number:064x}"
    load_batch(engine, "run-1", articles, {}, [])

    verdict = validator.validate_warehouse(warehouse_url, "run-1", {"articles_loaded": 2, "duplicates_recorded": 0})
    assert verdict.success, verdict.batch_failures
    assert {r["suite"] for r in verdict.results} == {"loaded"}

    # An overlapping run loads one of those articles again and records a copy of the other: each run's
    # checks still find the rows it wrote (last_run_id now names run-2 for the first article).
    copy = Duplicate("https://wire.example/1", "wire", articles[1].canonical_url, "exact")
    load_batch(engine, "run-2", [articles[0]], {}, [copy])
    load_batch(engine, "run-3", [], {}, [copy])
    assert validator.validate_warehouse(warehouse_url, "run-1", {"articles_loaded": 2,
                                                                 "duplicates_recorded": 0}).success
    assert validator.validate_warehouse(warehouse_url, "run-2", {"articles_loaded": 1,
                                                                 "duplicates_recorded": 1}).success
    assert validator.validate_warehouse(warehouse_url, "run-3", {"articles_loaded": 0,
                                                                 "duplicates_recorded": 1}).success

    with engine.begin() as conn:  # an article emptied behind the pipeline's back
        conn.execute(text("UPDATE articles SET word_count = 0 WHERE canonical_url = :u"), {"u": articles[1].url})
    verdict = validator.validate_warehouse(warehouse_url, "run-1", {"articles_loaded": 3, "duplicates_recorded": 0})
    failures = " ".join(verdict.batch_failures)
    assert "expect_table_row_count_to_equal(articles, value=3) (observed 2)" in failures
    assert "articles.word_count" in failures
    assert len(verdict.batch_failures) == 2


# --- through the flow ------------------------------------------------------------------------


def _write_jsonl(path: Path, records: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return str(path)


def test_run_quarantines_fails_the_broken_source_and_reports(tmp_path, prefect_server):
    """One source with rows breaking critical checks the clean stage lets through (it drops short texts
    and implausible dates itself), one whose pages mostly have no
    text: the bad rows are quarantined with reasons, the broken source fails the clean stage, the run
    ends failed naming it, everything else is loaded, and the reports exist."""
    from prefect import get_client

    from flows.ingest import ingest_news
    from tasks.validate import StageFailed

    now = datetime.now(UTC)
    good = [{"url": f"https://desk.example/{i}", "title": f"Desk story {i}", "text": prose(i),
             "published_at": (now - timedelta(days=1)).isoformat()} for i in range(4)]
    bad = {
        "has_markup": {"url": "https://desk.example/markup", "title": "Promo left in",
                       "text": f'<div class="promo">{prose(50)}</div>'},
        "title_chars": {"url": "https://desk.example/long-title", "title": "Long " * 100, "text": prose(51)},
    }
    empty_page = "<html><body><nav><a href='/'>Home</a></nav><footer>(c) Example</footer></body></html>"
    broken = [{"url": f"https://layout.example/{i}", "html": empty_page} for i in range(5)]
    broken.append({"url": "https://layout.example/ok", "title": "Still fine", "text": prose(60)})
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sources = [
        {"name": "desk", "kind": "files", "path": _write_jsonl(tmp_path / "desk.jsonl", good + list(bad.values()))},
        {"name": "layout-changed", "kind": "files", "path": _write_jsonl(tmp_path / "layout.jsonl", broken)},
    ]

    with pytest.raises(StageFailed) as failure:
        ingest_news(sources=sources, warehouse_url=warehouse)
    message = str(failure.value)
    assert "layout-changed" in message and "clean" in message and "no_text_share" in message
    assert "desk" not in message

    engine = create_engine(warehouse)
    with engine.connect() as conn:
        loaded = {r[0] for r in conn.execute(text("SELECT url FROM articles"))}
        held = {r[0]: json.loads(r[1]) if isinstance(r[1], str) else r[1]
                for r in conn.execute(text("SELECT url, reasons FROM quarantine"))}
        run_id, status, run_message = conn.execute(text("SELECT run_id, status, message FROM pipeline_runs")).one()
        dq = conn.execute(text("SELECT severity, unexpected_percent, observed_value FROM dq_results "
                               "WHERE success = false")).all()
    engine.dispose()
    assert loaded == {r["url"] for r in good}
    for column, record in bad.items():
        assert len(held[record["url"]]) == 1 and column in held[record["url"]][0], held[record["url"]]
    (reason,) = held["https://layout.example/ok"]
    assert reason.startswith("source layout-changed failed the clean stage: expect_column_values_to_be_between("
                             "sources.no_text_share, max_value=0.5, where=pages >= 4): no_text_share=0.8333")
    assert sum(url.startswith("https://layout.example/") for url in held) == 6  # five without text, one held back
    assert status == "failed" and "layout-changed" in run_message
    assert any(sev == "critical" and pct is not None for sev, pct, _ in dq)
    assert any(observed and "layout-changed" in observed for _, _, observed in dq)

    # The reports: artifacts with keys under this flow run, the Data Docs site, the CLI summary.
    async def artifacts() -> dict[str, object]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        return {a.key: a for a in found}

    import asyncio

    by_key = asyncio.run(artifacts())
    assert {"quality-fetched", "quality-cleaned", "quality-deduplicated", "quality-loaded", "run-summary",
            "data-docs"} <= set(by_key)
    assert by_key["quality-cleaned"].type == "table" and by_key["run-summary"].type == "markdown"
    assert "layout-changed" in by_key["run-summary"].data
    docs_index = tmp_path / "data-docs" / run_id / "index.html"
    assert docs_index.is_file() and f"{docs_index.as_uri()})" in by_key["data-docs"].data
    assert "cleaned" in docs_index.read_text(encoding="utf-8")


def test_quality_command_prints_the_summary(tmp_path, capsys):
    from flows.cli import main
    from tasks.records import Rejection
    from tasks.warehouse import finish_run, get_engine, record_dq_results, record_rejections, start_run

    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = get_engine(warehouse)
    for run in ("old-run", "new-run"):
        start_run(engine, run)
    record_rejections(engine, "new-run", [Rejection("clean", "layout", "https://x.example/1",
                                                    ["no article text found"])])
    record_dq_results(engine, "new-run", [{
        "stage": "clean", "suite": "cleaned", "expectation": "expect_x(no_text_share)", "severity": "critical",
        "success": False, "unexpected_count": 1, "unexpected_percent": 100.0, "observed_value": "['layout']"}])
    finish_run(engine, "new-run", "failed", {"clean_in": 1, "quarantined": 1}, "source 'layout' failed the clean stage")

    assert main(["quality", "--warehouse", warehouse, "--run", "new-run"]) == 0
    out = capsys.readouterr().out
    assert "# Run new-run: failed" in out and "source 'layout' failed the clean stage" in out
    assert "| clean | 1 | 0 | 1 | 0 | 0 |" in out
    assert "| layout | 0 | 0 | 1 |" in out and "expect_x(no_text_share)" in out
    assert main(["quality", "--warehouse", warehouse, "--run", "nope"]) == 2


# One document per critical row-level expectation of the `fetched` suite, each breaking exactly that one.
FETCH_BREAKING = {
    "expect_column_values_to_not_be_null(url)": {"url": None},
    "expect_column_values_to_match_regex(url": {"url": "htp:/broken url"},
    "expect_column_values_to_not_be_null(status_code": {"status_code": None},
    "expect_column_values_to_be_between(status_code": {"status_code": 404},
    "expect_column_values_to_not_be_null(content_type)": {"content_type": None},
    "expect_column_values_to_be_between(body_chars": {"html": ""},
    "expect_column_values_to_not_be_null(fetched_at)": {"fetched_at": None},
}


def test_each_critical_fetched_and_deduplicated_expectation_quarantines_exactly_its_row(validator):
    from flows.stages import quarantine_rows
    from tasks.frames import deduplicated_frame, documents_frame
    from tasks.records import Document

    def document(number: int, **overrides) -> Document:
        fields = {"source": "desk", "url": f"https://desk.example/{number}", "html": f"<p>{prose(number)}</p>",
                  "status_code": 200, "content_type": "text/html"}
        return Document(**{**fields, **overrides})

    good = [document(n) for n in range(4)]
    bad = [document(100 + i, **fields) for i, fields in enumerate(FETCH_BREAKING.values())]
    batch = good + bad
    verdict = validator.validate("fetch", documents_frame(batch))
    passed, rejected = quarantine_rows("fetch", batch, verdict.failed_rows)
    assert passed == good
    assert [len(r.reasons) for r in rejected] == [1] * len(bad), [r.reasons for r in rejected]
    for rejection, expected in zip(rejected, FETCH_BREAKING, strict=True):
        assert rejection.reasons[0].startswith(expected), (expected, rejection.reasons)
    assert "status_code=404" in rejected[3].reasons[0]

    # deduplicated: a second copy of a canonical URL, of a content hash, and a hash that is no SHA-256.
    kept = [article(seed) for seed in range(4)]
    for number, a in enumerate(kept):
        a.content_hash = f"{number:064x}"
    copies = [article(10, canonical_url=kept[0].canonical_url), article(11), article(12)]
    copies[0].content_hash, copies[1].content_hash, copies[2].content_hash = f"{10:064x}", kept[1].content_hash, "md5"
    verdict = validator.validate("dedupe", deduplicated_frame(kept + copies, [], []))
    assert verdict.batch_failures == []
    failed = verdict.failed_rows
    # Uniqueness flags every row holding the value: the original and its copy.
    assert set(failed) == {0, 1, 4, 5, 6}
    assert all("canonical_url" in r for i in (0, 4) for r in failed[i])
    assert all("expect_column_values_to_be_unique(content_hash)" in r for i in (1, 5) for r in failed[i])
    assert len(failed[6]) == 1 and "content_hash=md5" in failed[6][0]


def test_great_expectations_is_imported_only_by_the_validation_task():
    """Importing it costs seconds: the CLI, the flows and the stage modules must not pull it in."""
    import subprocess
    import sys

    code = ("import sys, flows.cli, flows.ingest, flows.reprocess, flows.stages, tasks.validate, tasks.frames; "
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_what_great_expectations_imports_for_unused_expectations_is_loaded_only_when_used():
    """scipy.stats and altair (KL divergence, KS tests, their charts): about 40% of its import, imported on
    first use, whole."""
    import subprocess
    import sys

    code = ("import sys; from tasks.validate import import_great_expectations; import_great_expectations(); "
            "early = [m for m in ('scipy.stats._stats_py', 'altair.vegalite') if m in sys.modules]; "
            "import altair, scipy.stats; from scipy import stats; "
            "print(early, round(stats.entropy([1, 2], [2, 1]), 4), scipy.stats.kstest is stats.kstest, "
            "altair.Chart.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "0.231", "True", "Chart"], out.stderr[-2000:]


def test_context_has_progress_bars_and_analytics_off(validator):
    import os

    assert os.environ["GX_ANALYTICS_ENABLED"] == "false" and os.environ["DO_NOT_TRACK"] == "1"
    assert validator.context.config.analytics_enabled is False
    assert validator.context.variables.progress_bars.globally is False


SPEEDUPS_SCRIPT = """
import json, pickle, sys
import tasks.gx_speedups as g
if sys.argv[2] == "without":
    g.install = lambda: None
from tasks.settings import PROJECT_ROOT
from tasks.validate import Validator
tables, warehouse = pickle.loads(open(sys.argv[1], "rb").read())
validator = Validator(PROJECT_ROOT / "expectations")
verdicts = [validator.check_batch(stage, frames, "batch", sources, rejected, share)
            for stage, frames, sources, rejected, share in tables]
verdicts.append(validator.validate_warehouse(warehouse, "run-1", {"articles_loaded": 3, "duplicates_recorded": 1}))
import great_expectations.core.id_dict as d
assert (d.convert_to_json_serializable.__module__ == g.__name__) == (sys.argv[2] == "with")
print(json.dumps([[v.suite, v.results, v.failed_rows, v.failed_sources, v.batch_failures] for v in verdicts],
                 default=str, sort_keys=True))
"""


def test_gx_speedups_leave_the_results_of_every_suite_unchanged(tmp_path):
    """tasks/gx_speedups.py patches two GX internals. Every suite validated with and without them, each in a
    process of its own, gives the same results, failing rows, failed sources and batch failures: the
    record suites on batches breaking critical checks (with their per-source tables), and the `loaded`
    suite on a warehouse, whose expectations take the run's counts as `$PARAMETER`s (one of them wrong)."""
    import pickle
    import subprocess
    import sys

    from tasks.frames import articles_frame, deduplicated_frame, documents_frame
    from tasks.load import load_batch
    from tasks.records import Document, Duplicate
    from tasks.warehouse import get_engine

    now = datetime.now(UTC)
    batch = [article(seed) for seed in range(5)] + [article(100 + i, **f) for i, f in enumerate(BREAKING.values())]
    documents = [Document("desk", f"https://news.example/{n}", html=f"<p>{prose(n)}</p>", status_code=200)
                 for n in range(4)] + [Document("desk", "urn:odd", html="<p>x</p>", status_code=500)]
    kept = [article(seed) for seed in range(3)]
    for number, a in enumerate(kept):
        a.content_hash = f"{number:064x}"
    copies = [Duplicate("https://copy.example/1", "desk", kept[0].canonical_url, "exact"),
              Duplicate("https://copy.example/2", "desk", "https://gone.example/", "near", 0.8)]
    tables = [("fetch", {"records": documents_frame(documents)}, [d.source for d in documents], ["desk"],
               "failed_share"),
              ("clean", {"records": articles_frame(batch, now=now)}, [a.source for a in batch], [], "no_text_share"),
              ("dedupe", {"records": deduplicated_frame(kept, copies, {a.canonical_url for a in kept})}, [], [],
               "failed_share")]
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    load_batch(get_engine(warehouse), "run-1", kept[:2], {}, [copies[0]])  # 2 loaded: the count says 3
    (tmp_path / "inputs.pickle").write_bytes(pickle.dumps((tables, warehouse)))

    def verdicts(speedups: str) -> list:
        out = subprocess.run([sys.executable, "-c", SPEEDUPS_SCRIPT, str(tmp_path / "inputs.pickle"), speedups],
                             cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    with_them, without = verdicts("with"), verdicts("without")
    assert [v[0] for v in with_them] == ["fetched", "cleaned", "deduplicated", "loaded"]
    assert all(v[2] or v[4] for v in with_them)  # every suite failed something: the comparison means something
    assert with_them == without


def test_stage_frames_hold_only_the_columns_their_suite_reads(tmp_path):
    from tasks.frames import articles_frame
    from tasks.validate import columns_read, load_suite_definition

    batch = [article(seed) for seed in range(3)]
    read = columns_read(load_suite_definition("deduplicated", PROJECT_ROOT / "expectations"), "records")
    assert set(articles_frame(batch, columns=read).columns) == {"row_id", "canonical_url", "content_hash"}
    # A user adds an expectation on another column: the frame carries it from the next run on.
    suite = json.loads((PROJECT_ROOT / "expectations" / "deduplicated.json").read_text())
    suite["expectations"].append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "title"},
                                  "severity": "warning"})
    (tmp_path / "deduplicated.json").write_text(json.dumps(suite))
    read = columns_read(load_suite_definition("deduplicated", tmp_path), "records")
    assert "title" in articles_frame(batch, columns=read).columns
    # An expectation on the whole table needs every column.
    suite["expectations"].append({"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["x"]}})
    (tmp_path / "deduplicated.json").write_text(json.dumps(suite))
    assert columns_read(load_suite_definition("deduplicated", tmp_path), "records") is None
    assert "has_markup" in articles_frame(batch).columns


def test_dedupe_gate_quarantines_kept_rows_and_copies_of_one_table(tmp_path, prefect_server):
    """The dedupe gate validates the kept articles and the dropped copies as one table: a row past the
    kept articles is a copy, held back from loading; a kept row failing is quarantined like any other."""
    from prefect import flow

    from flows.checks import gate_deduplicated
    from flows.ledger import Ledger
    from flows.run_checks import RunChecks
    from tasks.dedupe import DedupOutcome
    from tasks.records import Duplicate
    from tasks.warehouse import open_warehouse, start_run

    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    settings = Settings(warehouse_url=warehouse, data_dir=tmp_path)
    engine = open_warehouse(warehouse)
    start_run(engine, "gate-run")
    kept = [article(1), article(2), article(3)]
    for number, a in enumerate(kept):
        a.content_hash = f"{number:064x}"
    kept[2].content_hash = "not-a-sha256"
    copies = [Duplicate("https://copy.example/1", "wire", kept[0].canonical_url, "exact"),
              Duplicate("https://copy.example/2", "wire", "https://gone.example/", "near", 0.8),
              Duplicate("https://copy.example/3", "wire", "https://stored.example/", "near", 0.9, kept_article_id=7)]
    deduped = DedupOutcome(kept=list(kept), duplicates=list(copies))
    ledger, checks = Ledger(["fetch", "clean", "dedupe", "load"]), RunChecks(settings, "gate-run")

    @flow
    def gate() -> list:
        try:
            return gate_deduplicated(deduped, checks, "batch 1", ledger)[0]
        finally:
            checks.close()

    assert gate() == kept[:2]
    assert deduped.duplicates == [copies[0], copies[2]]
    assert ledger.counts["dedupe"]["quarantined"] == 2 and not ledger.failures
    with engine.connect() as conn:
        held = dict(conn.execute(text("SELECT url, reasons FROM quarantine WHERE stage = 'dedupe'")).tuples().all())
    assert set(held) == {kept[2].url, "https://copy.example/2"}
    assert "points_at_article=False" in str(held["https://copy.example/2"])
    assert "content_hash=not-a-sha256" in str(held[kept[2].url])


def test_a_failed_warm_up_leaves_the_error_to_the_first_check(tmp_path):
    """The background build of the run's checks fails quietly; the first check builds them again and raises,
    where the run reports it."""
    from flows.run_checks import RunChecks

    settings = Settings(expectations_dir=tmp_path / "no-suites", warehouse_url=f"sqlite:///{tmp_path / 'w.db'}")
    checks = RunChecks(settings, "warm-up-fails")
    try:
        checks.prepare()
        checks._warm_up.join()
        assert not checks.validated
        with pytest.raises(FileNotFoundError, match=r"fetched\.json"):
            checks.validator()
    finally:
        checks.close()


def test_cleaning_starts_before_the_fetch_checks_and_drops_what_they_hold_back(tmp_path, prefect_server,
                                                                               monkeypatch):
    """The first batches go to the cleaning processes without waiting for the fetch checks (the first
    check waits for Great Expectations to start): here the first check waits until cleaning started. A
    document those checks quarantine is still neither cleaned into an article nor quarantined twice, and
    the clean stage does not count it."""
    import threading

    import flows.fetching as fetching
    import flows.ingest as ingest
    import flows.scale as scale
    from tasks.settings import get_settings

    monkeypatch.setenv("NEWSFLOW_BATCH_SIZE", "2")
    get_settings.cache_clear()
    events: list[str] = []
    cleaning = threading.Event()
    submit, checked = scale.CleanRunner.submit, fetching.fetch_checked

    def cleaner_submit(self, *args, **kwargs):
        events.append("clean")
        cleaning.set()
        return submit(self, *args, **kwargs)

    def fetch_checked(*args, **kwargs):
        assert cleaning.wait(timeout=600), "cleaning waited for the fetch check"
        events.append("check")
        return checked(*args, **kwargs)

    monkeypatch.setattr(scale.CleanRunner, "submit", cleaner_submit)
    monkeypatch.setattr(fetching, "fetch_checked", fetch_checked)

    good = [{"url": f"https://desk.example/{i}", "title": f"Desk story {i}", "text": prose(70 + i)} for i in range(4)]
    odd = {"url": "urn:desk:5", "title": "A story under an odd address", "text": prose(80)}  # fails url's regex
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    sources = [{"name": "desk", "kind": "files", "path": _write_jsonl(tmp_path / "desk.jsonl", [*good, odd])}]
    try:
        result = ingest.ingest_news(sources=sources, warehouse_url=warehouse)
    finally:
        get_settings.cache_clear()
    assert events.index("clean") < events.index("check")
    assert result["fetch_out"] == 4 and result["clean_in"] == 4 and result["load_out"] == 4
    engine = create_engine(warehouse)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT stage, url, reasons FROM quarantine")).all()
        loaded = {r[0] for r in conn.execute(text("SELECT url FROM articles"))}
    engine.dispose()
    assert loaded == {r["url"] for r in good}
    ((stage, url, reasons),) = held
    assert (stage, url) == ("fetch", "urn:desk:5") and "match_regex" in str(reasons)
