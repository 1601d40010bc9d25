"""Deduplication on small hand-written cases: exact and near copies dropped, different stories kept,
across runs through the warehouse."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert, select, update

from tasks import schema
from tasks.dedupe import (
    MAX_BUCKET,
    EmptyIndex,
    KnownArticle,
    closest_known,
    cluster_ids,
    deduplicate,
    sharing_pairs,
    sketch,
    tokenize,
    verified_links,
)
from tasks.load import load_batch
from tasks.records import Article
from tasks.settings import Settings
from tasks.textnorm import content_hash, fold_lines, fold_lines_utf8
from tasks.warehouse import WarehouseIndex, get_engine
from tests.dedup_texts import (
    FOLLOW_UP,
    KEPT_LEAD_UPDATE,
    OUTLET_FOOTER,
    OUTLET_STORY_A,
    OUTLET_STORY_B,
    OUTLET_STORY_C,
    QUOTING_REPORT,
    REWRITTEN_LEAD_AND_ENDING,
    REWRITTEN_LEAD_COPY,
    SAME_OPENING_REPORT,
    SECOND_HALF_COPY,
    TRUNCATED_COPY,
    WIRE_COPY,
    WIRE_STORY,
    ZH_OTHER_STORY,
    normalised_copy,
)
from tests.language_samples import LANGUAGES, sample, sample_text

SETTINGS = Settings()


def article(url: str, text: str, published: str | None = None) -> Article:
    return Article(source=url.split("/")[2], url=url, canonical_url=url, text=text, title=text.split("\n")[0],
                   published_at=datetime.fromisoformat(published).replace(tzinfo=UTC) if published else None)


def test_content_hash_is_the_text_normalisations_hash():
    texts = [WIRE_STORY, normalised_copy(WIRE_STORY), "", "  a \t b\u1680c\u2028", "x\x00y"]
    assert sketch(texts, SETTINGS).content_hashes == [content_hash(t) for t in texts]
    assert content_hash(normalised_copy(WIRE_STORY)) == content_hash(WIRE_STORY)


FOLDING_CASES = ["Plain ASCII, Mixed Case.", "AT&amp;T &#163;8m", "&lt;b&gt; \u00c9t\u00e9 \u200b\u00a0x",
                 "Caf\u00e9 \u201cQUOTED\u201d \u2014 \ufb01ne", "STRASSE Stra\u00dfe \u0130", ""]


@pytest.mark.parametrize("text", FOLDING_CASES)
def test_the_byte_folding_is_the_text_folding(text):
    assert fold_lines_utf8(text) == fold_lines(text).encode("utf-8")


def test_copies_share_a_cluster_and_different_stories_do_not():
    labels = cluster_ids([WIRE_STORY, normalised_copy(WIRE_STORY), WIRE_COPY, TRUNCATED_COPY, FOLLOW_UP],
                         sources=["wire", "times", "weekly", "coast news", "wire"])
    assert labels[0] == labels[1] == labels[2] == labels[3]  # exact, re-dressed and truncated copies
    assert labels[4] != labels[0]  # the follow-up is another story


def test_stories_of_one_outlet_are_not_joined_by_its_header_and_footer():
    outlet = [OUTLET_STORY_A, OUTLET_STORY_B, OUTLET_STORY_C]
    assert len(set(cluster_ids(outlet, sources=["island-weekly"] * 3))) == 3
    # Its footer on a wire copy does not hide the copy either.
    labels = cluster_ids([*outlet, WIRE_STORY, WIRE_COPY], sources=["island-weekly"] * 3 + ["wire", "island-weekly"])
    assert labels[3] == labels[4] and len(set(labels)) == 4


def test_without_sources_a_footer_found_in_several_stories_is_boilerplate():
    """The plain call (what the benchmark scores) cannot tell outlets: a line recurring across different
    stories of the batch is boilerplate, a wire story's paragraphs recurring across its copies are not."""
    paragraphs = WIRE_STORY.split("\n\n")
    # A copy that cut the lead and a middle paragraph, under the outlet's three-line footer.
    copy = "\n\n".join(["Terminal row ends as harbour board says yes", *paragraphs[2:5], *paragraphs[6:9]])
    copy += "\n" + OUTLET_FOOTER
    assert len(set(cluster_ids([WIRE_STORY, copy]))) == 2  # alone, the footer hides the copy
    labels = cluster_ids([WIRE_STORY, copy, OUTLET_STORY_A, OUTLET_STORY_B, OUTLET_STORY_C])
    assert labels[0] == labels[1] and len(set(labels)) == 4
    # Stories dressed in one header and footer, nothing else in common, are not joined.
    assert len(set(cluster_ids([OUTLET_STORY_A, OUTLET_STORY_B, OUTLET_STORY_C]))) == 3
    # Copies of one wire story in several outlets keep the paragraphs they share.
    labels = cluster_ids([WIRE_STORY, normalised_copy(WIRE_STORY), WIRE_COPY, TRUNCATED_COPY, FOLLOW_UP])
    assert labels[0] == labels[1] == labels[2] == labels[3] != labels[4]


def syndicated_copy(code: str) -> str:
    """Another outlet's copy of the sample article in language `code`: its own headline, three characters
    cut from the middle of the second paragraph, the last paragraph left out."""
    title, paragraphs = sample(code)
    second = paragraphs[1]
    edited = second[:len(second) // 2] + second[len(second) // 2 + 3:]
    return "\n\n".join([f"{title[:12]} ({code})", paragraphs[0], edited, *paragraphs[2:-1]])


@pytest.mark.parametrize("code", LANGUAGES)
def test_a_syndicated_copy_is_caught_in_every_script(code):
    other = sample_text(LANGUAGES[(LANGUAGES.index(code) + 1) % len(LANGUAGES)])
    labels = cluster_ids([sample_text(code), syndicated_copy(code), other])
    assert labels[0] == labels[1] != labels[2]


def test_in_scripts_without_spaces_each_character_is_a_word():
    tokens, _ = tokenize([fold_lines_utf8(text) for text in
                          ["北京 abc東京2024年。「東京」", "ไทย คำ", "Café ünïcode 北", "plain words."]])
    # 北 京 abc 東 京 2024 年 東 京 | ไ ท ย ค ํ า (NFKC splits ำ) | café ünïcode 北 | plain words
    assert np.diff(tokens.offsets).tolist() == [9, 6, 3, 2]


def test_another_story_of_the_same_city_and_paper_is_not_a_copy_in_chinese():
    zh = sample_text("zh")
    labels = cluster_ids([zh, syndicated_copy("zh"), ZH_OTHER_STORY], sources=["a", "b", "a"])
    assert labels[0] == labels[1] != labels[2]


OFF = 1.01  # a threshold no estimate reaches: the rule is switched off


def joined(text: str, other: str, **thresholds: float) -> bool:
    """Whether deduplication puts the two texts in one cluster (with these thresholds changed)."""
    return len(set(cluster_ids([text, other], Settings(**thresholds)))) == 1


# Each near-duplicate verification rule on its own: a copy that only it catches (switched off, the copy
# is kept), and a text just short of its threshold (a little lower, and it would be joined).


def test_the_bodies_jaccard_alone_catches_a_copy_with_its_own_lead():
    assert joined(WIRE_STORY, REWRITTEN_LEAD_COPY)
    assert not joined(WIRE_STORY, REWRITTEN_LEAD_COPY, near_jaccard_threshold=OFF)  # no other rule does


def test_containment_alone_catches_a_copy_of_the_second_half():
    assert joined(WIRE_STORY, SECOND_HALF_COPY)
    assert not joined(WIRE_STORY, SECOND_HALF_COPY, near_containment_threshold=OFF)


def test_the_leads_jaccard_alone_catches_a_copy_that_kept_only_the_lead():
    assert joined(WIRE_STORY, KEPT_LEAD_UPDATE)
    assert not joined(WIRE_STORY, KEPT_LEAD_UPDATE, near_lede_threshold=OFF)


@pytest.mark.parametrize(("text", "rule", "lower"), [
    (REWRITTEN_LEAD_AND_ENDING, "near_jaccard_threshold", 0.45),
    (QUOTING_REPORT, "near_containment_threshold", 0.65),
    (SAME_OPENING_REPORT, "near_lede_threshold", 0.45),
], ids=["body-jaccard", "containment", "lead-jaccard"])
def test_a_text_just_short_of_a_rules_threshold_is_not_joined(text, rule, lower):
    assert not joined(WIRE_STORY, text)
    assert joined(WIRE_STORY, text, **{rule: lower})  # it is that threshold which keeps them apart


def test_the_earliest_published_is_kept_and_the_copies_say_how_they_matched():
    outcome = deduplicate([
        article("https://b.example/copy", WIRE_COPY, "2024-05-02T09:00:00"),
        article("https://a.example/story", WIRE_STORY, "2024-05-01T18:00:00"),
        article("https://c.example/short", TRUNCATED_COPY, "2024-05-02T07:00:00"),
        article("https://d.example/same", normalised_copy(WIRE_STORY), "2024-05-03T07:00:00"),
        article("https://a.example/story", WIRE_STORY, "2024-05-01T18:00:00"),  # the same URL twice
        article("https://e.example/follow-up", FOLLOW_UP, "2024-05-04T07:00:00"),
    ], EmptyIndex(), SETTINGS)
    assert [a.canonical_url for a in outcome.kept] == ["https://a.example/story", "https://e.example/follow-up"]
    dropped = {d.url: (d.kind, d.kept_url) for d in outcome.duplicates}
    assert dropped == {"https://a.example/story": ("url", "https://a.example/story"),
                       "https://d.example/same": ("exact", "https://a.example/story"),
                       "https://b.example/copy": ("near", "https://a.example/story"),
                       "https://c.example/short": ("near", "https://a.example/story")}
    near = [d for d in outcome.duplicates if d.kind == "near"]
    assert all(0.5 <= d.similarity <= 1.0 for d in near)
    assert all(d.similarity == 1.0 for d in outcome.duplicates if d.kind != "near")
    assert all(d.similarity == round(d.similarity, 4) for d in near)  # estimates are k/128: reported to 4 places
    assert {d.url: d.source for d in outcome.duplicates}["https://b.example/copy"] == "b.example"
    assert set(outcome.fingerprints) == {"https://a.example/story", "https://e.example/follow-up"}
    assert outcome.fingerprints["https://a.example/story"].content_hash == content_hash(WIRE_STORY)
    counts = outcome.stats.counts
    assert (counts["in"], counts["out"], counts["duplicate_near"]) == (6, 2, 2)


def test_when_nothing_is_published_the_longest_is_kept():
    outcome = deduplicate([article("https://c.example/short", TRUNCATED_COPY),
                           article("https://a.example/story", WIRE_STORY)], EmptyIndex(), SETTINGS)
    assert [a.canonical_url for a in outcome.kept] == ["https://a.example/story"]


def test_an_undated_copy_gives_way_to_a_dated_original():
    outcome = deduplicate([article("https://c.example/short", TRUNCATED_COPY),
                           article("https://a.example/story", WIRE_STORY, "2024-05-01T18:00:00")], EmptyIndex(),
                          SETTINGS)
    assert [a.canonical_url for a in outcome.kept] == ["https://a.example/story"]


def test_stored_sketches_of_another_shape_are_not_compared(sqlite_url):
    """Sketches stored under other settings (here a shorter lead signature) are skipped, not misread."""
    engine = get_engine(sqlite_url)
    older = Settings(lede_permutations=48)
    outcome = deduplicate([article("https://a.example/story", WIRE_STORY)], WarehouseIndex(engine), older)
    load_batch(engine, "run-1", outcome.kept, outcome.fingerprints, outcome.duplicates, older)
    outcome = deduplicate([article("https://b.example/copy", WIRE_COPY)], WarehouseIndex(engine), SETTINGS)
    assert [a.canonical_url for a in outcome.kept] == ["https://b.example/copy"] and not outcome.duplicates


def test_two_runs_loading_copies_of_each_others_articles_keep_one(warehouse_url):
    """Both runs deduplicate before either loads; the second to load finds the other's article."""
    engine = get_engine(warehouse_url)
    both_deduplicated = threading.Barrier(2, timeout=60)
    results: dict[str, object] = {}

    def run(run_id: str, item: Article) -> None:
        try:
            outcome = deduplicate([item], WarehouseIndex(engine), SETTINGS)
            both_deduplicated.wait()
            results[run_id] = load_batch(engine, run_id, outcome.kept, outcome.fingerprints, outcome.duplicates,
                                         SETTINGS)
        except BaseException as exc:  # reported by the assertion below
            results[run_id] = exc

    threads = [threading.Thread(target=run, args=("run-a", article("https://a.example/story", WIRE_STORY))),
               threading.Thread(target=run, args=("run-b", article("https://b.example/copy", WIRE_COPY)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(not isinstance(r, BaseException) for r in results.values()), results
    with engine.connect() as conn:
        kept = conn.execute(select(schema.articles.c.id, schema.articles.c.canonical_url)).all()
        copies = conn.execute(select(schema.duplicates.c.url, schema.duplicates.c.kind,
                                     schema.duplicates.c.article_id)).all()
    assert len(kept) == 1 and len(copies) == 1
    (kept_id, kept_url), (copy_url, kind, points_at) = kept[0], copies[0]
    assert {kept_url, copy_url} == {"https://a.example/story", "https://b.example/copy"}
    assert (kind, points_at) == ("near", kept_id)


def _load(url: str, articles: list[Article], run_id: str) -> tuple[list[str], list[tuple[str, str, int | None]]]:
    engine = get_engine(url)
    outcome = deduplicate(articles, WarehouseIndex(engine), SETTINGS)
    load_batch(engine, run_id, outcome.kept, outcome.fingerprints, outcome.duplicates)
    return ([a.canonical_url for a in outcome.kept],
            [(d.url, d.kind, d.kept_article_id) for d in outcome.duplicates])


def test_a_copy_arriving_in_a_later_run_is_caught_through_the_warehouse(warehouse_url):
    kept, _ = _load(warehouse_url, [article("https://a.example/story", WIRE_STORY),
                                    article("https://e.example/follow-up", FOLLOW_UP)], "run-1")
    assert len(kept) == 2
    engine = get_engine(warehouse_url)
    with engine.connect() as conn:
        story_id = conn.execute(select(schema.articles.c.id)
                                .where(schema.articles.c.canonical_url == "https://a.example/story")).scalar_one()
        keys = conn.execute(select(schema.article_band_keys.c.band_key)
                            .where(schema.article_band_keys.c.article_id == story_id)).scalars().all()
    assert len(keys) == SETTINGS.lsh_bands + SETTINGS.lede_bands

    kept, dropped = _load(warehouse_url, [article("https://b.example/copy", WIRE_COPY),
                                          article("https://c.example/short", TRUNCATED_COPY),
                                          article("https://d.example/same", normalised_copy(WIRE_STORY)),
                                          article("https://f.example/library", OUTLET_STORY_A)], "run-2")
    assert kept == ["https://f.example/library"]
    assert sorted(dropped) == [("https://b.example/copy", "near", story_id),
                               ("https://c.example/short", "near", story_id),
                               ("https://d.example/same", "exact", story_id)]

    # Seen again, an article already stored is kept (and refreshed), never dropped as its own copy.
    kept, dropped = _load(warehouse_url, [article("https://a.example/story", WIRE_STORY)], "run-3")
    assert (kept, dropped) == (["https://a.example/story"], [])
    with engine.connect() as conn:
        rows = conn.execute(select(schema.duplicates.c.url, schema.duplicates.c.article_id)).all()
    assert sorted(rows) == [("https://b.example/copy", story_id), ("https://c.example/short", story_id),
                            ("https://d.example/same", story_id)]


def test_near_copies_are_looked_for_within_the_window_and_exact_ones_forever(sqlite_url):
    _load(sqlite_url, [article("https://a.example/story", WIRE_STORY)], "run-1")
    engine = get_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(schema.articles).values(
            first_seen_at=datetime.now(UTC) - timedelta(days=SETTINGS.dedupe_window_days + 1)))
    kept, dropped = _load(sqlite_url, [article("https://b.example/copy", WIRE_COPY),
                                       article("https://d.example/same", normalised_copy(WIRE_STORY))], "run-2")
    assert kept == ["https://b.example/copy"]
    assert [(url, kind) for url, kind, _ in dropped] == [("https://d.example/same", "exact")]


@pytest.mark.parametrize("text", ["", "!!!", "short", "three short words"])
def test_texts_without_enough_words_never_look_alike(text):
    assert len(set(cluster_ids([text, "???", "other"]))) == 3


class CountingIndex(WarehouseIndex):
    """The warehouse index, counting the stored articles whose signatures deduplication reads."""

    read = 0

    def signatures(self, ids: Iterable[int], since: datetime | None = None) -> list[KnownArticle]:
        found = super().signatures(ids, since)
        self.read += len(found)
        return found


def test_a_band_key_brings_only_its_newest_stored_articles(warehouse_url):
    engine = get_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(insert(schema.article_band_keys), [{"band_key": "00ff", "article_id": i} for i in range(1, 13)]
                     + [{"band_key": "0aaa", "article_id": 3}])
    found = WarehouseIndex(engine).band_key_matches(["00ff", "0aaa", "0bbb"], per_key=5)
    assert sorted(found) == [("00ff", 8), ("00ff", 9), ("00ff", 10), ("00ff", 11), ("00ff", 12), ("0aaa", 3)]
    assert len(WarehouseIndex(engine).band_key_matches(["00ff"])) == 12  # unbounded
    with engine.connect() as conn:  # the load stage's recheck: only what came after
        assert sorted(WarehouseIndex(conn, after_id=10).band_key_matches(["00ff", "0aaa"], per_key=5)) == [
            ("00ff", 11), ("00ff", 12)]


def test_a_copy_is_verified_against_a_bounded_number_of_look_alikes(warehouse_url):
    """Many stored texts sharing band keys with a new one (stored while near copies were let through): the
    stage reads the few sharing the most keys, not all of them, and still finds the copy. Reading all of
    them made the dedupe stage's time per batch grow with the warehouse."""
    engine = get_engine(warehouse_url)
    lenient = Settings(near_jaccard_threshold=1.01, near_containment_threshold=1.01, near_lede_threshold=1.01)
    look_alikes = [article(f"https://s{n}.example/story", f"{WIRE_STORY}\nCorrection number {n} was appended.")
                   for n in range(12)]
    outcome = deduplicate(look_alikes, WarehouseIndex(engine), lenient)
    assert len(outcome.kept) == 12
    load_batch(engine, "run-1", outcome.kept, outcome.fingerprints, outcome.duplicates)

    bounded = CountingIndex(engine)
    outcome = deduplicate([article("https://b.example/copy", WIRE_COPY)], bounded,
                          Settings(dedupe_known_per_text=3))
    assert [(d.url, d.kind) for d in outcome.duplicates] == [("https://b.example/copy", "near")]
    assert outcome.duplicates[0].kept_article_id is not None
    assert bounded.read == 3
    unbounded = CountingIndex(engine)
    deduplicate([article("https://b.example/copy", WIRE_COPY)], unbounded, Settings(dedupe_known_per_text=100))
    assert unbounded.read == 12


def test_the_stored_articles_sharing_most_keys_with_a_text_are_kept_for_it():
    keys = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], dtype=np.uint64)
    distinct = np.unique(keys)
    names = [f"{k:016x}" for k in distinct.tolist()]
    matches = [(names[k - 1], 500) for k in (1, 2, 3, 4)]  # the original shares four keys with text 0
    matches += [(names[5], article) for article in range(1, 50)]  # 49 look-alikes, one key each
    matches += [(names[6], 7), (names[7], 7), (names[8], 8)]
    assert closest_known(keys, distinct, names, matches, per_text=3).tolist() == [7, 8, 48, 49, 500]
    assert closest_known(keys, distinct, names, [], per_text=3).tolist() == []


def test_stored_articles_are_not_compared_with_each_other():
    nodes = sketch([FOLLOW_UP, WIRE_STORY, normalised_copy(WIRE_STORY) + "\nOne more line of text here."],
                   SETTINGS)
    live, keys = np.arange(3), nodes.lsh_keys(SETTINGS)
    assert [(a, b) for a, b, _ in verified_links(nodes, live, keys, SETTINGS)] == [(1, 2)]
    assert verified_links(nodes, live, keys, SETTINGS, first_known=1) == []  # rows 1 and 2 are stored


def test_texts_sharing_a_value_are_paired_once_and_a_huge_bucket_only_with_neighbours():
    values = np.array([7, 5, 9, 7, 5, 7, 9], dtype=np.uint64)  # 9 twice in text 4: no pair with itself
    owners = np.array([2, 0, 4, 3, 1, 1, 4])
    assert sharing_pairs(values, owners, 5).tolist() == [0 * 5 + 1, 1 * 5 + 2, 1 * 5 + 3, 2 * 5 + 3]
    empty = sharing_pairs(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), 3)
    assert empty.tolist() == [] and empty.dtype == np.int64
    # Up to MAX_BUCKET texts with one value: every pair. More (boilerplate-like): a chain through all of them.
    assert len(sharing_pairs(np.zeros(MAX_BUCKET, dtype=np.uint64), np.arange(MAX_BUCKET), MAX_BUCKET)) == \
        MAX_BUCKET * (MAX_BUCKET - 1) // 2
    chain = sharing_pairs(np.zeros(250, dtype=np.uint64), np.arange(250), 250)
    assert len(chain) == 249 and set((chain // 250).tolist()) | set((chain % 250).tolist()) == set(range(250))
