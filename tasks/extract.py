"""Main-text extraction from an HTML page: parse once, prune boilerplate blocks, extract, cross-check, tidy.

1. The page is parsed once with lxml (broken markup is repaired by the parser).
2. Boilerplate blocks are pruned by what they are (figures and captions, forms, buttons) and by what their
   class or id says they are (comments, related stories, newsletter and share boxes, cookie banners, ads);
   a block holding a large part of the page's text is never pruned, whatever its name.
3. trafilatura (precision-oriented, fast mode) extracts the main text.
4. Cross-check: when trafilatura kept much less than the page's paragraph text, readability-lxml extracts
   too, and its text replaces trafilatura's when it contains it and is much longer (article bodies split
   by ads or "read also" boxes, where trafilatura keeps only the first part).
5. Boilerplate lines ("Comments are closed", "Sign up for ...", "Share this story") are dropped, and a
   trailing comment section is cut at its heading ("12 thoughts on ...").
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from copy import deepcopy

import lxml.etree
import lxml.html
import trafilatura
from readability import Document as ReadabilityDocument

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("readability").setLevel(logging.CRITICAL)
logging.getLogger("readability.readability").setLevel(logging.CRITICAL)

# Cross-check thresholds: readability runs when trafilatura kept less than 1/RECHECK_RATIO of the paragraph
# text, and wins when it is REPLACE_RATIO times longer and holds REPLACE_CONTAINMENT of trafilatura's shingles.
RECHECK_RATIO = 2.0
REPLACE_RATIO = 1.8
REPLACE_CONTAINMENT = 0.95
# A named block holding more than this share of the page's paragraph text is content, not boilerplate.
MAX_PRUNED_SHARE = 0.3

# Class/id tokens (delimited by spaces, '-' or '_') that name a boilerplate block.
_BOILERPLATE_NAME = re.compile(
    r"(?:^|[ \t_-])(?:comments?|comment-list|respond|disqus|related|recommend\w*|more-stories|most-read|"
    r"popular|trending|newsletter|signup|subscribe|subscription|share|sharing|social|cookie\w*|consent|"
    r"gdpr|advert\w*|ads?|promo\w*|sponsor\w*|outbrain|taboola|breadcrumbs?|author-bio|tags|tag-list|"
    r"paywall|banner)(?=$|[ \t_-])",
    re.IGNORECASE | re.MULTILINE,
)
# Plain strings (no element proxies): every distinct class/id value of the page is tested once.
_CLASS_AND_ID_VALUES = lxml.etree.XPath("//body//@class | //body//@id", smart_strings=False)


def is_boilerplate_name(name: str) -> bool:
    """Whether a class/id value names a boilerplate block ('share-tools', 'cookie_banner', 'most-read')."""
    return bool(_BOILERPLATE_NAME.search(" ".join(name.split())))


_NAMED_AS = lxml.etree.XPath(
    "//body//*[not(self::article or self::main)]"
    "[contains($names, concat('\n', @class, '\n')) or contains($names, concat('\n', @id, '\n'))]")


def _boilerplate_named(tree: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """Elements whose class or id names boilerplate, in document order (article and main excepted).

    Each distinct class/id value is tested once in Python; lxml then finds the elements carrying one
    of the matching values (newline-delimited in one string) without a Python call per element.
    """
    names = [name for name in set(_CLASS_AND_ID_VALUES(tree)) if "\n" not in name and is_boilerplate_name(name)]
    if not names:
        return []
    return _NAMED_AS(tree, names="\n" + "\n".join(names) + "\n")


_ALWAYS_PRUNED = ("figcaption", "form", "button", "noscript", "iframe", "template", "dialog")
_MEDIA = ("img", "picture", "video", "audio", "svg")

# Lines that are page furniture wherever they appear.
BOILERPLATE_LINE = re.compile(
    r"^(advertisement|sponsored( content)?|\d*\s*comments?|comments are closed\.?|"
    r"you must (be )?log(ged)? ?in to post a comment\.?|"
    r"(tell|let) us what you think\W*|like this story\?.*|share (this|it)\b.{0,80}|"
    r"(sign up|subscribe) (for|to) (our|the)\b.{0,120}|get the latest updates\b.{0,120}|"
    r"click here\b.{0,80}|follow us on\b.{0,80}|read more\W*|related( stories| articles)?:?|"
    r"also on \S+\.\w+\b.{0,200}|see more photos:?|"
    r"(©|\(c\) |copyright\b).{0,150}|"  # copyright notices
    r"\[\w+\b[^\]]*\].{0,200}\[/\w+\])$",  # CMS shortcodes that leaked into the text
    re.IGNORECASE,
)
# Headings that open the page's tail (readers' comments, tag lists, links to other stories): everything
# from here on is not the article.
_TAIL_HEADING = re.compile(
    r"^(\d+ (thoughts|comments|responses|replies) (on|to)\b.*|leave a (reply|comment)|"
    r"(\d+ )?comments|join the discussion|what do you think\?|tags:?|topics:?|"
    r"(related|more) (stories|articles|news):?|you (may|might) also like:?|read next:?)$",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\w+")


def parse_html(html: str | bytes) -> lxml.html.HtmlElement | None:
    """The page as an lxml tree, or None when there is nothing parseable.

    trafilatura's loader: it repairs what libxml2 chokes on and drops HTML comments, which would otherwise
    cut the text that follows them inside a paragraph.
    """
    if not html or not html.strip():
        return None
    try:
        tree = trafilatura.load_html(html)
    except (lxml.etree.ParserError, ValueError, TypeError):
        return None
    return tree if tree is not None and len(tree) else None


def _paragraph_chars(tree: lxml.html.HtmlElement) -> int:
    return sum(len(p.text_content()) for p in tree.iter("p"))


def prune_boilerplate(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """Remove boilerplate blocks in place (see the module docstring) and return the tree."""
    for element in list(tree.iter(*_ALWAYS_PRUNED)):
        _drop(element)
    for figure in list(tree.iter("figure")):
        if any(True for _ in figure.iter(*_MEDIA)):
            _drop(figure)
    total = _paragraph_chars(tree) or 1
    for element in _boilerplate_named(tree):
        if element.getparent() is None:
            continue
        if _paragraph_chars(element) > MAX_PRUNED_SHARE * total:
            continue
        _drop(element)
    return tree


def _drop(element: lxml.html.HtmlElement) -> None:
    parent = element.getparent()
    if parent is None:
        return
    element.drop_tree()  # keeps the tail text, which belongs to the parent


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i:i + 4]) for i in range(max(1, len(tokens) - 3)))


def containment(part: str, whole: str) -> float:
    """Share of `part`'s token 4-grams found in `whole` (multiset)."""
    shingles = _shingles(part)
    if not shingles:
        return 0.0
    return sum((shingles & _shingles(whole)).values()) / sum(shingles.values())


def _trafilatura_text(tree: lxml.html.HtmlElement, url: str | None) -> str:
    # deduplicate=False: trafilatura's dedup cache is process-wide, so it would cut paragraphs of one
    # page because another page had them (copies must reach the dedupe stage intact).
    return trafilatura.extract(
        tree, url=url, favor_precision=True, fast=True, include_comments=False, include_tables=True,
        include_images=False, deduplicate=False, with_metadata=False,
    ) or ""


_READABILITY_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td")


def _readability_text(tree: lxml.html.HtmlElement) -> str:
    try:
        summary = ReadabilityDocument(deepcopy(tree)).summary(html_partial=True)
        body = lxml.html.fragment_fromstring(summary, create_parent="div")
    except Exception:  # readability raises its own Unparseable and assorted errors on odd pages
        return ""
    blocks = []
    for element in body.iter(*_READABILITY_BLOCKS):
        if any(ancestor.tag in _READABILITY_BLOCKS for ancestor in element.iterancestors()):
            continue  # nested block: its text is in the outer one
        text = " ".join(element.text_content().split())
        if text:
            blocks.append(text)
    return "\n".join(blocks)


def tidy_lines(text: str) -> list[str]:
    """Paragraphs of an extracted text without boilerplate lines and without the page's tail (comments...)."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    kept: list[str] = []
    kept_chars = 0
    for line in lines:
        if not line:
            continue
        if _TAIL_HEADING.match(line) and kept_chars >= 300:
            break
        if BOILERPLATE_LINE.match(line):
            continue
        kept.append(line)
        kept_chars += len(line)
    return kept


def _page_furniture(tree: lxml.html.HtmlElement) -> set[str]:
    """Folded headlines of a page: repeated at the top of the text, they are not body."""
    values = [h1.text_content() for h1 in tree.iter("h1")]
    values += tree.xpath("//head/title/text()")
    values += tree.xpath("//meta[@property='og:title' or @name='twitter:title']/@content")
    return {_fold(value) for value in values if value and value.strip()}


def drop_standfirst_headings(tree: lxml.html.HtmlElement) -> None:
    """A heading that repeats the page's description is a standfirst (dek), not body. A paragraph
    repeating it is kept: pages often describe themselves with their first paragraph."""
    descriptions = {_fold(value) for value in tree.xpath(
        "//meta[@name='description' or @property='og:description' or @name='twitter:description']/@content")}
    descriptions.discard("")
    if not descriptions:
        return
    for heading in list(tree.iter("h2", "h3", "h4")):
        if _fold(heading.text_content()) in descriptions:
            _drop(heading)


def _fold(text: str) -> str:
    return " ".join(_TOKEN.findall(text.casefold()))


def drop_leading_furniture(lines: list[str], furniture: set[str]) -> list[str]:
    """Lines at the top that repeat the headline or the description (a standfirst), while body follows."""
    while len(lines) > 1 and _fold(lines[0]) in furniture:
        lines = lines[1:]
    return lines


def extract_from_tree(tree: lxml.html.HtmlElement, url: str | None = None) -> str:
    furniture = _page_furniture(tree)
    drop_standfirst_headings(tree)
    prune_boilerplate(tree)
    main = _trafilatura_text(tree, url)
    if len(main) * RECHECK_RATIO < _paragraph_chars(tree):
        alternative = _readability_text(tree)
        if not main or (len(alternative) > REPLACE_RATIO * len(main)
                        and containment(main, alternative) >= REPLACE_CONTAINMENT):
            main = alternative
    return "\n\n".join(drop_leading_furniture(tidy_lines(main), furniture))


def extract_text(html: str, url: str | None = None) -> str:
    """The article's main text, paragraphs separated by blank lines ('' when there is none)."""
    tree = parse_html(html)
    if tree is None:
        return ""
    return extract_from_tree(tree, url)
