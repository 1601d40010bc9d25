"""`has_markup`: tags left in a cleaned text, not '<' in its prose."""

from __future__ import annotations

import pytest

from tasks.markup import has_markup, leftover_markup

STORY = ("The council met on Tuesday evening to discuss the harbour budget, and members agreed to look again "
         "at the repair plans for the old stone quay before the winter storms.")

PROSE = {
    "article about HTML": (
        "Every web page is built from elements. The <p> element marks a paragraph, a <br> tag breaks a line "
        "and <h1> holds the main heading. Put the text between <p> and </p>, and the browser does the rest; "
        "leave out the </p> and it closes the paragraph for you. Older pages used <font> and <center>, which "
        "the standard has since dropped in favour of style sheets."),
    "maths": (
        "If a < b and b < c, then a < c. For x<y and y>z nothing follows about x and z, and the bound "
        "0 <= n < 10 holds for every digit. The ratio stays below 1 when p<q, and 3 <4 is plainly true."),
    "a quoted <br> in prose": (
        'Readers of the morning edition saw a stray "<br>" printed in the middle of the weather column, '
        "where the layout software should have broken the line."),
    "a quoted <script> in prose": (
        "The security report says attackers typed a <script> tag into the comment form, which the site "
        "now escapes."),
    "angle-bracketed addresses and generics": (
        "Write to <letters@gazette.example> or see <https://gazette.example/letters>. In Java a "
        "List<String> is not a List<Object>, and in C++ vector<int> holds integers."),
    "quotation marks and arrows": "Prices rose <<sharply>> this week -> and the mayor said <- nothing.",
    "titles of works in angle brackets": (
        "Audiences came to watch <The Palace: Tale of Jang Noksu> again this spring.\n\n<Main Street>\n\n"
        "The musical <Time Out> opens in May, after <Small Hours> closes."),
}

LEFTOVER = {
    "a tag with attributes": (f'{STORY} <div class="x">{STORY}', '<div class="x">'),
    "paragraph tags next to each other": (f"{STORY}</p><p>{STORY}", "</p><p>"),
    "a script block": (f"{STORY} <script>window.ads = [];</script> {STORY}", "<script>"),
    "a script block at the end": (f"{STORY} <script>alert(1)</script>", "<script>"),
    "a paragraph wrapped in tags": (f"<p>{STORY}</p>", "<p>"),
    "a tag alone on its line": (f"{STORY}\n<div>\n{STORY}", "<div>"),
    "a link": (f'{STORY} Read <a href="/more">more</a> today.', '<a href="/more">'),
    "a comment": (f"{STORY} <!-- ad slot 3 --> {STORY}", "<!-- ad slot 3 -->"),
    "an HTML document": ("<!DOCTYPE html>\n" + STORY, "<!DOCTYPE html>"),
    "upper-case tags": (f"{STORY}<BR><BR>{STORY}", "<BR><BR>"),
}


@pytest.mark.parametrize("text", PROSE.values(), ids=PROSE.keys())
def test_less_than_signs_and_tags_mentioned_in_prose_are_not_markup(text):
    assert leftover_markup(text) is None
    assert not has_markup(text)


@pytest.mark.parametrize(("text", "evidence"), LEFTOVER.values(), ids=LEFTOVER.keys())
def test_leftover_tags_are_markup_and_the_finding_says_which_and_why(text, evidence):
    found = leftover_markup(text)
    assert found is not None and found.startswith(evidence) and ": " in found
    assert has_markup(text)


def test_the_cleaned_suite_passes_prose_about_html_and_holds_back_leftover_tags():
    from datetime import UTC, datetime

    from tasks.frames import articles_frame
    from tasks.records import Article
    from tasks.settings import PROJECT_ROOT
    from tasks.validate import Validator

    def article(key: str, text: str) -> Article:
        url = f"https://news.example/{key.replace(' ', '-')}"
        return Article(source="desk", url=url, canonical_url=url, title=key.capitalize(), language="en",
                       text=f"{STORY}\n\n{text}\n\n{STORY}", published_at=datetime.now(UTC))

    prose = [article(key, text) for key, text in PROSE.items()]
    leftover = [article(key, text) for key, (text, _) in LEFTOVER.items()]
    verdict = Validator(PROJECT_ROOT / "expectations").validate("clean", {"records": articles_frame(prose + leftover)})
    assert sorted(verdict.failed_rows) == list(range(len(prose), len(prose) + len(leftover)))
    for row, (_, evidence) in enumerate(LEFTOVER.values(), start=len(prose)):
        (reason,) = verdict.failed_rows[row]
        assert "has_markup" in reason and evidence in reason  # what was found, e.g. has_markup='</p><p>: ...'


def test_a_page_about_html_keeps_its_quoted_tags_as_text_and_is_not_markup():
    import html

    from tasks.clean import clean_document
    from tasks.records import Article, Document
    from tasks.settings import Settings

    paragraphs = [STORY, PROSE["article about HTML"], PROSE["maths"], PROSE["a quoted <br> in prose"],
                  "The paper's web desk says the course for reporters starts in March and costs nothing."]
    page = ("<html><head><title>Writing for the web</title></head><body><article><h1>Writing for the web</h1>"
            + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs) + "</article></body></html>")
    article = clean_document(Document("desk", "https://news.example/html", html=page),
                             Settings(clean_timeout_seconds=0))
    assert isinstance(article, Article)
    assert "between <p> and </p>" in article.text and "If a < b and b < c" in article.text
    assert not has_markup(article.text)
