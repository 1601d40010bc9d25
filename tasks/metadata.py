"""Article metadata from an HTML page: title, authors, dates, description, image, site name, tags, language.

Sources in order of trust: JSON-LD (`NewsArticle` and other `*Article` / `*Posting` types), OpenGraph and
`article:` meta, other meta tags and microdata, visible markup (`<h1>`, bylines, `<time>`), the URL, and
htmldate as a last resort for dates. Dates keep their time zone (UTC is assumed only when none is given)
and are dropped when in the future or before 1990.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import lxml.html

logging.getLogger("htmldate").setLevel(logging.CRITICAL)

EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
# Clocks of publishers and ours differ a little; a date further ahead than this is wrong, not early.
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_AUTHOR_WORDS = 5

_ARTICLE_TYPE = re.compile(r"(Article|BlogPosting|NewsArticle|Report|LiveBlogPosting)$")
_BYLINE_PREFIX = re.compile(r"^\s*(written\s+)?by\s*[:\-]?\s+|^\s*(author|words|text)\s*:\s*", re.IGNORECASE)
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|;|&|\band\b|\bund\b|\bet\b|\by\b|\|)\s*", re.IGNORECASE)
_NOT_A_NAME = re.compile(r"@|://|www\.|\d|\b(staff|team|editors?|desk|newsroom|reporters?|correspondents?|"
                         r"contributors?|agency|updated|published|min read)\b", re.IGNORECASE)
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?:/|-|$)")


# --- dates -----------------------------------------------------------------------------------


def parse_datetime(value: Any, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 or RFC 822 date with its own time zone (UTC when none is given), or None when it is
    unparseable, before 1990 or in the future."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                parsed = None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not EARLIEST_DATE <= parsed <= (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        return None
    return parsed


def date_from_url(url: str | None) -> datetime | None:
    """A /YYYY/MM/DD/ (or YYYY-MM-DD) date in the URL path, as midnight UTC."""
    if not url:
        return None
    match = _URL_DATE.search(url)
    if not match:
        return None
    try:
        return parse_datetime(datetime(int(match[1]), int(match[2]), int(match[3]), tzinfo=UTC))
    except ValueError:
        return None


def _htmldate(tree: lxml.html.HtmlElement, url: str | None, original: bool) -> datetime | None:
    try:
        from htmldate import find_date

        found = find_date(tree, url=url, original_date=original, extensive_search=False,
                          outputformat="%Y-%m-%d", min_date="1990-01-01",
                          max_date=datetime.now(UTC).strftime("%Y-%m-%d"))
    except Exception:  # htmldate is a heuristic last resort: its failures are not ours to report
        return None
    return parse_datetime(found) if found else None


# --- small helpers ---------------------------------------------------------------------------


# Text of an element without what a browser never shows as text: a <script> inside an <h1> is no title.
_SHOWN_TEXT = ".//text()[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]"


def shown_text(element: lxml.html.HtmlElement) -> str:
    return " ".join(" ".join(element.xpath(_SHOWN_TEXT)).split())


def plain_title(value: str | None) -> str | None:
    """A title as text: markup in it (a tag, a <script> and its content) goes, the words stay."""
    if not value or "<" not in value:
        return value
    try:
        fragment = lxml.html.fragment_fromstring(value, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return value
    return shown_text(fragment) or None


def _squash(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


class MetaTags:
    """The page's `<meta>` contents by attribute (property, name, itemprop) and its value, gathered in one
    walk of the document: one XPath over the whole page per key and attribute came to about 80 walks per
    page, a quarter of a cleaning worker's time on pages with big menus."""

    ATTRIBUTES = ("property", "name", "itemprop")

    def __init__(self, tree: lxml.html.HtmlElement) -> None:
        self._contents: dict[tuple[str, str], list[str]] = defaultdict(list)
        for element in tree.getroottree().iter("meta"):
            content = element.get("content")
            if content is None:
                continue
            for attribute in self.ATTRIBUTES:
                key = element.get(attribute)
                if key is not None:
                    self._contents[(attribute, key)].append(content)

    def first(self, *keys: str) -> str | None:
        """The first non-empty content of <meta property|name|itemprop=key>, trying keys in order."""
        for key in keys:
            for attribute in self.ATTRIBUTES:
                for value in self._contents.get((attribute, key), ()):
                    if value := _squash(value):
                        return value
        return None

    def every(self, *keys: str) -> list[str]:
        """Every non-empty content of <meta property|name=key>, by key."""
        return [value for key in keys for attribute in ("property", "name")
                for value in self._contents.get((attribute, key), ()) if _squash(value)]


def json_ld_items(tree: lxml.html.HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object of the page, @graph members and nested lists included."""
    for script in tree.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text_content() or "", strict=False)
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                if isinstance(item.get("@graph"), list):
                    stack.extend(reversed(item["@graph"]))
                yield item


def _types(item: dict[str, Any]) -> list[str]:
    kind = item.get("@type")
    return [k for k in (kind if isinstance(kind, list) else [kind]) if isinstance(k, str)]


def _article_ld(tree: lxml.html.HtmlElement) -> dict[str, Any]:
    for item in json_ld_items(tree):
        if any(_ARTICLE_TYPE.search(kind) for kind in _types(item)):
            return item
    return {}


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if any(kind in ("Organization", "NewsMediaOrganization") for kind in _types(value)):
            return []  # a publisher given as author is not a person
        return _names(value.get("name"))
    if isinstance(value, list):
        return [name for v in value for name in _names(v)]
    return []


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _urls(value.get("url") or value.get("contentUrl"))
    if isinstance(value, list):
        return [url for v in value for url in _urls(v)]
    return []


def _keywords(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in re.split(r"[,;]", value)]
    if isinstance(value, list):
        return [k for v in value for k in _keywords(v)]
    return []


# --- fields ----------------------------------------------------------------------------------


def clean_authors(raw: Iterable[str], site_names: Iterable[str] = ()) -> list[str]:
    """Person names: no 'By', split on 'and'/commas/'&', no URLs, e-mails, roles or site names, each once."""
    excluded = [name.casefold() for name in site_names if name]
    authors: list[str] = []
    for value in raw:
        if not isinstance(value, str):
            continue
        value = _BYLINE_PREFIX.sub("", " ".join(value.split()))
        for part in _AUTHOR_SPLIT.split(value):
            name = _BYLINE_PREFIX.sub("", part).strip(" .,;:|-–—()")
            if (not name or _NOT_A_NAME.search(name) or len(name.split()) > MAX_AUTHOR_WORDS or len(name) < 3
                    or any(name.casefold() in site for site in excluded)
                    or (name.isupper() and " " not in name)):  # "REUTERS", "AP": agencies, not people
                continue
            if name.casefold() not in (a.casefold() for a in authors):
                authors.append(name)
    return authors


def _byline_authors(tree: lxml.html.HtmlElement) -> list[str]:
    found = tree.xpath("//a[@rel='author']//text() | //*[@itemprop='author']//*[@itemprop='name']/text()"
                       " | //*[@itemprop='author' and not(*)]/text()")
    if found:
        return [" ".join(found)] if len(found) == 1 else found
    for element in tree.xpath("//*[contains(@class, 'byline') or contains(@class, 'author')]"
                              "[contains(concat(' ', normalize-space(@class), ' '), ' byline ')"
                              " or contains(concat(' ', normalize-space(@class), ' '), ' author ')"
                              " or contains(@class, 'author-name') or contains(@class, 'byline__name')]")[:2]:
        text = " ".join(element.text_content().split())
        if text and len(text) < 120:
            return [text]
    return []


def _strip_site_suffix(title: str, site_names: Iterable[str]) -> str:
    """'Headline | Site' -> 'Headline' (also ' - ' and ' — ' separators)."""
    for separator in (" | ", " - ", " – ", " — ", " :: "):
        head, found, tail = title.rpartition(separator)
        if found and head and (tail.strip().casefold() in {s.casefold() for s in site_names if s}
                               or len(tail.split()) <= 4 < len(head.split())):
            return head.strip()
    return title


def _tags(tree: lxml.html.HtmlElement, metas: MetaTags, ld: dict[str, Any]) -> list[str]:
    raw = metas.every("article:tag", "news_keywords", "keywords") + _keywords(ld.get("keywords"))
    # contains(@class, 'tag') first: the class-token test is costly and most elements have no such class.
    raw += tree.xpath("//a[@rel='tag']/text() | //*[contains(@class, 'tag')]"
                      "[contains(concat(' ', normalize-space(@class), ' '), ' tags ')"
                      " or contains(concat(' ', normalize-space(@class), ' '), ' tag-list ')]//a/text()")
    tags: list[str] = []
    for value in raw:
        for part in (value.split(",") if "," in value else [value]):
            tag = " ".join(part.split()).strip(" #")
            if tag and len(tag) <= 60 and tag.casefold() not in (t.casefold() for t in tags):
                tags.append(tag)
    return tags[:30]


def extract_metadata(html_or_tree: str | lxml.html.HtmlElement, url: str | None = None) -> dict[str, Any]:
    """Everything the page declares about its article (absent fields are None or empty lists)."""
    tree = html_or_tree
    if not isinstance(tree, lxml.html.HtmlElement):
        from tasks.extract import parse_html

        tree = parse_html(html_or_tree)
        if tree is None:
            return {"authors": [], "tags": []}
    ld = _article_ld(tree)
    metas = MetaTags(tree)
    publisher = ld.get("publisher") if isinstance(ld.get("publisher"), dict) else {}
    site_name = _squash(metas.first("og:site_name", "application-name")) or _squash(publisher.get("name"))

    h1 = next((text for text in map(shown_text, tree.iter("h1")) if text), None)
    title_tag = _squash(" ".join(tree.xpath("//head/title//text()")))
    title = (_squash(ld.get("headline")) or metas.first("og:title", "twitter:title") or h1
             or (title_tag and _strip_site_suffix(title_tag, [site_name or ""])))
    if title:
        title = _strip_site_suffix(title, [site_name or ""])

    raw_authors = _names(ld.get("author")) or metas.every("author", "article:author", "dc.creator",
                                                        "parsely-author", "sailthru.author")
    raw_authors = [a for a in raw_authors if "://" not in a] or _byline_authors(tree)
    authors = clean_authors(raw_authors, [site_name or "", _squash(publisher.get("name")) or ""])

    time_published = tree.xpath("//time[@itemprop='datePublished']/@datetime | //time[@pubdate]/@datetime"
                                " | //time/@datetime")
    published = (parse_datetime(ld.get("datePublished"))
                 or parse_datetime(metas.first("article:published_time", "og:published_time", "datePublished",
                                         "date", "pubdate", "publishdate", "dc.date.issued", "dc.date",
                                         "sailthru.date", "parsely-pub-date"))
                 or next((d for d in map(parse_datetime, time_published[:3]) if d), None)
                 or date_from_url(url)
                 or _htmldate(tree, url, original=True))
    modified = (parse_datetime(ld.get("dateModified"))
                or parse_datetime(metas.first("article:modified_time", "og:updated_time", "dateModified",
                                        "last-modified"))
                or next((d for d in map(parse_datetime,
                                        tree.xpath("//time[@itemprop='dateModified']/@datetime")) if d), None))
    if modified and published and modified < published:
        modified = None

    image = next(iter(_urls(ld.get("image"))), None) or metas.first("og:image", "og:image:url", "twitter:image",
                                                              "twitter:image:src")
    canonical = next(iter(tree.xpath("//link[@rel='canonical']/@href")), None) or metas.first("og:url")
    html_lang = next(iter(tree.xpath("/html/@lang | //meta[@http-equiv='content-language']/@content")), "")
    return {
        "title": title,
        "authors": authors,
        "published_at": published,
        "modified_at": modified,
        "description": _squash(ld.get("description")) or metas.first("og:description", "description",
                                                                 "twitter:description"),
        "image": urljoin(url or "", image.strip()) if image else None,
        "site_name": site_name,
        "tags": _tags(tree, metas, ld),
        "canonical_url": urljoin(url or "", canonical.strip()) if canonical and canonical.strip() else None,
        "declared_language": (html_lang.strip().split("-")[0].split("_")[0].lower() or None),
    }
