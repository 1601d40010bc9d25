"""Feeds: RSS 0.9x/1.0/2.0 and Atom (feedparser, after a defusedxml safety check) and JSON Feed (json).
Each item becomes a link to fetch with hints for the clean stage (title, summary, date, authors, guid)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

import feedparser
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

Link = tuple[str, dict[str, Any]]  # (URL, hints); URL "" for an item that has none
JSON_FEED_TYPES = ("application/feed+json", "application/json")


class FeedError(ValueError):
    """A feed that cannot be used: `kind` is the error kind recorded in `fetches`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_xml_safety(body: bytes) -> None:
    """Refuse XML declaring entities (billion laughs, external entities) before any parser expands them.

    A DOCTYPE alone is fine (old RSS 0.91 feeds have one); malformed XML is left to the lenient parser.
    """
    try:
        safe_fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError("unsafe_xml", f"unsafe XML rejected ({type(exc).__name__}: entity declarations are "
                                      "not allowed, e.g. a billion-laughs bomb)") from None
    except ParseError:
        pass


def _json_feed_items(body: bytes) -> list[Link]:
    try:
        feed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FeedError("malformed_feed", f"malformed JSON Feed: {exc}") from None
    if not isinstance(feed, dict) or not isinstance(feed.get("items"), list):
        raise FeedError("malformed_feed", "malformed JSON Feed: no 'items' list")
    links: list[Link] = []
    for item in feed["items"]:
        if not isinstance(item, dict):
            continue
        url = item.get("url") or item.get("external_url")
        url = url if isinstance(url, str) else ""  # an item without a link is reported, not dropped
        hints: dict[str, Any] = {}
        for key, hint in (("title", "title"), ("summary", "summary"), ("id", "guid"),
                          ("date_published", "published_at")):
            if isinstance(item.get(key), str) and item[key]:
                hints[hint] = item[key]
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        names = [a["name"] for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str)]
        if names:
            hints["authors"] = names
        links.append((url, hints))
    return links


def _xml_feed_items(body: bytes, content_type: str | None) -> list[Link]:
    check_xml_safety(body)
    parsed = feedparser.parse(body, response_headers={"content-type": content_type or "application/xml"})
    if not parsed.entries:
        if parsed.bozo:
            raise FeedError("malformed_feed", f"malformed feed: {parsed.get('bozo_exception')}")
        if not parsed.get("version"):
            raise FeedError("malformed_feed", "not an RSS or Atom feed")
    links: list[Link] = []
    for entry in parsed.entries:
        link = entry.get("link") or ""  # an item without a link is reported, not dropped
        hints: dict[str, Any] = {}
        if entry.get("title"):
            hints["title"] = entry["title"]
        if entry.get("summary"):
            hints["summary"] = entry["summary"]
        if entry.get("id"):
            hints["guid"] = entry["id"]
        names = [a.get("name") for a in entry.get("authors", []) if a.get("name")]
        if names or entry.get("author"):
            hints["authors"] = names or [entry["author"]]
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        if when:
            hints["published_at"] = datetime(*when[:6], tzinfo=UTC)
        links.append((link, hints))
    if parsed.bozo and not any(url for url, _ in links):  # a broken feed that yielded nothing usable
        raise FeedError("malformed_feed", f"malformed feed: {parsed.get('bozo_exception')}")
    return links


def parse_feed(body: bytes, content_type: str | None = None) -> list[Link]:
    """Article links of a feed with their hints; FeedError when the feed is unusable or unsafe."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in JSON_FEED_TYPES or body.lstrip()[:1] == b"{":
        return _json_feed_items(body)
    return _xml_feed_items(body, content_type)
