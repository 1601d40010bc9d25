"""A stage between dedupe and load is its task plus one entry in the pipeline list (flows/pipeline.py): the
flow runs it on every batch, records its rejections in quarantine, and its figures reach the run's
counts (`pipeline_runs.stage_counts`), the run report and the command line's stage table, with no
migration and no other file to edit."""

from __future__ import annotations

import dataclasses
import random

import pytest
from prefect import task
from warehouse_sql import query

from flows import pipeline
from flows.stages import STAGE_TASK
from tasks.records import Article, Rejection, StageResult, StageStats
from tasks.settings import get_settings

WORDS = ("harbour", "council", "ferry", "budget", "school", "library", "river", "bridge", "market", "station",
         "festival", "museum", "election", "court", "hospital", "road", "weather", "season", "housing", "water",
         "tram", "report", "mayor", "vote", "plan")


def prose(seed: int, words: int = 90) -> str:
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(10)).capitalize() + "." for _ in range(words // 10)]
    return " ".join(sentences)


# --- what a newcomer writes: the stage's pure function and its task ---------------------------------------


def hold_back_sponsored(articles: list[Article]) -> StageResult[Article]:
    """Sponsored content is not news: held back with the reason; the rest tagged as checked."""
    result = StageResult[Article](stats=StageStats("sponsored"))
    for article in articles:
        result.stats.add("in")
        if (article.title or "").lower().startswith("sponsored"):
            result.rejections.append(Rejection("sponsored", article.source, article.url,
                                               ["sponsored content"], dataclasses.asdict(article)))
            continue
        result.records.append(dataclasses.replace(article, tags=[*article.tags, "not-sponsored"]))
        result.stats.add("out")
    return result


@task(name="sponsored", task_run_name="sponsored {label}", **STAGE_TASK)
def sponsored_task(articles: list[Article], settings, label: str) -> StageResult[Article]:
    return hold_back_sponsored(articles)


# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def with_sponsored_stage(monkeypatch):
    """The pipeline with the stage added between dedupe and load: the one line a newcomer adds."""
    stages = list(pipeline.PIPELINE)
    stages.insert(pipeline.stage_names(stages).index("load"), pipeline.Stage("sponsored", pipeline.Lane.ORDERED,
                                                                               sponsored_task))
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(stages))
    monkeypatch.setenv("NEWSFLOW_BATCH_SIZE", "3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_stage_function_alone():
    plain = Article("desk", "https://desk.example/1", "https://desk.example/1", prose(1), title="Ferry news")
    paid = dataclasses.replace(plain, url="https://desk.example/2", title="Sponsored: a bank")
    result = hold_back_sponsored([plain, paid])
    assert [a.url for a in result.records] == [plain.url] and result.records[0].tags == ["not-sponsored"]
    assert [r.url for r in result.rejections] == [paid.url] and result.stats.counts == {"in": 2, "out": 1}


@pytest.mark.usefixtures("prefect_server", "with_sponsored_stage")
def test_a_stage_added_between_dedupe_and_load_runs_on_every_batch_and_is_counted_everywhere(
        tmp_path, sqlite_url, capsys):
    import json

    from flows.cli import main
    from tasks.report import render_markdown, run_summary
    from tasks.warehouse import get_engine

    records = [{"url": f"https://desk.example/{n}", "title": ("Sponsored: offer " if n % 3 == 0 else "Story ") + str(n),
                "text": prose(100 + n)} for n in range(7)]
    path = tmp_path / "desk.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    assert main(["ingest", "--files", str(path), "--warehouse", sqlite_url]) == 0, capsys.readouterr().err

    sponsored = {r["url"] for r in records if r["title"].startswith("Sponsored")}
    loaded = dict(query(sqlite_url, "SELECT url, tags FROM articles"))
    assert set(loaded) == {r["url"] for r in records} - sponsored
    assert all("not-sponsored" in tags for tags in loaded.values())
    assert set(query(sqlite_url, "SELECT stage, url FROM quarantine")) == {("sponsored", u) for u in sponsored}

    # Its figures: in the run's counts (no migration), the run report, and the command line's stage table.
    ((counts,),) = query(sqlite_url, "SELECT stage_counts FROM pipeline_runs")
    stages = json.loads(counts) if isinstance(counts, str) else counts
    assert [s["stage"] for s in stages] == ["fetch", "clean", "dedupe", "sponsored", "load"]
    assert stages[3] == {"stage": "sponsored", "in": 7, "out": 4, "quarantined": 3, "dropped": 0, "unchanged": 0}
    assert stages[4]["in"] == 4 and stages[4]["out"] == 4
    report = render_markdown(run_summary(get_engine(sqlite_url)))
    assert "| sponsored | 7 | 4 | 3 |" in report
    table = capsys.readouterr().out
    assert any(line.split() == ["sponsored", "7", "4", "3", "0", "0"] for line in table.splitlines()), table
