"""load_batch column by column and count by count, on SQLite and PostgreSQL: what each row holds after an
insert and after a refresh, the band keys replaced with a changed text, duplicates pointing at articles of
this batch or of an earlier one, orphans, `run_writes`, batches past the 500-key chunks, and the late
near-copy check bounded by `seen_up_to`."""

from __future__ import annotations

from datetime import UTC, datetime

from test_load import article, load
from warehouse_sql import query

from tasks import migrate
from tasks.dedupe import fingerprint
from tasks.load import load_batch
from tasks.records import Article, Duplicate
from tasks.settings import Settings
from tasks.textnorm import content_hash
from tasks.warehouse import make_engine

COLUMNS = ("url, canonical_url, source, title, authors, published_at, language, text, word_count, content_hash, "
           "description, site_name, modified_at, image, tags, last_run_id, version, story_id, undecodable_share")



class CountsOf:
    """A load's counts, compared on the keys the test names (the load also counts new, changed and
    unchanged articles and the stories it opened or joined: tests/test_report.py pins those)."""

    def __init__(self, outcome) -> None:
        self.counts = dict(outcome.stats.counts)

    def __eq__(self, expected: object) -> bool:
        return isinstance(expected, dict) and {key: self.counts.get(key) for key in expected} == expected

    def __repr__(self) -> str:
        return repr(self.counts)


def full(text: str, **fields) -> Article:
    values = {"source": "wire", "url": "https://news.example/a?utm=x", "canonical_url": "https://news.example/a",
              "text": text, "title": "A title", "authors": ["Ann", "Bo"],
              "published_at": datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "language": "en",
              "description": "What happened", "site_name": "The News", "modified_at": datetime(2026, 11, 2, tzinfo=UTC),
              "image": "https://news.example/a.jpg", "tags": ["harbour", "storm"], "content_hash": content_hash(text),
              "undecodable_share": 0.002}
    return Article(**{**values, **fields})


def row(url: str, warehouse: str) -> dict:
    names = [c.strip() for c in COLUMNS.split(",")]
    (values,) = query(url, f"SELECT {COLUMNS} FROM articles WHERE canonical_url = '{warehouse}'")
    got = dict(zip(names, values, strict=True))
    for key in ("published_at", "modified_at"):
        if isinstance(got[key], str):  # SQLite: text
            got[key] = datetime.fromisoformat(got[key])
        if got[key] is not None and got[key].tzinfo is None:
            got[key] = got[key].replace(tzinfo=UTC)
    for key in ("authors", "tags"):
        if isinstance(got[key], str):
            import json

            got[key] = json.loads(got[key])
    return got


def test_every_column_is_written_then_refreshed_and_first_seen_stays(warehouse_url):
    migrate.upgrade(warehouse_url)
    first = full("The harbour council met on Monday to discuss the storm damage. " * 8)
    outcome = load(warehouse_url, [first], run_id="run-1")
    assert CountsOf(outcome) == {"in": 1, "out": 1, "new": 1, "changed": 0, "unchanged": 0, "copies": 0}
    expected = {"url": first.url, "canonical_url": first.canonical_url, "source": "wire", "title": "A title",
                "authors": ["Ann", "Bo"], "published_at": first.published_at, "language": "en", "text": first.text,
                "word_count": first.word_count, "content_hash": first.content_hash, "description": "What happened",
                "site_name": "The News", "modified_at": first.modified_at, "image": "https://news.example/a.jpg",
                "tags": ["harbour", "storm"], "last_run_id": "run-1", "version": 1, "story_id": None,
                "undecodable_share": 0.002}
    assert row(warehouse_url, first.canonical_url) == expected
    (first_seen, last_seen), = query(warehouse_url, "SELECT first_seen_at, last_seen_at FROM articles")
    assert first_seen == last_seen
    assert outcome.article_ids == {first.canonical_url: query(warehouse_url, "SELECT id FROM articles")[0][0]}

    second = full("The harbour council met on Tuesday to vote on the storm repairs. " * 8,
                  url="https://news.example/a?ref=2", source="wire-2", title="B title", authors=["Cy"],
                  published_at=datetime(2026, 11, 3, tzinfo=UTC), language="fr", description="Later",
                  site_name="News Two", modified_at=datetime(2026, 11, 4, tzinfo=UTC), image=None, tags=["vote"],
                  undecodable_share=0.0)
    again = load(warehouse_url, [second], run_id="run-2")
    assert row(warehouse_url, first.canonical_url) == {
        **expected, "url": second.url, "source": "wire-2", "title": "B title", "authors": ["Cy"],
        "published_at": second.published_at, "language": "fr", "text": second.text,
        "word_count": second.word_count, "content_hash": second.content_hash, "description": "Later",
        "site_name": "News Two", "modified_at": second.modified_at, "image": None, "tags": ["vote"],
        "last_run_id": "run-2", "version": 2, "undecodable_share": 0.0}
    ((first_seen_after, last_seen_after),) = query(warehouse_url, "SELECT first_seen_at, last_seen_at FROM articles")
    assert first_seen_after == first_seen and last_seen_after != last_seen
    assert again.article_ids == outcome.article_ids
    assert CountsOf(again) == {"in": 1, "out": 1, "versions": 1, "late_duplicates": 0, "duplicates": 0, "new": 0,
                               "changed": 1, "unchanged": 0, "copies": 0}
    assert again.stats.stage == "load"

    same = load(warehouse_url, [full(second.text, title="C title")], run_id="run-3")  # same text: no new version
    assert CountsOf(same) == {"in": 1, "out": 1, "versions": 0, "new": 0, "changed": 0, "unchanged": 1, "copies": 0}
    assert row(warehouse_url, first.canonical_url)["version"] == 2
    assert query(warehouse_url, "SELECT version, replaced_by_run_id FROM article_versions") == [(1, "run-2")]


def test_band_keys_and_signatures_follow_the_text(warehouse_url):
    migrate.upgrade(warehouse_url)
    settings = Settings()
    before = article(1)
    outcome = load(warehouse_url, [before, article(2)])
    ids = outcome.article_ids

    def keys() -> set:
        return set(query(warehouse_url, "SELECT band_key, article_id FROM article_band_keys"))

    printed = {a.canonical_url: fingerprint(a.text, settings) for a in (before, article(2))}
    assert keys() == {(k, ids[u]) for u, p in printed.items() for k in p.band_keys}
    after = article(1, "An entirely different text about the ferry timetable and the winter service. " * 6)
    load(warehouse_url, [after], run_id="run-2")
    new_print = fingerprint(after.text, settings)
    assert keys() == ({(k, ids[before.canonical_url]) for k in new_print.band_keys}
                      | {(k, ids[article(2).canonical_url]) for k in printed[article(2).canonical_url].band_keys})
    signatures = dict(query(warehouse_url, "SELECT article_id, signature FROM article_signatures"))
    assert bytes(signatures[ids[before.canonical_url]]) == new_print.sketch
    assert bytes(signatures[ids[article(2).canonical_url]]) == printed[article(2).canonical_url].sketch


def test_duplicates_point_at_this_batch_an_earlier_one_or_their_given_id_and_orphans_are_returned(warehouse_url):
    migrate.upgrade(warehouse_url)
    earlier = load(warehouse_url, [article(1)], run_id="run-1").article_ids["https://news.example/1"]
    to_batch = Duplicate("https://copy.example/2", "copies", "https://news.example/2", "exact")
    to_earlier = Duplicate("https://copy.example/1", "copies", "https://news.example/1", "near", 0.9)
    by_id = Duplicate("https://copy.example/3", "copies", "https://elsewhere.example/", "exact",
                      kept_article_id=earlier)
    orphan = Duplicate("https://copy.example/4", "copies", "https://gone.example/", "exact")
    outcome = load(warehouse_url, [article(2)], [to_batch, to_earlier, by_id, orphan], run_id="run-2")
    batch_id = outcome.article_ids["https://news.example/2"]
    assert outcome.orphans == [orphan]
    assert CountsOf(outcome) == {"in": 1, "out": 1, "versions": 0, "late_duplicates": 0, "duplicates": 3}
    assert query(warehouse_url, "SELECT url, article_id, kind, similarity, run_id, source FROM duplicates "
                                "ORDER BY url") == [
        ("https://copy.example/1", earlier, "near", 0.9, "run-2", "copies"),
        ("https://copy.example/2", batch_id, "exact", 1.0, "run-2", "copies"),
        ("https://copy.example/3", earlier, "exact", 1.0, "run-2", "copies")]
    duplicate_ids = [i for (i,) in query(warehouse_url, "SELECT id FROM duplicates ORDER BY id")]
    assert sorted(query(warehouse_url, "SELECT kind, row_id FROM run_writes WHERE run_id = 'run-2'")) == sorted(
        [("article", batch_id)] + [("duplicate", i) for i in duplicate_ids])
    assert query(warehouse_url, "SELECT kind, row_id FROM run_writes WHERE run_id = 'run-1'") == [
        ("article", earlier)]


def test_batches_past_the_500_key_chunks(warehouse_url):
    migrate.upgrade(warehouse_url)
    many = [article(n, f"Short story {n} about the harbour and the ferry.") for n in range(1002)]
    engine = make_engine(warehouse_url)
    first = load_batch(engine, "run-1", many, {}, [])
    assert len(first.article_ids) == 1002 == len(set(first.article_ids.values()))
    # Copies pointing at each, by URL only: their ids are looked up in chunks too.
    copies = [Duplicate(f"https://copy.example/{n}", "copies", a.canonical_url, "exact") for n, a in enumerate(many)]
    changed = [article(n, f"Corrected story {n} about the harbour and the ferry.") for n in range(1002)]
    second = load_batch(engine, "run-2", changed, {}, copies)
    engine.dispose()
    assert second.article_ids == first.article_ids and second.orphans == []
    assert CountsOf(second) == {"in": 1002, "out": 1002, "versions": 1002, "late_duplicates": 0,
                                         "duplicates": 1002}
    assert query(warehouse_url, "SELECT count(*), min(version), max(version) FROM articles") == [(1002, 2, 2)]
    assert query(warehouse_url, "SELECT count(DISTINCT article_id) FROM article_versions") == [(1002,)]
    assert query(warehouse_url, "SELECT count(*) FROM duplicates d JOIN articles a ON a.id = d.article_id "
                                "WHERE d.url = replace(a.canonical_url, 'news.example', 'copy.example')") == [(1002,)]
    assert query(warehouse_url, "SELECT kind, count(*) FROM run_writes WHERE run_id = 'run-2' GROUP BY kind "
                                "ORDER BY kind") == [("article", 1002), ("duplicate", 1002)]


STORY = ("The harbour authority said on Monday that the storm had damaged twelve fishing boats and the "
         "old pier, and that repairs would take until the end of the month. ") * 6


def test_the_late_near_copy_check_looks_only_past_what_the_dedupe_stage_saw(warehouse_url):
    migrate.upgrade(warehouse_url)
    settings = Settings()
    stored = load(warehouse_url, [article(1, STORY, "https://a.example/storm")], run_id="run-a")
    newest = stored.article_ids["https://a.example/storm"]
    near = article(2, STORY.replace("Monday", "Tuesday"), "https://b.example/storm")
    engine = make_engine(warehouse_url)
    # The dedupe stage saw the stored article (and kept this one anyway): its verdict stands.
    seen = load_batch(engine, "run-b", [near], {}, [], settings, seen_up_to=newest)
    assert seen.stats.counts["late_duplicates"] == 0 and list(seen.article_ids) == ["https://b.example/storm"]
    # Without `seen_up_to`, every stored article counts: a second near copy is caught.
    other = article(3, STORY.replace("Monday", "Friday"), "https://c.example/storm")
    caught = load_batch(engine, "run-c", [other], {}, [], settings)
    # Nothing new (without settings): not checked at all.
    third = article(4, STORY.replace("Monday", "Sunday"), "https://d.example/storm")
    unchecked = load_batch(engine, "run-d", [third], {}, [])
    engine.dispose()
    assert CountsOf(caught) == {"in": 1, "out": 0, "versions": 0, "late_duplicates": 1, "duplicates": 1,
                                         "stories_linked": 0}
    assert caught.article_ids == {}
    assert query(warehouse_url, "SELECT url, kind FROM duplicates") == [("https://c.example/storm", "near")]
    assert unchecked.stats.counts["late_duplicates"] == 0 and "stories_linked" not in unchecked.stats.counts


def test_an_exact_copy_loaded_meanwhile_points_at_the_first_loaded(warehouse_url):
    migrate.upgrade(warehouse_url)
    text = "The same wire story, carried by three papers word for word, about the harbour. " * 5
    first = load(warehouse_url, [article(1, text, "https://one.example/x")], run_id="r1")
    load(warehouse_url, [article(2, "Another story entirely about a ferry and its winter timetable. " * 5,
                                 "https://two.example/y")], run_id="r2")
    late = article(3, text, "https://three.example/z")
    late.input_hash = "f" * 64  # the document it came from: kept with the duplicate too
    outcome = load(warehouse_url, [late], run_id="r3")
    original = first.article_ids["https://one.example/x"]
    assert outcome.article_ids == {} and CountsOf(outcome) == {
        "in": 1, "out": 0, "versions": 0, "late_duplicates": 1, "duplicates": 1, "new": 0, "copies": 1}
    assert query(warehouse_url, "SELECT url, canonical_url, article_id, kind, source, input_hash FROM duplicates") == [
        ("https://three.example/z", "https://three.example/z", original, "exact", "wire", "f" * 64)]


def test_with_settings_a_known_article_and_an_exact_late_copy_are_not_checked_again_as_near_copies(warehouse_url):
    migrate.upgrade(warehouse_url)
    settings = Settings()
    engine = make_engine(warehouse_url)
    stored = load_batch(engine, "run-a", [article(1, STORY, "https://a.example/storm")], {}, [], settings)
    # The same URL with a corrected text: a new version of it, not a near copy of itself.
    corrected = article(1, STORY.replace("Monday", "Tuesday"), "https://a.example/storm")
    again = load_batch(engine, "run-b", [corrected], {}, [], settings)
    # The same text under another URL, loaded meanwhile: one exact copy, not also a near one.
    copy = load_batch(engine, "run-c", [article(2, corrected.text, "https://b.example/storm")], {}, [], settings)
    engine.dispose()
    assert again.article_ids == stored.article_ids
    assert CountsOf(again) == {"in": 1, "out": 1, "versions": 1, "late_duplicates": 0, "duplicates": 0}
    assert CountsOf(copy) == {"in": 1, "out": 0, "late_duplicates": 1, "duplicates": 1, "copies": 1}
    assert query(warehouse_url, "SELECT url, kind, article_id FROM duplicates") == [
        ("https://b.example/storm", "exact", stored.article_ids["https://a.example/storm"])]


def same_story(n: int, lead: str) -> Article:
    """One event told by another paper: the same headline, another lead and body (not a copy)."""
    text = f"{lead} " + " ".join(f"detail{n}x{i}" for i in range(80))
    url = f"https://paper{n}.example/storm"
    return Article(source=f"paper{n}", url=url, canonical_url=url, text=text, content_hash=content_hash(text),
                   title="Storm floods the harbour and damages the old pier")


def test_joining_a_story_counts_only_stories_opened_before_the_run(warehouse_url):
    migrate.upgrade(warehouse_url)
    settings = Settings()
    engine = make_engine(warehouse_url)
    # Articles of another run without stories first: article ids and story ids differ from here on.
    load_batch(engine, "run-0", [article(n) for n in range(5)], {}, [])
    opened = load_batch(engine, "run-1", [same_story(1, "The storm flooded the harbour on Monday night and broke "
                                                        "the old pier.")], {}, [], settings)
    # A later batch of the same run: the story is the run's own, nothing joined.
    later = load_batch(engine, "run-1", [same_story(2, "Flooding in the harbour on Monday night broke the old "
                                                       "wooden pier.")], {}, [], settings)
    # Another run: it joins a story opened before it.
    other = load_batch(engine, "run-2", [same_story(3, "The harbour flooded on Monday night; the old pier was "
                                                       "broken.")], {}, [], settings)
    engine.dispose()
    (story,) = opened.stories_opened
    assert CountsOf(opened) == {"out": 1, "stories_linked": 1, "stories_opened": 1, "stories_joined": 0}
    assert later.stories_opened == [] and later.joined == {}
    assert CountsOf(later) == {"out": 1, "stories_linked": 1, "stories_opened": 0, "stories_joined": 0}
    assert other.joined == {"https://paper3.example/storm": story}
    assert CountsOf(other) == {"out": 1, "stories_linked": 1, "stories_opened": 0, "stories_joined": 1}
    assert query(warehouse_url, "SELECT DISTINCT story_id FROM articles WHERE story_id IS NOT NULL") == [(story,)]
    assert query(warehouse_url, "SELECT run_id, kind, row_id FROM run_writes WHERE kind LIKE 'story%' "
                                "ORDER BY run_id") == [
        ("run-1", "story", story), ("run-2", "story_join", other.article_ids["https://paper3.example/storm"])]


def test_a_late_copy_of_a_text_stored_twice_points_at_the_first_loaded(warehouse_url):
    migrate.upgrade(warehouse_url)
    text = "The same wire story, carried by two papers word for word, about the harbour. " * 5
    both = load(warehouse_url, [article(1, text, "https://one.example/x"), article(2, text, "https://two.example/y")],
                run_id="r1")
    first = both.article_ids["https://one.example/x"]
    assert first < both.article_ids["https://two.example/y"]
    # The first one corrected, then corrected back: its row is written again, after the second one's.
    load(warehouse_url, [article(1, text.replace("two papers", "two dailies"), "https://one.example/x")], run_id="r2")
    load(warehouse_url, [article(1, text, "https://one.example/x")], run_id="r3")
    outcome = load(warehouse_url, [article(3, text, "https://three.example/z")], run_id="r4")
    assert outcome.article_ids == {}
    assert query(warehouse_url, "SELECT url, article_id FROM duplicates") == [("https://three.example/z", first)]
