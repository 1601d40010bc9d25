"""Clean stage: raw `Document` -> `Article` (title, main text, authors, dates, image, tags, language).

HTML main text comes from `tasks.extract.extract_text` (the function the extraction benchmark scores),
metadata from `tasks.metadata`. Plain text and JSON records get a title found by shape. Every text then
goes through the same normalisation: Unicode repaired (ftfy, NFC, no invisibles, tidy whitespace), title
repeats removed, repeated paragraphs kept once, boilerplate lines dropped.

Nothing is lost silently: bad input (binary files posing as HTML, script-only pages, oversized markup),
pages without an article (index pages, paywall stubs, error pages served with 200) and documents that
take longer than the time limit become `Rejection`s with the reason, and the batch goes on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

import py3langid
import regex

from tasks.extract import BOILERPLATE_LINE, extract_from_tree, extract_text, parse_html
from tasks.formatchars import may_hold_format_chars, restore_format_chars, spelled_words
from tasks.metadata import clean_authors, extract_metadata, parse_datetime, plain_title
from tasks.records import LANGUAGE_FILTER, Article, CleanOutcome, Document, Rejection
from tasks.settings import Settings, get_settings
from tasks.textnorm import fold_for_comparison, normalize_text, split_paragraphs
from tasks.urls import canonicalize_url
from tasks.words import count_words

__all__ = ["LANGUAGE_FILTER", "CleanOutcome", "clean_document", "extract_text"]

MIN_REPEAT_CHARS = 30  # shorter lines repeat legitimately (table cells, labels): never deduplicated
MAX_BOILERPLATE_LINE_CHARS = 200
MAX_TITLE_WORDS = 25
# Plain-text boilerplate, on top of what HTML extraction already drops.
_TEXT_BOILERPLATE = re.compile(
    r"^(subscribe\b.*|related:.*|share this\b.*|click here\b.*|read more:.*|advertisement\W*|"
    r"sponsored\W*|sign up for\b.*|follow us\b.*|image:.*|photo:.*|\[?embedded content\]?)$",
    re.IGNORECASE,
)
_BINARY_SIGNATURES = (
    (re.compile(r"^%PDF-"), "a PDF document"),
    (re.compile(r"^.{0,3}PNG\r?\n"), "a PNG image"),
    (re.compile(r"^GIF8[79]a"), "a GIF image"),
    (re.compile(r"^.{1,6}(JFIF|Exif)"), "a JPEG image"),
    (re.compile(r"^RIFF.{4}WEBP", re.DOTALL), "a WebP image"),
    (re.compile(r"^PK\x03\x04"), "a ZIP archive (office document?)"),
    (re.compile(r"^.{4}ftyp(avif|heic|mp4|isom)", re.DOTALL), "an image or video file"),
)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
_NON_TEXT_BLOCKS = re.compile(r"<(script|style|noscript|svg|template|title)\b.*?</\1\s*>|<!--.*?-->",
                              re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_ERROR_PAGE = re.compile(r"\b(404|410|page not found|not found|no longer (available|exists)|"
                         r"does(n't| not) exist|error occurred)\b", re.IGNORECASE)
_PAYWALL = re.compile(r"\b(subscribe|subscribers?|subscription|sign in to (read|continue)|log in to (read|continue)|"
                      r"premium (content|article)|to continue reading)\b", re.IGNORECASE)
_LINK = re.compile(r"<a\s[^>]*href", re.IGNORECASE)
INDEX_PAGE_MIN_LINKS = 30
# A line ending a sentence, in any script ("." "。" "؟" "।" ...), maybe inside closing quotes or brackets.
_SENTENCE_END = regex.compile(r"[\p{Sentence_Terminal}:;][\p{Pf}\p{Pe}\"']*$")


# --- input checks ----------------------------------------------------------------------------


def decode_html(raw: bytes | str) -> str:
    """Text of a page given as bytes, decoded as a fetched page is (byte-order mark, `<meta>` charset, UTF-8,
    detection: `tasks.http.decode_body`); never fails."""
    if isinstance(raw, str):
        return raw
    from tasks.http import decode_body  # the HTTP client's imports, only for callers handing over bytes

    return decode_body(raw, None)


def undecodable_share(content: str) -> float:
    """The share of a decoded document's characters that stand for bytes no decoding could read (U+FFFD):
    counted before cleaning, which drops them."""
    return round(content.count("\ufffd") / len(content), 6) if content else 0.0


def bad_input_reason(html: str, max_chars: int) -> str | None:
    """Why this 'HTML' cannot be cleaned at all (a file of another kind, binary data, too much markup)."""
    head = html[:64].lstrip("\ufeff \t\r\n")
    for signature, kind in _BINARY_SIGNATURES:
        if signature.match(head):
            return f"not HTML: {kind} served as HTML"
    sample = html[:8192]
    if sample and len(_CONTROL.findall(sample)) > 0.05 * len(sample):
        return "not HTML: binary data (control characters) served as HTML"
    if len(html) > max_chars:
        markup = _NON_TEXT_BLOCKS.sub("", html)
        if len(markup) > max_chars:
            return (f"page too large to clean: {len(markup) / 1e6:.1f} MB of markup without scripts and styles "
                    f"(limit {max_chars / 1e6:.1f} MB)")
    return None


def _visible_text(html: str) -> str:
    return " ".join(_TAG.sub(" ", _NON_TEXT_BLOCKS.sub(" ", html)).split())


def no_text_reason(html: str) -> str | None:
    """Why a page yielded no text at all, when its markup says (None: ask `no_article_reason`)."""
    lowered = html.lower()
    if not _visible_text(html):
        if "<script" in lowered:
            return "script-only page: no text outside scripts"
        if "<body" not in lowered:
            return "no <body> and no text"
        return "page has no text"
    if lowered.count("<div") > 255 and lowered.count("<div") > 10 * max(1, lowered.count("</p>")):
        return "no article text found (markup nested deeper than the parser's 255-level limit?)"
    return None


def no_article_reason(text: str, title: str | None, html: str | None, min_words: int,
                      before_cleaning: str = "") -> str | None:
    """An (almost) empty text: what the page most likely is instead of an article."""
    words = count_words(text)
    if words >= min_words:
        return None
    counted = f"{words} words, fewer than {min_words}"
    if _ERROR_PAGE.search(f"{title or ''} {text[:300]}"):
        return f"no article: error page served as a normal page ({counted})"
    if _PAYWALL.search(f"{text} {before_cleaning[:2000]}"):
        return f"no article: paywall or subscription stub ({counted})"
    if html and len(_LINK.findall(html)) >= INDEX_PAGE_MIN_LINKS:
        return f"no article: index or list page, links without body text ({counted})"
    return f"no article: near-empty text ({counted})"


# --- plain text ------------------------------------------------------------------------------


def _looks_like_title(line: str) -> bool:
    return 0 < count_words(line) <= MAX_TITLE_WORDS and not _SENTENCE_END.search(line.rstrip())


def split_title(text: str) -> tuple[str | None, str | None, str]:
    """(title, summary, body) of a plain text: the title is a short line without a final period near
    the top; a one-sentence line above it is a summary (standfirst)."""
    lines = [line.strip() for line in text.split("\n")]
    non_empty = [i for i, line in enumerate(lines) if line]
    for position, index in enumerate(non_empty[:3]):
        if _looks_like_title(lines[index]) and position + 1 < len(non_empty):
            summary = lines[non_empty[0]] if position == 1 else None
            if position > 1:
                return None, None, text
            return lines[index], summary, "\n".join(lines[index + 1:])
    return None, None, text


def is_boilerplate_line(line: str) -> bool:
    line = line.strip()
    return len(line) <= MAX_BOILERPLATE_LINE_CHARS and bool(BOILERPLATE_LINE.match(line)
                                                             or _TEXT_BOILERPLATE.match(line))


def dedupe_paragraphs(paragraphs: Iterable[str], title: str | None = None) -> list[str]:
    """Paragraphs once each (folded comparison), without title repeats and boilerplate lines.

    A repeated paragraph (a sentence's end, at least MIN_REPEAT_CHARS) is kept at its first place, as scraped
    texts repeat them. Any other line is kept wherever it stands: repeated labels are table cells and list
    items ("Meal 1", "Drink 20-30 minutes before your workout"); dropping them cost three sites of the AEB dev
    pages and helped none of either dev corpus.
    """
    folded_title = fold_for_comparison(title) if title else None
    kept: list[str] = []
    seen: set[str] = set()
    for paragraph in paragraphs:
        key = fold_for_comparison(paragraph)
        if not key or key == folded_title or key in seen or is_boilerplate_line(paragraph):
            continue
        if len(key) >= MIN_REPEAT_CHARS and _SENTENCE_END.search(paragraph.rstrip()):
            seen.add(key)
        kept.append(paragraph)
    return kept


# py3langid walks the text byte by byte in Python (about 0.5 µs a byte); 2,000 characters of an article
# tell its language as well as 5,000 (same answers on the 62 extraction dev pages).
LANGUAGE_SAMPLE_CHARS = 2000


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid, offline), None for texts too short to tell."""
    if len(text) < 20:
        return None
    language, _ = py3langid.classify(text[:LANGUAGE_SAMPLE_CHARS])
    return language


def language_reason(language: str | None, allowed: Collection[str]) -> str | None:
    """Why the opt-in language filter (NEWSFLOW_ALLOWED_LANGUAGES) holds an article back; None when it
    passes, or when no filter is set."""
    if not allowed or language in allowed:
        return None
    said = f"'{language}' is not" if language else "no language detected, not"
    return f"language filter: {said} one of the allowed languages {', '.join(allowed)} (NEWSFLOW_ALLOWED_LANGUAGES)"


# --- stage -----------------------------------------------------------------------------------


def _reject(document: Document, reason: str, **payload: Any) -> Rejection:
    return Rejection("clean", document.source, document.url, [reason],
                     {"content_type": document.content_type, **payload})


def clean_document(document: Document, settings: Settings | None = None) -> Article | Rejection:
    """One raw document -> an article, or the reason it has none."""
    settings = settings or get_settings()
    hints = document.hints
    html = decode_html(document.html) if document.html is not None else None
    garbled = undecodable_share(html if html is not None else document.text or "")
    if html is not None:
        if reason := bad_input_reason(html, settings.clean_max_html_chars):
            return _reject(document, reason, chars=len(html))
        # Parsed once: metadata reads the tree, then extraction prunes it in place.
        tree = parse_html(html)
        metadata = extract_metadata(tree, document.url) if tree is not None else {"authors": [], "tags": []}
        # Joiners and bidi marks that extraction drops are given back (read before the tree is pruned).
        spelled = spelled_words(tree.itertext()) if tree is not None and may_hold_format_chars(html) else {}
        body = (restore_format_chars(extract_from_tree(tree, document.url, html), spelled)
                if tree is not None else "")
        if not body.strip() and (reason := no_text_reason(html)):
            return _reject(document, reason, title=metadata.get("title"))
        title = metadata.get("title") or hints.get("title")
    else:
        metadata = {}
        raw = normalize_text(document.text or "")
        title, summary, body = split_title(raw)
        title = hints.get("title") or title
        if summary:
            metadata["description"] = summary
    title = plain_title(title) if isinstance(title, str) else None  # text, whatever the page put in it
    title = normalize_text(title) if title and title.strip() else None
    paragraphs = dedupe_paragraphs(split_paragraphs(normalize_text(body)), title)
    text = "\n\n".join(paragraphs)
    if reason := no_article_reason(text, title, html, settings.min_words, before_cleaning=body):
        return _reject(document, reason, title=title, text=text[:2000])
    language = detect_language(text) or metadata.get("declared_language")
    if reason := language_reason(language, settings.allowed_languages):
        return _reject(document, reason, title=title, language=language, filtered_by=LANGUAGE_FILTER)
    site_name = metadata.get("site_name")
    return Article(
        source=document.source,
        url=document.url,
        # The page's <link rel="canonical"> / og:url wins; either way one spelling (tasks/urls.py).
        canonical_url=canonicalize_url(metadata.get("canonical_url") or document.url),
        title=title,
        text=text,
        authors=metadata.get("authors") or clean_authors(_as_list(hints.get("authors")), [site_name or ""]),
        published_at=metadata.get("published_at") or parse_datetime(hints.get("published_at")),
        modified_at=metadata.get("modified_at"),
        language=language,
        description=metadata.get("description") or hints.get("summary"),
        site_name=site_name,
        image=metadata.get("image"),
        tags=metadata.get("tags") or [],
        fetched_at=document.fetched_at,
        undecodable_share=garbled,
        input_hash=document.input_hash,
    )


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def clean_safely(document: Document, settings: Settings | None = None) -> Article | Rejection:
    """`clean_document`, with a parser failure turned into a rejection instead of an exception."""
    try:
        return clean_document(document, settings)
    except RecursionError:
        return _reject(document, "could not parse: markup nested too deeply")
    except Exception as exc:  # a parser bug on one page must not stop the batch
        return _reject(document, f"could not parse: {type(exc).__name__}: {exc}")


# --- in a worker process ----------------------------------------------------------------------


def warm_up() -> None:
    """Load what cleaning needs (parsers, the language model, ICU's word dictionaries) in a fresh worker process."""
    detect_language("A short English sentence to load the language model.")
    count_words("東京の天気 北京天气 กรุงเทพมหานคร")
