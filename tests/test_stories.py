"""Same-story links (level 3): coverage of one event linked across outlets and runs, never dropped."""

from __future__ import annotations

from sqlalchemy import select

from tasks import schema
from tasks.dedupe import deduplicate, story_ids
from tasks.load import load_batch
from tasks.records import Article
from tasks.settings import Settings
from tasks.stories import LexicalMatcher, Story, assign
from tasks.warehouse import WarehouseIndex, get_engine
from tests.dedup_texts import FOLLOW_UP, OUTLET_STORY_A, OUTLET_STORY_B, WIRE_STORY

SETTINGS = Settings()


def test_headlines_about_one_event_share_a_story():
    labels = story_ids([
        "Harbour authority approves new ferry terminal after four-year dispute",
        "Ferry terminal plan approved by harbour board",
        "Campaigners seek judicial review of harbour ferry terminal decision",
        "Central library to open on Sundays",
        "School robotics team wins national final",
    ])
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3


def test_a_follow_up_with_its_own_words_joins_the_story_of_the_first_report():
    labels = story_ids([WIRE_STORY, FOLLOW_UP, OUTLET_STORY_A, OUTLET_STORY_B])
    assert labels[0] == labels[1] and len(set(labels)) == 3


def test_a_story_is_joined_when_the_centroid_is_close_enough():
    matcher = LexicalMatcher(threshold=0.6)
    stories = [Story(7, {"ferry": 1.0, "terminal": 1.0})]
    labels = assign(matcher.vectors(["ferry terminal", "ferry fares", "library hours"]), stories, matcher.threshold)
    assert labels == [0, 1, 2]  # "ferry fares" shares one word of two: cosine 0.5 with the story
    assert [s.id for s in stories] == [7, None, None] and stories[0].members == 1


def _load(url: str, articles: list[Article], run_id: str) -> None:
    engine = get_engine(url)
    outcome = deduplicate(articles, WarehouseIndex(engine), SETTINGS)
    load_batch(engine, run_id, outcome.kept, outcome.fingerprints, outcome.duplicates, SETTINGS)


def test_stories_link_articles_across_runs(warehouse_url):
    def article(url: str, text: str) -> Article:
        return Article(source=url.split("/")[2], url=url, canonical_url=url, text=text.split("\n", 2)[2],
                       title=text.split("\n")[0])

    _load(warehouse_url, [article("https://a.example/story", WIRE_STORY),
                          article("https://f.example/library", OUTLET_STORY_A)], "run-1")
    _load(warehouse_url, [article("https://e.example/follow-up", FOLLOW_UP)], "run-2")
    _load(warehouse_url, [article("https://a.example/story", WIRE_STORY)], "run-3")  # seen again: no new link

    with get_engine(warehouse_url).connect() as conn:
        story_of = dict(conn.execute(select(schema.articles.c.canonical_url, schema.articles.c.story_id)).all())
        stories = {row.id: row for row in conn.execute(select(schema.stories))}
    assert story_of["https://a.example/story"] == story_of["https://e.example/follow-up"]
    assert story_of["https://f.example/library"] != story_of["https://a.example/story"]
    ferry = stories[story_of["https://a.example/story"]]
    assert ferry.title == "Harbour authority approves new ferry terminal"
    assert ferry.article_count == 2 and ferry.first_seen_at < ferry.last_seen_at
    assert "ferry" in ferry.centroid and stories[story_of["https://f.example/library"]].article_count == 1
