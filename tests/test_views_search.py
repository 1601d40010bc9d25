"""The analysts' views and full-text search, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from test_load import load, query

from flows.cli import main
from tasks import migrate
from tasks.dedupe import fingerprint
from tasks.load import load_batch
from tasks.records import Article, Duplicate, FetchAttempt, Rejection
from tasks.search import PG_DOCUMENT, fts5_query, search
from tasks.settings import Settings
from tasks.textnorm import content_hash
from tasks.warehouse import make_engine, record_fetches, record_rejections

DAY = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)


def news(slug: str, title: str, body: str, source: str = "wire") -> Article:
    url = f"https://news.example/{slug}"
    return Article(source=source, url=url, canonical_url=url, title=title, text=body, published_at=DAY,
                   content_hash=content_hash(body))


STORIES = [
    news("budget", "Council approves budget after late-night vote",
         "Councillors approved the city budget after a long debate about roads and schools. " * 5),
    news("ferry", "Island ferry link to start in March",
         "The ferry service will connect the island to the mainland twice a day. The council welcomed it. " * 5),
    news("storm", "Harbour storm damage", "Storm waves damaged boats in the harbour overnight; repairs begin. " * 5,
         source="coast"),
]


def loaded(url: str) -> None:
    migrate.upgrade(url)
    copies = [Duplicate(url="https://mirror.example/budget", source="mirror", kept_url=STORIES[0].canonical_url,
                        kind="exact"),
              Duplicate(url="https://other.example/budget", source="other", kept_url=STORIES[0].canonical_url,
                        kind="near", similarity=0.8)]
    load(url, STORIES, copies)


def test_views(warehouse_url):
    loaded(warehouse_url)
    engine = make_engine(warehouse_url)
    record_fetches(engine, "run-1", [
        FetchAttempt("wire", "https://news.example/budget", 200, fetched_at=DAY),
        FetchAttempt("wire", "https://news.example/gone", 404, "HTTP 404", fetched_at=DAY),
        FetchAttempt("coast", "https://coast.example/feed", None, "ConnectError", fetched_at=DAY)])
    record_rejections(engine, "run-1", [Rejection("clean", "wire", "https://news.example/stub", ["too short"])])
    engine.dispose()

    assert query(warehouse_url, "SELECT title, duplicate_count, version FROM latest_articles ORDER BY id") == [
        (STORIES[0].title, 2, 1), (STORIES[1].title, 0, 1), (STORIES[2].title, 0, 1)]

    health = {row[0]: row[1:] for row in query(
        warehouse_url, "SELECT source, fetches, failures, quarantined, articles, failure_rate, "
                       "last_success IS NOT NULL, last_failure IS NOT NULL FROM source_health")}
    assert health == {"wire": (2, 1, 1, 2, 0.5, True, True), "coast": (1, 1, 0, 1, 1.0, False, True)}

    daily = query(warehouse_url, "SELECT CAST(day AS VARCHAR(10)), source, published, fetches, failed_fetches "
                                 "FROM daily_counts WHERE fetches > 0 OR published > 0 ORDER BY source")
    assert daily == [("2026-03-14", "coast", 1, 1, 1), ("2026-03-14", "wire", 2, 2, 1)]
    assert query(warehouse_url, "SELECT SUM(new_articles), SUM(duplicates), SUM(quarantined) "
                                "FROM daily_counts") == [(3, 2, 1)]


def test_search_ranks_matches_and_follows_changed_texts(warehouse_url):
    loaded(warehouse_url)
    engine = make_engine(warehouse_url)
    titles = lambda q: [hit.title for hit in search(engine, q)]  # noqa: E731

    assert titles("council")[0] == STORIES[0].title  # in the title beats in the text
    assert set(titles("council")) == {STORIES[0].title, STORIES[1].title}
    assert titles("councillors approved budget") == [STORIES[0].title]
    assert titles('"storm waves"') == [STORIES[2].title]
    assert titles("council -ferry") == [STORIES[0].title]
    assert set(titles("harbour OR ferry")) == {STORIES[1].title, STORIES[2].title}
    assert titles("zeppelin") == []
    assert titles('"unbalanced AND (NOT * -') == []  # odd input is no syntax error
    hit = search(engine, "storm")[0]
    assert "[" in hit.snippet and hit.published_at == DAY and hit.source == "coast"

    # A corrected text is what search finds; the old one is only in article_versions.
    load(warehouse_url, [news("storm", "Harbour storm damage", "Gales sank two trawlers at the pier. " * 5,
                              source="coast")], run_id="run-2")
    assert titles("trawlers") == [STORIES[2].title]
    assert titles('"storm waves"') == []
    engine.dispose()


def test_postgres_search_uses_the_gin_index(postgres_url):
    migrate.upgrade(postgres_url)
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in conn.execute(text(
            f"EXPLAIN SELECT id FROM articles WHERE {PG_DOCUMENT} @@ websearch_to_tsquery('english', 'x')")))
    engine.dispose()
    assert "ix_articles_fts" in plan


def test_fts5_query_translation():
    assert fts5_query('budget "late night" -ferry OR') == '("budget" "late night") NOT "ferry"'
    assert fts5_query("harbour OR ferry") == '"harbour" OR "ferry"'
    assert fts5_query("-only -negatives") == ""


def test_search_command(warehouse_url, capsys):
    loaded(warehouse_url)
    assert main(["search", "island ferry", "--warehouse", warehouse_url]) == 0
    out = capsys.readouterr().out
    assert STORIES[1].title in out and STORIES[1].canonical_url in out
    assert main(["search", "zeppelin", "--warehouse", warehouse_url]) == 0
    assert "no article matches" in capsys.readouterr().out


def test_latest_articles_has_one_row_per_article_with_source_story_and_duplicates(warehouse_url):
    migrate.upgrade(warehouse_url)
    follow_up = news("budget-2", "Council budget vote: councillors approve the city budget",
                     "Councillors approved the city budget after the late-night vote on roads and schools. " * 5,
                     source="gazette")
    copies = [Duplicate(url="https://mirror.example/budget", source="mirror", kept_url=STORIES[0].canonical_url,
                        kind="exact")]
    engine = make_engine(warehouse_url)
    settings = Settings()
    prints = {a.canonical_url: fingerprint(a.text, settings) for a in [*STORIES, follow_up]}
    load_batch(engine, "run-1", STORIES, prints, copies, settings)
    load_batch(engine, "run-2", [follow_up, STORIES[1]], prints, [], settings)  # the ferry seen again
    engine.dispose()

    rows = query(warehouse_url, "SELECT l.canonical_url, l.source, l.story_id, l.story_title, l.duplicate_count "
                                "FROM latest_articles l ORDER BY l.id")
    assert [(url, source, count) for url, source, _, _, count in rows] == [
        (STORIES[0].canonical_url, "wire", 1), (STORIES[1].canonical_url, "wire", 0),
        (STORIES[2].canonical_url, "coast", 0), (follow_up.canonical_url, "gazette", 0)]
    story = {url: (story_id, title) for url, _, story_id, title, _ in rows}
    assert all(story_id is not None for story_id, _ in story.values())
    # The follow-up joined the budget story, titled after its first article; the others are their own.
    assert story[follow_up.canonical_url] == story[STORIES[0].canonical_url] == (
        story[STORIES[0].canonical_url][0], STORIES[0].title)
    assert len({story_id for story_id, _ in story.values()}) == 3
    assert query(warehouse_url, "SELECT count(*) FROM latest_articles l JOIN articles a ON a.id = l.id "
                                "AND a.story_id = l.story_id") == [(4,)]
