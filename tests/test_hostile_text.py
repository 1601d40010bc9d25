"""Text that tries to be something else: markup or script in a title, undecodable bytes in a text, and a
warehouse URL whose folders do not exist."""

from __future__ import annotations

import pytest
from warehouse_sql import query

from tasks.clean import clean_document
from tasks.metadata import extract_metadata, plain_title
from tasks.records import Article, Document
from tasks.warehouse import WarehouseError, make_engine

SENTENCE = "The council met on Tuesday to discuss the harbour budget and the ferry timetable."
BODY = "<p>" + " ".join([SENTENCE] * 8) + "</p>"


def test_a_script_inside_the_h1_is_not_part_of_the_title():
    page = (f"<html><body><article><h1>Budget approved<script>document.title='pwned'; alert(1)</script>"
            f"<style>h1{{color:red}}</style></h1>{BODY}</article></body></html>")
    assert extract_metadata(page)["title"] == "Budget approved"
    article = clean_document(Document(source="s", url="https://example.org/a", html=page))
    assert isinstance(article, Article) and article.title == "Budget approved"


@pytest.mark.parametrize(("value", "expected"), [
    ("Hello <b>world</b><script>steal()</script>", "Hello world"),
    ("<img src=x onerror=alert(1)>Harbour news", "Harbour news"),
    ("Why 3 < 5 matters", "Why 3 < 5 matters"),
    ("<script>only()</script>", None),
])
def test_titles_from_feeds_and_meta_are_text(value, expected):
    assert plain_title(value) == expected


def test_a_feed_title_with_markup_is_stored_as_text():
    document = Document(source="s", url="https://example.org/b", html=f"<html><body>{BODY}</body></html>",
                        hints={"title": "Ferry <em>strike</em> ends<script>x()</script>"})
    article = clean_document(document)
    assert isinstance(article, Article) and article.title == "Ferry strike ends"


def test_undecodable_bytes_are_counted_before_cleaning():
    text = ("Harbour council news about the ferry and the budget of the town. " * 30)
    garbled = text[:len(text) // 2] + "\ufffd" * 100 + text[len(text) // 2:]
    article = clean_document(Document(source="s", url="file:///a.txt", text=garbled, content_type="text/plain"))
    assert isinstance(article, Article)
    assert article.undecodable_share == pytest.approx(100 / len(garbled), abs=1e-6)


@pytest.mark.usefixtures("prefect_server")
def test_a_garbled_text_is_quarantined_and_a_slightly_damaged_one_loaded_with_its_share(sqlite_url, tmp_path):
    from flows.ingest import ingest_news

    text = "Harbour council news about the ferry and the budget of the town, said the mayor today. " * 25
    (tmp_path / "garbled.txt").write_bytes((text[:800] + "\ufffd" * 200 + text[800:]).encode("utf-8"))
    (tmp_path / "damaged.txt").write_bytes((text[:800].replace("ferry", "ferries", 3) + "\ufffd" + text[800:])
                                           .encode("utf-8"))
    summary = ingest_news(sources=[{"name": "t", "kind": "files", "path": str(tmp_path / "*.txt")}],
                          warehouse_url=sqlite_url)
    assert summary["load_out"] == 1
    (share,) = query(sqlite_url, "SELECT undecodable_share FROM articles")[0]
    assert 0 < share < 0.01
    held = query(sqlite_url, "SELECT stage, url, reasons FROM quarantine")
    assert [(stage, url.rsplit("/", 1)[1]) for stage, url, _ in held] == [("clean", "garbled.txt")]
    assert "undecodable_share" in str(held[0][2])


def test_a_sqlite_url_in_folders_that_do_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path / 'nonexistent' / 'dir' / 'w.db'}")
    assert not (tmp_path / "nonexistent").exists()
    make_engine(f"sqlite:///{tmp_path / 'data' / 'w.db'}")  # one missing level (data/ of the default URL): made
    assert (tmp_path / "data").is_dir()
