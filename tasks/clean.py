"""Clean stage: raw `Document` -> `Article` (title, main text, authors, dates, canonical URL, language).

HTML main text comes from trafilatura; metadata from JSON-LD, OpenGraph and meta tags (beautifulsoup4).
Plain text gets a title found by shape, repeated titles and paragraphs removed. A document with no
article text is rejected with the reason, never loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import py3langid
from bs4 import BeautifulSoup

from tasks.extract import extract_text
from tasks.records import Article, Document, Rejection, StageStats
from tasks.textnorm import fold_for_comparison, normalize_text, split_paragraphs

MIN_REPEAT_CHARS = 30  # shorter repeated lines are boilerplate ("ADVERTISEMENT"), not paragraphs
MAX_TITLE_WORDS = 25
_BOILERPLATE_LINE = re.compile(
    r"^(advertisement|sponsored|read more\b.*|sign up for\b.*|subscribe\b.*|share this\b.*|"
    r"related:?.*|click here\b.*)$",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^\s*by\s+", re.IGNORECASE)


@dataclass(slots=True)
class CleanOutcome:
    articles: list[Article] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    stats: StageStats = field(default_factory=lambda: StageStats("clean"))


# --- HTML ------------------------------------------------------------------------------------


def _json_ld_articles(soup: BeautifulSoup) -> Iterator[dict[str, Any]]:
    for script in soup.find_all("script", type="application/ld+json"):
        try:
            data = json.loads(script.string or "")
        except (json.JSONDecodeError, TypeError):
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop()
            if not isinstance(item, dict):
                continue
            stack.extend(item.get("@graph", []) if isinstance(item.get("@graph"), list) else [])
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
                yield item


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _names(value.get("name"))
    if isinstance(value, list):
        return [name for v in value for name in _names(v)]
    return []


def clean_authors(raw: Iterable[str]) -> list[str]:
    """Author names without 'By', split on 'and'/commas, no URLs or e-mail addresses, each once."""
    authors: list[str] = []
    for value in raw:
        value = _BYLINE.sub("", value or "")
        for part in re.split(r",|\band\b|&", value):
            name = " ".join(part.split()).strip(" .;:")
            if not name or "@" in name or "://" in name or len(name) > 80:
                continue
            if name.casefold() not in (a.casefold() for a in authors):
                authors.append(name)
    return authors


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 or RFC 822 date with its time zone (UTC assumed when none is given)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def extract_metadata(html: str, url: str | None = None) -> dict[str, Any]:
    """Title, authors, dates, canonical URL, description, site name and language declared by the page."""
    soup = BeautifulSoup(html, "lxml")

    def meta(*keys: str) -> str | None:
        for key in keys:
            tag = soup.find("meta", attrs={"property": key}) or soup.find("meta", attrs={"name": key})
            if tag and tag.get("content", "").strip():
                return tag["content"].strip()
        return None

    found: dict[str, Any] = {}
    for item in _json_ld_articles(soup):
        found.setdefault("title", item.get("headline"))
        found.setdefault("authors", _names(item.get("author")))
        found.setdefault("published_at", item.get("datePublished"))
        found.setdefault("modified_at", item.get("dateModified"))
        found.setdefault("description", item.get("description"))
        break
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    found["title"] = (found.get("title") or meta("og:title", "twitter:title")
                      or (h1.get_text(" ", strip=True) if h1 else None)
                      or (title_tag.get_text(" ", strip=True) if title_tag else None))
    if not found.get("authors"):
        found["authors"] = [m["content"] for m in soup.find_all("meta", attrs={"name": "author"})
                            if m.get("content")]
    found["authors"] = clean_authors(found.get("authors") or [])
    time_tag = soup.find("time", attrs={"datetime": True})
    found["published_at"] = parse_datetime(
        found.get("published_at") or meta("article:published_time", "og:published_time", "date")
        or (time_tag["datetime"] if time_tag else None)
    )
    found["description"] = found.get("description") or meta("og:description", "description")
    found["site_name"] = meta("og:site_name")
    canonical = soup.find("link", rel="canonical")
    canonical_href = canonical.get("href") if canonical else None
    canonical_href = canonical_href or meta("og:url")
    found["canonical_url"] = urljoin(url or "", canonical_href) if canonical_href else None
    html_tag = soup.find("html")
    found["declared_language"] = (html_tag.get("lang") or "").split("-")[0].lower() or None if html_tag else None
    return found


# --- plain text ------------------------------------------------------------------------------


def _looks_like_title(line: str) -> bool:
    return 0 < len(line.split()) <= MAX_TITLE_WORDS and not line.rstrip().endswith((".", "!", "?", ":", ";"))


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


def dedupe_paragraphs(paragraphs: Iterable[str], title: str | None = None) -> list[str]:
    """Keep each paragraph once (folded comparison); drop title repeats and boilerplate lines."""
    kept: list[str] = []
    seen: set[str] = set()
    folded_title = fold_for_comparison(title) if title else None
    for paragraph in paragraphs:
        folded = fold_for_comparison(paragraph)
        if not folded or folded == folded_title or _BOILERPLATE_LINE.match(paragraph.strip()):
            continue
        if folded in seen:
            continue
        if len(folded) >= MIN_REPEAT_CHARS:
            seen.add(folded)
        kept.append(paragraph)
    return kept


def detect_language(text: str) -> str | None:
    if len(text) < 20:
        return None
    language, _ = py3langid.classify(text[:5000])
    return language


# --- stage -----------------------------------------------------------------------------------


def clean_document(document: Document) -> Article | Rejection:
    """One raw document -> an article, or the reason it has none."""
    hints = document.hints
    if document.html is not None:
        metadata = extract_metadata(document.html, document.url)
        body = extract_text(document.html, document.url)
        title = metadata.get("title") or hints.get("title")
    else:
        metadata = {}
        raw = normalize_text(document.text or "")
        title, summary, body = split_title(raw)
        title = title or hints.get("title")
        if summary:
            metadata["description"] = summary
    body = normalize_text(body)
    paragraphs = dedupe_paragraphs(split_paragraphs(body), title)
    text = "\n\n".join(paragraphs)
    if not text.strip():
        return Rejection("clean", document.source, document.url, ["no article text found"],
                         {"title": title, "content_type": document.content_type})
    title = normalize_text(title) if title else None
    authors = metadata.get("authors") or clean_authors(hints.get("authors") or [])
    return Article(
        source=document.source,
        url=document.url,
        canonical_url=metadata.get("canonical_url") or document.url,
        title=title,
        text=text,
        authors=authors,
        published_at=metadata.get("published_at") or parse_datetime(hints.get("published_at")),
        language=detect_language(text) or metadata.get("declared_language"),
        description=metadata.get("description") or hints.get("summary"),
        site_name=metadata.get("site_name"),
        fetched_at=document.fetched_at,
    )


def clean_documents(documents: Iterable[Document]) -> CleanOutcome:
    """Clean a batch; a document that fails to parse is rejected with the error, the rest go on."""
    outcome = CleanOutcome()
    for document in documents:
        outcome.stats.add("in")
        try:
            result = clean_document(document)
        except Exception as exc:  # a parser bug on one page must not stop the batch
            result = Rejection("clean", document.source, document.url,
                               [f"could not parse: {type(exc).__name__}: {exc}"], {})
        if isinstance(result, Rejection):
            outcome.rejections.append(result)
            outcome.stats.add("quarantined")
        else:
            outcome.articles.append(result)
            outcome.stats.add("out")
    return outcome
