"""Sitemaps: <urlset> and <sitemapindex> files, gzipped or not, with Google News extensions
(`news:publication_date`, `news:title`). Parsed with defusedxml: no entity expansion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from tasks.feeds import FeedError
from tasks.http import TooLarge, gunzip_capped

GZIP_MAGIC = b"\x1f\x8b"
GZIP_TYPES = ("application/gzip", "application/x-gzip", "application/octet-stream", "application/x-gunzip")


@dataclass(slots=True)
class SitemapEntry:
    url: str
    lastmod: datetime | None = None
    hints: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Sitemap:
    pages: list[SitemapEntry] = field(default_factory=list)  # from a <urlset>
    sitemaps: list[SitemapEntry] = field(default_factory=list)  # from a <sitemapindex>


def parse_w3c_datetime(value: str | None) -> datetime | None:
    """A sitemap date (W3C datetime: `2026-11-09`, `2026-11-09T07:30:00+00:00`, `...Z`); UTC if no zone."""
    if not value or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(element: Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip() or None
    return None


def _news_hints(url_element: Element) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for child in url_element:
        if _local(child.tag) != "news":
            continue
        if title := _child_text(child, "title"):
            hints["title"] = title
        if published := parse_w3c_datetime(_child_text(child, "publication_date")):
            hints["published_at"] = published
        for publication in (c for c in child if _local(c.tag) == "publication"):
            if name := _child_text(publication, "name"):
                hints["site_name"] = name
            if language := _child_text(publication, "language"):
                hints["language"] = language
    return hints


def parse_sitemap(body: bytes, max_bytes: int) -> Sitemap:
    """Pages or child sitemaps of a sitemap file; FeedError (kind `malformed_sitemap`, `unsafe_xml`,
    `too_large`) when it cannot be used."""
    if body[:2] == GZIP_MAGIC:
        try:
            body = gunzip_capped(body, max_bytes)
        except TooLarge:
            raise FeedError("too_large", f"gzipped sitemap over {max_bytes} bytes decompressed") from None
        except (OSError, EOFError, ValueError) as exc:
            raise FeedError("malformed_sitemap", f"bad gzip: {exc}") from None
    try:
        root = safe_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError("unsafe_xml", f"unsafe XML rejected ({type(exc).__name__})") from None
    except ParseError as exc:
        raise FeedError("malformed_sitemap", f"malformed sitemap XML: {exc}") from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise FeedError("malformed_sitemap", f"not a sitemap: root element <{kind}>")
    sitemap = Sitemap()
    for element in root:
        location = _child_text(element, "loc")
        if not location:
            continue
        entry = SitemapEntry(location, parse_w3c_datetime(_child_text(element, "lastmod")))
        if kind == "urlset" and _local(element.tag) == "url":
            entry.hints = _news_hints(element)
            sitemap.pages.append(entry)
        elif kind == "sitemapindex" and _local(element.tag) == "sitemap":
            sitemap.sitemaps.append(entry)
    return sitemap
