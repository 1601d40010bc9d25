"""Clean stage: extraction without boilerplate, every metadata field, text normalisation, and bad input."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import ftfy
import pytest

import tasks.clean as clean_module
from tasks.clean import (
    clean_document,
    clean_safely,
    dedupe_paragraphs,
    split_title,
)
from tasks.cleaners import CleanerPool, TimeLimitedCleaner, clean_documents
from tasks.extract import DEFAULT_RULES, extract_text, is_own_link, parse_html, recover_dropped_blocks, wrap_loose_text
from tasks.metadata import clean_authors, extract_metadata, parse_datetime
from tasks.records import Article, Document, Rejection
from tasks.settings import PROJECT_ROOT, get_settings
from tasks.textnorm import repair_unicode

IN_PROCESS = get_settings().model_copy(update={"clean_timeout_seconds": 0})

STORY = [
    "The harbour board approved a new plan for the north quay on Tuesday evening after a long debate "
    "that ran well past midnight and drew more than a hundred residents to the town hall.",
    "Under the plan, the quay will be rebuilt in stone over three years, with work starting next spring "
    "once the fishing season ends and the last of the winter storms have passed.",
    "Board chair Maria Lopes said the old timber structure had reached the end of its life. “We patched "
    "it for twenty years. There is nothing left to patch,” she told the meeting.",
    "Fishermen asked for a temporary landing stage while the work goes on, and the board agreed to "
    "look at two sites on the south side of the harbour before the end of the month.",
]


def page(body: str, head: str = "", lang: str = "en") -> str:
    return f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"


def article_html(extra_inside: str = "", extra_outside: str = "", paragraphs: list[str] = STORY) -> str:
    ps = "".join(f"<p>{p}</p>" for p in paragraphs)
    return page(f"<header><nav><a href='/'>Home</a> <a href='/news'>News</a></nav></header>"
                f"<article><h1>Harbour board backs new quay</h1>{ps}{extra_inside}</article>{extra_outside}"
                f"<footer><p>© 2026 The Quay Herald. All rights reserved.</p></footer>",
                head="<title>Harbour board backs new quay | The Quay Herald</title>")


def doc(html: str | bytes | None = None, text: str | None = None, url: str = "https://news.example/a",
        **hints) -> Document:
    return Document(source="test", url=url, html=html, text=text,
                    content_type="text/html" if html is not None else "text/plain", hints=hints)


# --- extraction: article kept, boilerplate of every kind dropped ------------------------------


def test_extracts_the_story_paragraphs_without_title_nav_or_footer():
    text = extract_text(article_html(), "https://news.example/a")
    assert text.split("\n\n") == STORY


@pytest.mark.parametrize("boilerplate, marker", [
    ("<div class='cookie-banner'><p>We use cookies to improve your experience on our site. "
     "By continuing you agree to our cookie policy.</p><button>Accept all</button></div>", "cookies"),
    ("<div class='newsletter-signup'><h3>Morning briefing</h3><p>Sign up for our morning briefing and get "
     "the top stories in your inbox every day before seven.</p></div>", "briefing"),
    ("<div class='share-tools'>Share this story: <a href='#fb'>Facebook</a> <a href='#x'>X</a> "
     "<a href='#mail'>Email</a></div>", "Facebook"),
    ("<section class='related-stories'><h3>Related stories</h3><ul><li><a href='/b'>Council votes on the new "
     "budget after a late night session</a></li><li><a href='/c'>Ferry timetable changes again for "
     "the winter months</a></li></ul></section>", "Ferry timetable"),
    ("<figure><img src='/q.jpg'><figcaption>The old timber quay at low tide, photographed from the "
     "lighthouse on Monday morning. Photo: Herald staff</figcaption></figure>", "lighthouse"),
    ("<div class='ad-slot'><span>Advertisement</span></div><p>ADVERTISEMENT</p>", "dvertisement"),
    ("<p>Read more:</p><p>Comments are closed.</p>", "Read more"),
    ("<p>© 2026 The Quay Herald. All rights reserved.</p>", "rights reserved"),
    ("<p>[button link='/reviews/' type='big'] Send us your review[/button]</p>", "review"),
    ("<p>Tags</p><p>harbour, quay, council, fishing, north quay rebuild</p>", "council, fishing"),
])
def test_each_kind_of_boilerplate_is_dropped(boilerplate, marker):
    html = article_html(extra_inside=boilerplate)
    text = extract_text(html)
    assert marker.casefold() not in text.casefold()
    assert text.split("\n\n") == STORY


def test_trailing_comment_section_is_cut():
    comments = ("<h3>3 thoughts on “Harbour board backs new quay”</h3>"
                + "".join(f"<div class='c'><p>Reader {i} says: I have walked on that quay every day for forty "
                          f"years and I will miss the old timber boards very much indeed.</p></div>"
                          for i in range(3)))
    text = extract_text(article_html(extra_inside=comments))
    assert "Reader" not in text and "thoughts on" not in text
    assert text.split("\n\n") == STORY


def test_headings_and_lists_of_the_article_are_kept():
    inside = ("<h2>What happens next</h2><p>The board will publish the full timetable and the list of "
              "contractors invited to tender at its next public meeting in the spring.</p>"
              "<ul><li>Stone quay rebuilt over three years</li><li>Temporary landing stage on the "
              "south side</li></ul>")
    text = extract_text(article_html(extra_inside=inside))
    assert "What happens next" in text
    assert "Stone quay rebuilt over three years" in text
    assert "Temporary landing stage on the south side" in text


def test_a_container_named_like_boilerplate_but_holding_the_article_is_kept():
    ps = "".join(f"<p>{p}</p>" for p in STORY)
    html = page(f"<div class='story-body share-enabled'>{ps}</div>")
    assert extract_text(html).split("\n\n") == STORY


def test_headline_is_not_body_but_the_standfirst_is():
    # Both dev corpora label a standfirst (dek) as part of the article: dropping it cost three sites there.
    html = page(f"<main><h1>Harbour board backs new quay</h1><h2>The old timber quay will be rebuilt in "
                f"stone.</h2>{''.join(f'<p>{p}</p>' for p in STORY)}</main>",
                head="<meta name='description' content='The old timber quay will be rebuilt in stone.'>"
                     "<meta property='og:title' content='Harbour board backs new quay'>")
    assert extract_text(html).split("\n\n") == ["The old timber quay will be rebuilt in stone.", *STORY]


def test_bundled_exact_copy_in_another_template_gives_identical_text():
    site = PROJECT_ROOT / "samples" / "site"
    original = extract_text((site / "articles" / "harbour-storm-damage.html").read_text(encoding="utf-8"))
    copy = extract_text((site / "world" / "harbour-storm-wire.html").read_text(encoding="utf-8"))
    assert original == copy
    assert original.startswith("Three fishing boats sank at their moorings")
    assert "Sign up" not in original and "Waves break" not in original


# --- metadata --------------------------------------------------------------------------------

LD = {
    "@context": "https://schema.org", "@type": "NewsArticle",
    "headline": "Harbour board backs new quay",
    "datePublished": "2024-03-05T09:30:00+05:30", "dateModified": "2024-03-06T10:00:00+05:30",
    "author": [{"@type": "Person", "name": "Maria Lopes"}, {"@type": "Person", "name": "By Tom Reed"},
               {"@type": "Organization", "name": "The Quay Herald"}],
    "publisher": {"@type": "Organization", "name": "The Quay Herald"},
    "description": "The old quay will be rebuilt in stone.",
    "image": {"@type": "ImageObject", "url": "https://cdn.example/quay.jpg"},
    "keywords": "harbour, quay ,Harbour",
}


def ld_page(ld: dict, head: str = "", body: str = "") -> str:
    return page(body or "<p>x</p>", head=f"<script type='application/ld+json'>{json.dumps(ld)}</script>{head}")


def test_json_ld_news_article_gives_every_field():
    meta = extract_metadata(ld_page({"@graph": [{"@type": "WebPage"}, LD]}), "https://news.example/a")
    assert meta["title"] == "Harbour board backs new quay"
    assert meta["authors"] == ["Maria Lopes", "Tom Reed"]
    assert meta["published_at"] == datetime(2024, 3, 5, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert meta["published_at"].utcoffset() == timedelta(hours=5, minutes=30)  # time zone kept
    assert meta["modified_at"] == datetime(2024, 3, 6, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert meta["description"] == "The old quay will be rebuilt in stone."
    assert meta["image"] == "https://cdn.example/quay.jpg"
    assert meta["site_name"] == "The Quay Herald"
    assert meta["tags"] == ["harbour", "quay"]


def test_opengraph_and_article_meta_when_there_is_no_json_ld():
    head = ("<title>Quay plan approved - The Quay Herald</title>"
            "<meta property='og:title' content='Quay plan approved'>"
            "<meta property='og:site_name' content='The Quay Herald'>"
            "<meta property='og:description' content='Rebuilt in stone.'>"
            "<meta property='og:image' content='/img/quay.jpg'>"
            "<meta property='article:published_time' content='2023-07-01T08:00:00-04:00'>"
            "<meta property='article:modified_time' content='2023-07-01T12:00:00-04:00'>"
            "<meta property='article:tag' content='Harbour'><meta property='article:tag' content='Council'>"
            "<meta name='author' content='The Quay Herald'><link rel='canonical' href='/news/quay'>")
    meta = extract_metadata(page("<p>x</p>", head=head), "https://news.example/a?utm=1")
    assert meta["title"] == "Quay plan approved"
    assert meta["site_name"] == "The Quay Herald"
    assert meta["description"] == "Rebuilt in stone."
    assert meta["image"] == "https://news.example/img/quay.jpg"
    assert meta["published_at"].isoformat() == "2023-07-01T08:00:00-04:00"
    assert meta["modified_at"].isoformat() == "2023-07-01T12:00:00-04:00"
    assert meta["tags"] == ["Harbour", "Council"]
    assert meta["authors"] == []  # the site's name is not an author
    assert meta["canonical_url"] == "https://news.example/news/quay"


def test_title_from_title_tag_loses_the_site_suffix_and_h1_is_a_fallback():
    head = "<title>Quay plan approved after long debate | The Quay Herald</title>"
    assert extract_metadata(page("<p>x</p>", head=head))["title"] == "Quay plan approved after long debate"
    assert extract_metadata(page("<h1>Quay plan approved</h1>", head=head))["title"] == "Quay plan approved"


def test_visible_byline_and_time_element():
    body = ("<article><h1>Quay</h1><div class='byline'>By Ana Silva and Tom Reed</div>"
            "<time datetime='2022-02-03T07:15:00+01:00'>3 Feb</time><p>x</p></article>")
    meta = extract_metadata(page(body))
    assert meta["authors"] == ["Ana Silva", "Tom Reed"]
    assert meta["published_at"].isoformat() == "2022-02-03T07:15:00+01:00"


def test_date_from_url_pattern():
    meta = extract_metadata(page("<p>x</p>"), "https://news.example/2021/06/14/quay-plan/")
    assert meta["published_at"] == datetime(2021, 6, 14, tzinfo=UTC)


def test_htmldate_finds_a_date_only_shown_in_the_page():
    body = "<article><h1>Quay</h1><span class='date'>12.03.2021</span><p>x</p></article>"
    assert extract_metadata(page(body))["published_at"] == datetime(2021, 3, 12, tzinfo=UTC)


def test_dates_in_the_future_or_before_1990_are_dropped():
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    meta = extract_metadata(ld_page({**LD, "datePublished": future, "dateModified": "1985-01-01T00:00:00Z"}))
    assert meta["published_at"] is None or meta["published_at"] <= datetime.now(UTC)
    assert meta["modified_at"] is None
    assert parse_datetime("1989-12-31T23:00:00Z") is None
    assert parse_datetime(future) is None
    assert parse_datetime("Tue, 05 Mar 2024 09:30:00 +0100").utcoffset() == timedelta(hours=1)
    assert parse_datetime("not a date") is None


def test_modified_before_published_is_dropped():
    meta = extract_metadata(ld_page({**LD, "dateModified": "2024-03-01T00:00:00Z"}))
    assert meta["modified_at"] is None


@pytest.mark.parametrize("raw, expected", [
    (["By Jane Doe and John Smith"], ["Jane Doe", "John Smith"]),
    (["Jane Doe, John Smith & Ana Silva"], ["Jane Doe", "John Smith", "Ana Silva"]),
    (["jane@example.org", "https://example.org/jane", "Jane Doe"], ["Jane Doe"]),
    (["REUTERS", "Staff Reporter", "Jane Doe", "jane doe"], ["Jane Doe"]),
    (["The Quay Herald"], []),
])
def test_authors_are_clean_person_names(raw, expected):
    assert clean_authors(raw, ["The Quay Herald"]) == expected


def test_language_is_detected_from_the_text_with_the_declared_one_as_fallback():
    french = ["Le conseil portuaire a approuvé mardi soir un nouveau plan pour le quai nord, après un long "
              "débat qui a duré bien après minuit devant plus de cent habitants.",
              "Selon le plan, le quai sera reconstruit en pierre sur trois ans, et les travaux commenceront "
              "au printemps prochain, une fois la saison de pêche terminée."] * 2
    article = clean_document(doc(article_html(paragraphs=french + [p for p in STORY[:0]])), IN_PROCESS)
    assert isinstance(article, Article) and article.language == "fr"
    english = clean_document(doc(article_html()), IN_PROCESS)
    assert english.language == "en"


def test_clean_document_fills_the_article_record():
    html = article_html().replace("</head>", f"<script type='application/ld+json'>{json.dumps(LD)}</script></head>")
    article = clean_document(doc(html), IN_PROCESS)
    assert isinstance(article, Article)
    assert article.title == "Harbour board backs new quay"
    assert article.authors == ["Maria Lopes", "Tom Reed"]
    assert article.modified_at and article.published_at and article.modified_at > article.published_at
    assert article.image == "https://cdn.example/quay.jpg"
    assert article.site_name == "The Quay Herald"
    assert article.tags == ["harbour", "quay"]
    assert article.text.split("\n\n") == STORY


# --- plain text and JSON normalisation -------------------------------------------------------

SEED_LIKE = "\n".join([
    "The harbour board has approved a stone quay to replace the timber one.",  # summary line
    "Harbour board backs new quay",
    "",
    "Harbour board backs new quay",
    *STORY[:3],
    "ADVERTISEMENT",
    STORY[1], STORY[2],  # repeated verbatim, as scraped seeds do
    "ADVERTISEMENT",
    "Share this article",
    STORY[3],
])


def test_seed_like_text_loses_repeated_title_paragraphs_and_boilerplate():
    article = clean_document(doc(text=SEED_LIKE, url="file:///seed.txt"), IN_PROCESS)
    assert isinstance(article, Article)
    assert article.title == "Harbour board backs new quay"
    assert article.description.startswith("The harbour board has approved")
    assert article.text.split("\n\n") == STORY


def test_json_record_goes_through_the_same_normalisation():
    text = "\n\n".join(["Harbour board backs new quay", STORY[0], STORY[1], "Advertisement", STORY[1],
                        "Read more: Ferry timetable changes", STORY[2], STORY[3]])
    article = clean_document(doc(text=text, title="Harbour board backs new quay", authors="By Ana Silva"),
                             IN_PROCESS)
    assert article.text.split("\n\n") == STORY
    assert article.authors == ["Ana Silva"]


def test_unicode_is_repaired_and_normalised():
    broken = ("Caf\u00c3\u00a9 owners on the quay welcomed the decision\u200b, saying the new stone quay "
              "would bring more visitors.   The cafe\u0301 has   served fishermen since 1950.")
    article = clean_document(doc(text="Quay cafe\n\n" + "\n\n".join([broken, *STORY])), IN_PROCESS)
    first = article.text.split("\n\n")[0]
    assert first.startswith("Café owners")  # mojibake repaired
    assert "\u200b" not in first and "  " not in first  # invisibles and runs of spaces gone
    assert "café has" in first and "e\u0301" not in first  # NFC


@pytest.mark.parametrize("text", [
    "Plain ASCII line one.\nCaf\u00c3\u00a9 owners on the quay\nAnother plain line",
    "Fish &amp; chips on the quay\n<b>bold</b> line\nSalt &amp; vinegar",  # entities until the first '<'
    "Windows\r\nline breaks\rand a bell\x07 and an escape \x1b[31mred\x1b[0m",
    "ﬂat ＷＩＤＥ e\u0301 \u2028 separator\x85next \ufeffBOM",
])
def test_unicode_repair_skips_only_what_ftfy_would_leave_unchanged(text):
    assert repair_unicode(text) == ftfy.fix_text(text, normalization="NFC", uncurl_quotes=False,
                                                 fix_character_width=False)


def test_repeated_paragraphs_are_kept_once_and_table_cells_everywhere():
    # A meal plan or a results table repeats its cells, long or short: each row keeps them.
    cell = "Drink 20-30 minutes before your workout"
    paragraphs = ["Meal 1", cell, STORY[0], "Meal 2", cell, STORY[0], STORY[1]]
    assert dedupe_paragraphs(paragraphs) == ["Meal 1", cell, STORY[0], "Meal 2", cell, STORY[1]]


@pytest.mark.parametrize("line", ["Advertisement", "Read more: Ferry timetable changes for the winter",
                                  "Sign up for our morning briefing", "Share this story", "Comments are closed."])
def test_boilerplate_lines_of_a_plain_text_are_dropped(line):
    article = clean_document(doc(text="\n\n".join(["Quay plan approved", STORY[0], line, *STORY[1:]])),
                             IN_PROCESS)
    assert article.text.split("\n\n") == STORY


def test_split_title_finds_summary_and_headline():
    title, summary, body = split_title("A one sentence summary of the story.\nThe headline\n\nBody text here.")
    assert (title, summary, body.strip()) == ("The headline", "A one sentence summary of the story.",
                                              "Body text here.")


# --- pages without an article ----------------------------------------------------------------


def reasons(result: Article | Rejection) -> str:
    assert isinstance(result, Rejection), f"expected a rejection, got an article: {result.text[:80]!r}"
    assert result.stage == "clean" and result.reasons
    return " ".join(result.reasons)


def test_safety_net_takes_plain_trafilatura_when_our_rules_lose_the_article():
    # A template that wraps every paragraph in a block named like boilerplate: our pruning drops each one
    # (none holds 30 % of the text), plain trafilatura keeps them, and the net takes its text.
    html = page("<h1>Harbour board backs new quay</h1>"
                + "".join(f"<div class='promo'><p>{p}</p></div>" for p in STORY) + "<p>Filed under harbour news.</p>")
    without_net = extract_text(html, rules=dataclasses.replace(DEFAULT_RULES, net_ratio=0))
    assert "north quay" not in without_net
    assert extract_text(html).split("\n\n")[:4] == STORY
    assert isinstance(clean_document(doc(html), IN_PROCESS), Article)


def test_safety_net_leaves_a_link_list_to_the_index_page_check():
    links = "".join(f"<li><a href='/news/{i}'>Story number {i} of the day</a></li>" for i in range(40))
    html = page(f"<h1>News</h1><ul>{links}</ul>")
    assert len(extract_text(html, rules=dataclasses.replace(DEFAULT_RULES, net_ratio=0))) < 100
    assert len(extract_text(html)) < 100  # plain trafilatura returns the links: not a body


def test_index_page_is_flagged():
    links = "".join(f"<li><a href='/news/{i}'>Story number {i} of the day</a></li>" for i in range(40))
    assert "index or list page" in reasons(clean_document(doc(page(f"<h1>News</h1><ul>{links}</ul>")),
                                                          IN_PROCESS))


def test_paywall_stub_is_flagged():
    html = page("<article><h1>Inside the missing millions</h1><p>A Herald investigation.</p>"
                "<div class='paywall'><p>Subscribe to continue reading. Already a subscriber? Log in.</p></div>"
                "</article>")
    assert "paywall" in reasons(clean_document(doc(html), IN_PROCESS))


def test_not_found_page_served_with_200_is_flagged():
    html = page("<h1>Page not found</h1><p>Sorry, the page you were looking for does not exist.</p>"
                "<p><a href='/'>Back to the home page</a></p>", head="<title>404 Not Found</title>")
    assert "error page" in reasons(clean_document(doc(html), IN_PROCESS))


def test_near_empty_page_is_flagged():
    html = page("<article><h1>Quay plan approved</h1><p>More to follow.</p></article>")
    assert "near-empty" in reasons(clean_document(doc(html), IN_PROCESS))


# --- bad input -------------------------------------------------------------------------------


def test_malformed_html_still_gives_the_article():
    ps = "".join(f"<p>{p}" for p in STORY)  # no closing tags anywhere
    html = f"<html><head><title>Quay</title><body><div><article><h1>Harbour board backs new quay<b>{ps}<div><span>"
    article = clean_document(doc(html), IN_PROCESS)
    assert isinstance(article, Article)
    assert article.text.split("\n\n") == STORY


def test_deeply_nested_page_is_rejected_with_a_reason():
    html = "<html><body>" + "<div>" * 100_000 + f"<p>{STORY[0]}</p>" + "</div>" * 100_000 + "</body></html>"
    assert "nested" in reasons(clean_safely(doc(html), IN_PROCESS))


def test_five_megabyte_page_is_rejected_with_a_reason():
    html = article_html(paragraphs=STORY * 7000)
    assert len(html) > 5_000_000
    assert "too large" in reasons(clean_safely(doc(html), IN_PROCESS))


def test_page_made_big_by_scripts_is_still_cleaned():
    script = "<script>var data = '" + "x" * 3_000_000 + "';</script>"
    article = clean_safely(doc(article_html(extra_outside=script)), IN_PROCESS)
    assert isinstance(article, Article) and article.text.split("\n\n") == STORY


def test_page_without_body():
    assert "no <body>" in reasons(clean_safely(doc("<html><head><title>Quay</title></head></html>"), IN_PROCESS))


def test_script_only_page():
    html = "<html><head><script>window.location = '/app';</script></head><body><script>boot()</script></body></html>"
    assert "script-only" in reasons(clean_safely(doc(html), IN_PROCESS))


def test_non_utf8_bytes_are_decoded():
    accented = [p.replace("board", "comité") for p in STORY]
    raw = article_html(paragraphs=accented).replace("charset='utf-8'", "charset='windows-1252'")
    article = clean_safely(doc(raw.encode("cp1252")), IN_PROCESS)
    assert isinstance(article, Article)
    assert "comité" in article.text and "\ufffd" not in article.text


@pytest.mark.parametrize("content, kind", [
    ("%PDF-1.7\n%\u00e2\u00e3\u00cf\u00d3\n1 0 obj << /Type /Catalog >> endobj", "PDF"),
    ("\ufffdPNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00", "PNG"),
    ("\ufffd\ufffd\ufffd\ufffd\x00\x10JFIF\x00\x01\x01\x00\x00H", "JPEG"),
    ("GIF89a\x01\x00\x01\x00\x80\x00\x00", "GIF"),
    ("".join(chr(c % 32) for c in range(3000)), "binary"),
])
def test_files_posing_as_html_are_rejected(content, kind):
    assert kind in reasons(clean_safely(doc(content), IN_PROCESS))


@pytest.mark.parametrize("content, kind", [
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj", "PDF"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x03\x00\x08\x06", "PNG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00H\x00H\x00\x00\xff\xdb", "JPEG"),
])
def test_files_posing_as_html_are_rejected_when_they_arrive_as_bytes(content, kind):
    assert kind in reasons(clean_safely(doc(content), IN_PROCESS))


def test_xhtml_with_an_encoding_declaration_is_parsed():
    html = "<?xml version='1.0' encoding='utf-8'?>\n" + article_html().replace("<!DOCTYPE html>", "")
    assert extract_text(html).split("\n\n") == STORY


def test_a_batch_with_every_bad_input_keeps_going():
    documents = [doc(article_html(), url="https://news.example/good-1"),
                 doc("%PDF-1.4 binary", url="https://news.example/pdf"),
                 doc("<html><body>" + "<div>" * 50_000, url="https://news.example/deep"),
                 doc("<script>x()</script>", url="https://news.example/script"),
                 doc(b"\xff\xfe\x00garbage\x00\x01\x02" * 200, url="https://news.example/bytes"),
                 doc(article_html(paragraphs=STORY[::-1]), url="https://news.example/good-2")]
    outcome = clean_documents(documents, IN_PROCESS)
    assert [a.url for a in outcome.articles] == ["https://news.example/good-1", "https://news.example/good-2"]
    assert len(outcome.rejections) == 4 and all(r.reasons for r in outcome.rejections)
    assert outcome.stats.counts == {"in": 6, "out": 2, "quarantined": 4}


# --- time limit ------------------------------------------------------------------------------


def slow_on_request(document: Document, settings) -> Article | Rejection:
    """Stands in for a page whose parse never ends (runs in the worker process)."""
    if "slow" in document.url:
        time.sleep(60)
    return clean_safely(document, settings)


def test_time_limit_ends_a_runaway_document_from_a_worker_thread():
    documents = [doc(article_html(), url="https://news.example/slow"),
                 doc(article_html(), url="https://news.example/fine")]

    def run() -> list[Article | Rejection]:
        assert threading.current_thread() is not threading.main_thread()
        with TimeLimitedCleaner(3, IN_PROCESS, work=slow_on_request) as cleaner:
            return [cleaner.clean(d) for d in documents]

    with ThreadPoolExecutor(1) as pool:
        slow, fine = pool.submit(run).result(timeout=120)
    assert "longer than the 3 s limit" in reasons(slow)
    assert isinstance(fine, Article) and fine.text.split("\n\n") == STORY


def slow_first_document_of_a_worker(document: Document, settings) -> Article | Rejection:
    """Stands in for a worker whose imports are paid by its first document (runs in the worker process)."""
    if not getattr(slow_first_document_of_a_worker, "warm", False):
        time.sleep(5)
    slow_first_document_of_a_worker.warm = True
    return clean_safely(document, settings)


def warm_up_the_slow_worker() -> None:
    # The real warm-up first: it loads the language model, which a first document would pay for (2 s and
    # more on a loaded machine).
    clean_module.warm_up()
    time.sleep(5)  # longer than the documents' 3 s limit: must not be charged to one of them
    slow_first_document_of_a_worker.warm = True


def test_a_recycled_worker_is_warmed_up_outside_the_next_documents_time_limit():
    settings = IN_PROCESS.model_copy(update={"clean_worker_max_documents": 2})
    with TimeLimitedCleaner(3, settings, work=slow_first_document_of_a_worker,
                            warm=warm_up_the_slow_worker) as cleaner:
        results, workers = [], []
        for _ in range(3):
            results.append(cleaner.clean(doc(article_html())))
            workers.append(cleaner.worker_pid)
    assert all(isinstance(result, Article) for result in results), [reasons(r) for r in results]
    assert workers[0] == workers[1] != workers[2]  # replaced after two documents, and the third still in time


def test_clean_documents_uses_the_worker_process_by_default():
    settings = get_settings().model_copy(update={"clean_timeout_seconds": 60})
    outcome = clean_documents([doc(article_html()), doc("%PDF-1.4")], settings)
    assert len(outcome.articles) == 1 and "PDF" in outcome.rejections[0].reasons[0]


def test_the_worker_process_is_kept_for_the_next_batch_and_ends_with_the_pool():
    settings = get_settings().model_copy(update={"clean_timeout_seconds": 60})
    with CleanerPool(settings) as pool:
        pool.clean([doc(article_html())])
        [cleaner] = pool.spare
        first_worker = cleaner.worker_pid
        outcome = pool.clean([doc(article_html())])
        assert len(outcome.articles) == 1
        assert first_worker is not None and [c.worker_pid for c in pool.spare] == [first_worker]
    assert pool.spare == [] and cleaner.worker_pid is None  # closed with the pool: its worker ended
    given_back_late = TimeLimitedCleaner(60, settings)
    given_back_late._start()
    pool.give_back(given_back_late)  # (a batch still running when the run ended)
    assert pool.spare == [] and given_back_late.worker_pid is None


def test_cleaning_through_a_pool_imports_no_cleaning_library_in_the_callers_process():
    """The flow's process hands documents to the workers: trafilatura and py3langid load only there."""
    import subprocess
    import sys

    code = ("import sys; from tasks.cleaners import CleanerPool; from tasks.records import Document; "
            "from tasks.settings import get_settings; "
            "s = get_settings().model_copy(update={'clean_timeout_seconds': 60}); "
            "pool = CleanerPool(s); "
            "out = pool.clean([Document('s', 'https://news.example/a', html=sys.argv[1])]); pool.close(); "
            "print(len(out.articles), sorted(m for m in ('trafilatura', 'py3langid', 'tasks.clean') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, article_html()], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "[]"]


def test_workers_started_ahead_are_the_ones_the_batches_borrow(monkeypatch):
    """CleanerPool.prepare starts the workers on threads; a batch arriving mid-warm-up waits for them instead
    of starting more, and a second call starts none."""
    settings = get_settings().model_copy(update={"clean_timeout_seconds": 60})
    started: list[int] = []
    start = TimeLimitedCleaner._start_locked

    def counting_start(self):
        if self._pool is None:
            started.append(1)
        return start(self)

    monkeypatch.setattr(TimeLimitedCleaner, "_start_locked", counting_start)
    with CleanerPool(settings) as pool:
        pool.prepare(2)
        outcome = pool.clean([doc(article_html())])  # at once: the warm-up is under way
        pool.prepare(2)
        assert len(outcome.articles) == 1
        deadline = time.monotonic() + 120
        while not all(c.worker_pid for c in pool.spare) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool.spare) == 2 and all(c.worker_pid for c in pool.spare)
        assert len(started) == 2


def test_a_kept_worker_still_ends_a_runaway_document():
    settings = IN_PROCESS.model_copy(update={"clean_timeout_seconds": 3})
    with CleanerPool(settings) as pool:
        cleaner = pool.borrow(3, settings)
        cleaner.work = slow_on_request
        pool.give_back(cleaner)
        outcome = pool.clean([doc(article_html(), url="https://news.example/slow"),
                              doc(article_html(), url="https://news.example/fine")])
        assert "longer than the 3 s limit" in outcome.rejections[0].reasons[0]
        assert [a.url for a in outcome.articles] == ["https://news.example/fine"]


def test_recovery_puts_back_prose_blocks_dropped_beside_kept_ones_and_never_link_lines():
    question = "Can the quay stay open while it is rebuilt?"
    link_line = "Read our full harbour coverage here"
    lone = "A paragraph far from the story, in a box of its own, long enough to count as prose if it were kept."
    tree = parse_html(page(f"<div><p>{STORY[0]}</p><h2>{question}</h2><p>{STORY[1]}</p>"
                           f"<p><a href='/harbour'>{link_line}</a></p><p>{STORY[2]}</p></div>"
                           f"<div><p>{lone}</p></div>"))
    kept = [STORY[0], STORY[1], STORY[2]]
    # The heading over a kept paragraph comes back in place; the link line between kept paragraphs and the
    # paragraph with no kept neighbour do not.
    assert recover_dropped_blocks(tree, kept) == [STORY[0], question, STORY[1], STORY[2]]
    assert recover_dropped_blocks(tree, []) == []
    # Without the rule the extraction keeps what trafilatura kept: switching it off changes nothing else.
    html = page(f"<article><p>{STORY[0]}</p><p>{STORY[1]}</p></article>")
    assert extract_text(html) == extract_text(html, rules=dataclasses.replace(DEFAULT_RULES, recover=False))


def test_links_that_are_part_of_the_text_are_told_from_links_elsewhere():
    url = "https://blog.example.org/2024/05/harbour-vote/"
    tree = parse_html(page(
        "<p><a id='title' href='/2024/05/harbour-vote'>Harbour vote</a>"
        "<a id='cited' href='https://petition.example/sign'>https://petition.example/sign</a>"
        "<a id='same' href='http://www.blog.example.org/2024/05/harbour-vote/#top'>again</a>"
        "<a id='away' href='/2024/05/other-story/'>Other story</a>"
        "<a id='anchor' href='#comments'>12 comments</a>"
        "<a id='broken' href='http://[::1/x'>a broken address</a></p>"))
    verdicts = {link.get("id"): is_own_link(link, url) for link in tree.iter("a")}
    # A broken address (urljoin raises on it) is a link like any other, not a crash.
    assert verdicts == {"title": True, "cited": True, "same": True, "away": False, "anchor": False, "broken": False}
    # Without the page's address only a cited address is text.
    assert [is_own_link(link, None) for link in tree.iter("a")] == [False, True, False, False, False, False]


def test_recovery_brings_back_a_permalinked_title_and_an_announced_address_not_other_links():
    url = "https://reviews.example.com/reviews/5f1c"
    title = "Changed how we cook on weeknights"
    address = "https://petition.example.org/sign/keep-the-quay"
    announcing = "The harbour board asks everyone who wants the old quay kept open to sign the petition:"
    tree = parse_html(page(
        f"<div><h2><a href='/reviews/5f1c'>{title}</a></h2><p>{STORY[0]}</p><p>{announcing}</p>"
        f"<p><a href='{address}'>{address}</a></p></div>"
        f"<div><h2><a href='/reviews/other'>Another review</a></h2><p>{STORY[1]}</p></div>"))
    kept = [STORY[0], announcing, STORY[1]]
    recovered = recover_dropped_blocks(tree, kept, url)
    assert recovered == [title, STORY[0], announcing, address, STORY[1]]
    # Each mechanism can be switched off, and without the page's address the title is a link away again.
    assert recover_dropped_blocks(parse_html(page(f"<div><p>{announcing}</p><p><a href='{address}'>{address}</a>"
                                                  "</p></div>")), [announcing], url,
                                  dataclasses.replace(DEFAULT_RULES, colon=False)) == [announcing]
    no_own = dataclasses.replace(DEFAULT_RULES, own_links=False)
    assert title not in recover_dropped_blocks(parse_html(page(f"<div><h2><a href='/reviews/5f1c'>{title}</a></h2>"
                                                               f"<p>{STORY[0]}</p></div>")), [STORY[0]], url, no_own)
    assert title not in recover_dropped_blocks(parse_html(page(f"<div><h2><a href='/reviews/5f1c'>{title}</a></h2>"
                                                               f"<p>{STORY[0]}</p></div>")), [STORY[0]], None)


def test_prose_lying_loose_in_a_container_comes_back_beside_kept_paragraphs_and_short_labels_do_not():
    lead = ("The harbour board met on Tuesday night and, after a long debate about the cost of the works, "
            "voted to keep the <a href='/quay'>old quay</a> open while it is rebuilt.")
    label = "Listen:"
    # The lead is written straight into the <div>, beside the blocks (a player, the story's paragraphs).
    tree = parse_html(page(f"<div class='entry'><div class='player'>{label}</div>{lead}"
                           f"<p>{STORY[0]}</p><p>{STORY[1]}</p></div>"))
    wrap_loose_text(tree)
    kept = [STORY[0], STORY[1]]
    recovered = recover_dropped_blocks(tree, kept)
    assert recovered[1:] == kept and recovered[0].startswith("The harbour board met") and "old quay" in recovered[0]
    assert label not in " ".join(recovered)
    # A short loose line is no paragraph: the container keeps it as it was.
    tree = parse_html(page(f"<div>{label}<p>{STORY[0]}</p></div>"))
    wrap_loose_text(tree)
    assert [p.text_content() for p in tree.iter("p")] == [STORY[0]]
