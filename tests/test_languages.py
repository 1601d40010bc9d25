"""Articles in every language and script: cleaned whole, counted, detected, passed by the `cleaned` suite;
a language filter only when asked for (NEWSFLOW_ALLOWED_LANGUAGES)."""

from __future__ import annotations

import html

import pytest
from language_samples import LANGUAGES, RIGHT_TO_LEFT, SAMPLES, UNSPACED, sample, sample_page, sample_text
from warehouse_sql import query

from flows.cli import EXIT_OK, main
from tasks.clean import LANGUAGE_FILTER, clean_document, detect_language
from tasks.formatchars import restore_format_chars, spelled_words
from tasks.records import Article, Document, Rejection
from tasks.settings import PROJECT_ROOT, Settings, get_settings
from tasks.textnorm import normalize_text
from tasks.words import count_words

IN_PROCESS = Settings(clean_timeout_seconds=0)


def as_html(code: str) -> Document:
    return Document("desk", f"https://news.example/{code}/story", html=sample_page(code))


def as_text(code: str) -> Document:
    return Document("desk", f"file:///inbox/{code}.txt", text=sample_text(code), content_type="text/plain")


def test_ten_languages_are_shipped():
    assert set(LANGUAGES) >= {"zh", "ja", "ko", "th", "ar", "he", "ru", "id", "el", "hi"}


@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.parametrize("make", [as_html, as_text], ids=["html", "text"])
def test_an_article_in_any_language_comes_out_whole(code, make):
    title, paragraphs = sample(code)
    article = clean_document(make(code), IN_PROCESS)
    assert isinstance(article, Article), article.reasons
    assert article.title == " ".join(title.split())  # the Japanese title's ideographic space is whitespace
    # Every paragraph, exactly as written: right-to-left text, full-width punctuation, combining marks.
    assert article.text == "\n\n".join(paragraphs)
    assert article.language == code
    # Six paragraphs of news are well over a hundred words in any script (a Chinese article was "9 words").
    assert article.word_count >= 150


@pytest.mark.parametrize("code", UNSPACED)
def test_unspaced_scripts_are_counted_in_words_not_spaces_or_characters(code):
    _, paragraphs = sample(code)
    text = "\n\n".join(paragraphs)
    letters = sum(c.isalnum() for c in text)
    spaced = len(text.split())
    words = count_words(text)
    # A word of these languages is one to a few characters long: fewer words than characters, and many
    # more than the space-separated runs.
    assert letters / 5 < words < letters
    assert words > 5 * spaced


def test_spaced_scripts_keep_their_space_separated_count():
    for code in set(LANGUAGES) - set(UNSPACED):
        _, paragraphs = sample(code)
        text = "\n\n".join(paragraphs)
        assert count_words(text) == len(text.split()), code


def test_known_segmentations():
    assert count_words("国务院新闻办公室今天上午举行新闻发布会。") in range(6, 15)  # 19 characters
    assert count_words("東京都は今日、新しい防災計画を発表しました。") in range(7, 18)
    assert count_words("กรุงเทพมหานครประกาศแผนรับมือน้ำท่วม") in range(3, 10)  # one space-separated run
    assert count_words("서울시는 오늘 새로운 교통 정책을 발표했다.") == 6  # Korean separates words with spaces
    assert count_words("Tokyo の 2024 年") == 4
    assert count_words("東京。、！「」") == 1  # punctuation is no word


@pytest.mark.parametrize("code", LANGUAGES)
def test_language_is_detected_from_the_text_whatever_the_script(code):
    _, paragraphs = sample(code)
    assert detect_language(paragraphs[0]) == code
    assert detect_language(" ".join(paragraphs)) == code


def marked_paragraphs(code: str) -> list[str]:
    """The sample's paragraphs with bidi controls and joiners: an RLM after a number, an isolated
    left-to-right name (LRI ... PDI), an embedding (RLE ... PDF), a Persian word spelled with a ZWNJ."""
    _, paragraphs = sample(code)
    return [paragraphs[0] + " 2026\u200f", f"\u2066Harbour Gazette\u2069 {paragraphs[1]}",
            f"\u202b{paragraphs[2]}\u202c", f"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 {paragraphs[3]}",
            *paragraphs[4:]]


@pytest.mark.parametrize("code", RIGHT_TO_LEFT)
@pytest.mark.parametrize("form", ["text", "html", "html-references"])
def test_right_to_left_text_keeps_its_bidi_marks_and_joiners_through_the_clean_stage(code, form):
    title, _ = sample(code)
    marked = marked_paragraphs(code)
    if form == "text":
        document = Document("desk", f"file:///inbox/{code}.txt", content_type="text/plain",
                            text=title + "\n\n" + "\n\n".join(marked))
    else:
        page = (f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
                + "".join(f"<p>{html.escape(p)}</p>" for p in marked) + "</article></body></html>")
        if form == "html-references":  # as character references: &rlm; &zwnj; &#x2066; ...
            page = "".join(f"&#x{ord(c):x};" if 0x200c <= ord(c) <= 0x2069 else c for c in page)
        document = Document("desk", f"https://news.example/{code}/marked", html=page)
    article = clean_document(document, IN_PROCESS)
    assert isinstance(article, Article)
    assert article.text == "\n\n".join(marked)


def test_normalisation_changes_right_to_left_text_only_in_its_whitespace():
    for code in RIGHT_TO_LEFT:
        marked = marked_paragraphs(code)[0]
        messy = "  " + marked.replace(" ", "   ", 3) + "\u200b \n"
        assert normalize_text(messy) == marked


def test_words_spelled_with_format_characters_are_restored_only_when_unambiguous():
    page = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 x", "2026\u200f", "2026 again", "a\u200db a\u200cb"]
    spelled = spelled_words(page)
    assert spelled == {"\u0645\u06cc\u062e\u0648\u0627\u0647\u0645": page[0].split()[0]}
    # "2026" is also written bare, "ab" with two different controls: both stay as extracted.
    assert restore_format_chars("\u0645\u06cc\u062e\u0648\u0627\u0647\u0645 2026 ab", spelled) == \
        f"{page[0].split()[0]} 2026 ab"


def test_joiners_survive_normalisation():
    persian = "من می\u200cخواهم کتاب\u200cها را بخوانم."  # ZWNJ inside words
    devanagari = "क्\u200dष और क्\u200cष"  # ZWJ / ZWNJ choose the conjunct's shape
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji joined by ZWJ
    for text in (persian, devanagari, family):
        assert normalize_text(text) == text


@pytest.fixture(scope="module")
def validator():
    from tasks.validate import Validator

    return Validator(PROJECT_ROOT / "expectations")


def test_every_language_passes_the_default_cleaned_suite(validator):
    from tasks.frames import articles_frame, sources_frame

    articles = [clean_document(as_html(code), IN_PROCESS) for code in LANGUAGES]
    assert all(isinstance(a, Article) for a in articles)
    verdict = validator.validate("clean", {"records": articles_frame(articles),
                                           "sources": sources_frame([a.source for a in articles], [],
                                                                    "no_text_share")})
    assert verdict.success, (verdict.failed_rows, verdict.failed_sources, verdict.batch_failures)


def test_the_language_filter_is_opt_in_and_says_why(monkeypatch):
    monkeypatch.setenv("NEWSFLOW_ALLOWED_LANGUAGES", "ru, ID")
    filtered = Settings(clean_timeout_seconds=0)
    assert filtered.allowed_languages == ["ru", "id"]
    assert Settings(allowed_languages='["ja"]').allowed_languages == ["ja"]

    for code in LANGUAGES:
        result = clean_document(as_html(code), filtered)
        if code in ("ru", "id"):
            assert isinstance(result, Article) and result.language == code
            continue
        assert isinstance(result, Rejection), code
        assert result.stage == "clean" and result.payload["filtered_by"] == LANGUAGE_FILTER
        (reason,) = result.reasons
        assert f"'{code}' is not one of the allowed languages ru, id" in reason
        assert "NEWSFLOW_ALLOWED_LANGUAGES" in reason


@pytest.mark.usefixtures("prefect_server")
def test_every_language_is_loaded_and_a_filter_quarantines_without_failing_the_source(tmp_path, monkeypatch):
    files = str(SAMPLES / "*.txt")
    everything = f"sqlite:///{tmp_path / 'all.db'}"
    assert main(["ingest", "--files", files, "--warehouse", everything]) == EXIT_OK
    loaded = dict(query(everything, "SELECT language, word_count FROM articles"))
    assert sorted(loaded) == LANGUAGES
    assert all(words >= 150 for words in loaded.values()), loaded
    assert query(everything, "SELECT count(*) FROM quarantine") == [(0,)]

    monkeypatch.setenv("NEWSFLOW_ALLOWED_LANGUAGES", "ru,id")
    get_settings.cache_clear()
    try:
        filtered = f"sqlite:///{tmp_path / 'filtered.db'}"
        # 8 of 10 pages held back by choice: the source has not lost its text (no_text_share), the run succeeds.
        assert main(["ingest", "--files", files, "--warehouse", filtered]) == EXIT_OK
    finally:
        get_settings.cache_clear()
    assert sorted(language for (language,) in query(filtered, "SELECT language FROM articles")) == ["id", "ru"]
    held = query(filtered, "SELECT stage, reasons FROM quarantine")
    assert len(held) == 8 and {stage for stage, _ in held} == {"clean"}
    assert all("language filter" in reasons and "NEWSFLOW_ALLOWED_LANGUAGES" in reasons for _, reasons in held)

    # The filter lifted, the held-back articles are released.
    monkeypatch.delenv("NEWSFLOW_ALLOWED_LANGUAGES")
    get_settings.cache_clear()
    assert main(["reprocess", "--quarantined", "--stage", "clean", "--warehouse", filtered]) == EXIT_OK
    assert sorted(language for (language,) in query(filtered, "SELECT language FROM articles")) == LANGUAGES
