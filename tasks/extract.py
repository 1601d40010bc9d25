"""Main-text extraction from an HTML page: parse once, prune boilerplate blocks, extract, cross-check, tidy,
and never return much less than plain trafilatura would.

1. The page is parsed once with lxml (broken markup is repaired by the parser).
2. Boilerplate blocks are pruned by what they are (captions, forms, buttons; navigation, asides, footers) and
   by what their class or id says they are (comments, related stories, share boxes, cookie banners, ads);
   a block holding a large part of the page's text is never pruned, whatever its name. These prunings
   change no score on the dev corpora: they spare trafilatura walking blocks it would drop anyway.
3. trafilatura (precision-oriented, fast mode) extracts the main text.
4. Cross-check: when trafilatura kept much less than the page's paragraph text, readability-lxml extracts
   too, and its text replaces trafilatura's when it contains it and is much longer (article bodies split
   by ads or "read also" boxes, where trafilatura keeps only the first part).
5. Recovery: a block trafilatura dropped comes back in place when it sits beside a block it kept and is
   prose, not links (a heading over kept text, a block between two kept ones, a long paragraph): precision
   mode drops such single blocks inside an article (a question heading, a lead paragraph). Prose lying loose
   in a container beside its blocks (a lead written straight into a <div>) counts as a block here; a link to
   the page itself (a permalinked title) or one whose text is its own address (a cited URL) counts as text,
   and a block right after a kept one that ends in a colon comes back whatever its length (it was announced).
6. Boilerplate lines ("Comments are closed", "Sign up for ...", "Share this story") are dropped, and a
   trailing comment section is cut at its heading ("12 thoughts on ...").
7. Safety net against our own rules: when the text kept is short beside the page's text outside
   navigation, footers and links, or beside the paragraph text our pruning removed, plain trafilatura (its
   default mode, on the page as served) extracts too, and wins when ours is under half its length and its
   text is not mostly links. An empty or near-empty result is therefore one both extractors agree on,
   never ours alone.

Every rule can be switched off through `Rules`: benchmarks/extraction.py scores each rule's contribution,
and a leave-one-site-out choice among them, on both dev corpora.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import re
from collections import Counter
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html
import readability.readability
import trafilatura
from readability import Document as ReadabilityDocument
from readability.cleaners import html_cleaner as readability_cleaner
from readability.readability import REGEXES as READABILITY_REGEXES
from trafilatura.settings import Extractor
from trafilatura.utils import DOCTYPE_TAG, FAULTY_HTML, INVALID_XML_CHARS, decode_file, is_dubious_html

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


@dataclasses.dataclass(frozen=True, slots=True)
class Rules:
    """The extraction's rules, each of which can be switched off to measure what it earns."""

    chrome: bool = True  # nav, aside, footer and menu leave the tree before extraction
    named_blocks: bool = True  # blocks whose class/id names boilerplate leave the tree
    precision: bool = True  # trafilatura's precision mode on the pruned tree
    readability: bool = True  # readability's longer text replaces a trafilatura text it contains
    tidy: bool = True  # boilerplate lines and a trailing comment section are dropped
    furniture: bool = True  # leading lines repeating the headline are dropped
    recover: bool = True  # prose blocks trafilatura dropped beside blocks it kept come back
    loose_text: bool = True  # for the recovery, prose lying loose in a container (beside its blocks) is a block
    # For the recovery, a link to the page itself (a permalinked title) or one whose text is its own address
    # (a cited URL) is text, not a link away.
    own_links: bool = True
    colon: bool = True  # for the recovery, a block after a kept block ending in a colon continues it
    # Safety net: plain trafilatura wins when our text is under `net_ratio` of its length (0: no net). It is
    # consulted only when it could: when ours is under `net_ratio` of the page's text outside navigation,
    # footers and links, which bounds what trafilatura keeps.
    net_ratio: float = 0.5


DEFAULT_RULES = Rules()
# The net runs plain trafilatura (its default mode, fallbacks and all: the costliest step of a page) only when
# ours is under `net_ratio` of (a) this share of the text outside navigation, footers and links left after
# pruning, or (b) the paragraph text our pruning removed (a template whose article sits in blocks named like
# boilerplate). On the dev corpora every page the net replaced had ours under 33 % of (a); the share halves
# the pages where plain trafilatura runs on the AEB dev pages.
NET_TRIGGER_SHARE = 0.7
# Plain trafilatura's text is no body when most of it is the text of links (an index or list page).
MAX_NET_LINK_SHARE = 0.5
# Recovery: a block trafilatura dropped comes back when it sits beside a block it kept and is prose: a
# heading over kept text, a block between two kept ones, or a long paragraph (at least RECOVER_PROSE_CHARS),
# each with at most RECOVER_MAX_LINK_SHARE of its text in links and at least RECOVER_MIN_CHARS characters.
RECOVER_PROSE_CHARS = 100
RECOVER_MAX_LINK_SHARE = 0.5
RECOVER_MIN_CHARS = 10
_RECOVER_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "dd", "dt")
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))

# Class/id tokens (delimited by whitespace, '-' or '_') that name a boilerplate block; matched against the
# lowercased value (a case-sensitive pattern is twice as fast as an IGNORECASE one).
_BOILERPLATE_NAME = re.compile(
    r"(?<![^\s_-])(?:comments?|comment-list|respond|disqus|related|recommend\w*|more-stories|most-read|"
    r"popular|trending|newsletter|signup|subscribe|subscription|share|sharing|social|cookie\w*|consent|"
    r"gdpr|advert\w*|ads?|promo\w*|sponsor\w*|outbrain|taboola|breadcrumbs?|author-bio|tags|tag-list|"
    r"paywall|banner)(?![^\s_-])"
)


def is_boilerplate_name(name: str) -> bool:
    """Whether a class/id value names a boilerplate block ('share-tools', 'cookie_banner', 'most-read')."""
    return _BOILERPLATE_NAME.search(name.lower()) is not None


def _boilerplate_named(tree: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """Elements of the body whose class or id names boilerplate, in document order (article and main
    excepted). One walk over the body; each distinct class/id value is tested once per page."""
    body = tree.find("body")
    if body is None:
        return []
    verdicts: dict[str, bool] = {}
    named = []
    for element in body.iterdescendants(lxml.etree.Element):
        for name in (element.get("class"), element.get("id")):
            if not name:
                continue
            verdict = verdicts.get(name)
            if verdict is None:
                verdict = verdicts[name] = is_boilerplate_name(name)
            if verdict:
                if element.tag not in ("article", "main"):
                    named.append(element)
                break
    return named


# Never text, and dropped by every extractor: gone before the tree is copied and walked (JSON-LD stays, it
# tells trafilatura about forum pages).
_NEVER_TEXT = ("script", "style", "svg", "link", "meta", "title", "base")
_ALWAYS_PRUNED = ("figcaption", "form", "button", "noscript", "iframe", "template", "dialog")
_CHROME = ("nav", "aside", "footer", "menu")

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


# trafilatura's parser settings (HTML comments and processing instructions dropped: a comment would
# otherwise cut the text that follows it inside a paragraph), with a C-level element class lookup: every
# element is a plain HtmlElement, so lxml never calls back into Python to pick a class for an element
# (lxml.html's default lookup does that for every element proxy, some 5 % of the extraction time).
_PARSER = lxml.html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                               remove_comments=True, remove_pis=True)
_PARSER.set_element_class_lookup(lxml.etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment, pi=lxml.html.HtmlProcessingInstruction,
    entity=lxml.html.HtmlEntity))


def parse_html(html: str | bytes) -> lxml.html.HtmlElement | None:
    """The page as an lxml tree, or None when there is nothing parseable.

    What trafilatura's loader does (decoding bytes, removing characters libxml2 chokes on, the doctype
    and self-closing <html/> repairs, bytes as a fallback), with the parser above. The page is handed to
    libxml2 as UTF-8 bytes (its own input encoding: a str is converted anyway), and the characters XML
    forbids are looked for in those bytes (C-speed) before a regex removes them from the text.
    """
    if isinstance(html, bytes):
        html = decode_file(html)
    if not isinstance(html, str) or not html.strip():
        return None
    beginning = html[:50].lower()
    html = _repair_tags(html, beginning)
    data = html.encode("utf-8", "surrogatepass")
    if _has_invalid_xml_chars(data):
        html = INVALID_XML_CHARS.sub("", html)
        data = html.encode("utf-8", "surrogatepass")
    tree = _parse_bytes(data)
    if tree is None or not len(tree):
        try:
            tree = lxml.html.fromstring(html, parser=_PARSER)
        except (lxml.etree.ParserError, ValueError, TypeError):
            tree = None
    if tree is None or not len(tree):
        return None
    if is_dubious_html(beginning) and len(tree) < 2:
        return None  # a fragment or another kind of text, not a page
    return tree


# C0 control characters XML forbids (tab, newline and carriage return allowed): in UTF-8 they are single bytes,
# never part of a multi-byte sequence; U+FFFE and U+FFFF are the two 3-byte sequences below.
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))
_NONCHARACTERS = ("\ufffe".encode(), "\uffff".encode())


def _has_invalid_xml_chars(data: bytes) -> bool:
    return (len(data.translate(None, _CONTROL_BYTES)) != len(data)
            or any(sequence in data for sequence in _NONCHARACTERS))


def _repair_tags(html: str, beginning: str) -> str:
    """trafilatura's repairs for libxml2: a doctype closed like an XML tag, a self-closing <html/>."""
    if "doctype" in beginning:
        firstline, _, rest = html.partition("\n")
        html = DOCTYPE_TAG.sub("", firstline, count=1) + "\n" + rest
    for line in html[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            html = FAULTY_HTML.sub(r"\1>", html, count=1)
            break
    return html


def _parse_bytes(data: bytes) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.fromstring(data, parser=_PARSER)
    except (lxml.etree.ParserError, ValueError, TypeError):
        return None


def _paragraph_chars(tree: lxml.html.HtmlElement) -> int:
    return sum(len(p.text_content()) for p in tree.iter("p"))


def drop_never_text(tree: lxml.html.HtmlElement) -> None:
    """Scripts, styles and the like leave the tree (JSON-LD stays: it tells trafilatura about forum pages)."""
    for element in list(tree.iter(*_NEVER_TEXT)):
        if element.tag != "script" or element.get("type") != "application/ld+json":
            _drop(element)


def _folded_chars(element: lxml.html.HtmlElement) -> int:
    return len(" ".join(element.text_content().split()))


def text_outside_links(tree: lxml.html.HtmlElement) -> int:
    """Characters of the page's text outside links (whitespace folded)."""
    body = tree.find("body")
    root = tree if body is None else body
    return _folded_chars(root) - sum(_folded_chars(link) for link in root.iter("a"))


def prune_boilerplate(tree: lxml.html.HtmlElement, rules: Rules = DEFAULT_RULES) -> lxml.html.HtmlElement:
    """Remove boilerplate blocks in place (see the module docstring) and return the tree."""
    drop_never_text(tree)
    _prune_blocks(tree, rules)
    return tree


def _prune_blocks(tree: lxml.html.HtmlElement, rules: Rules) -> tuple[int, int]:
    """`prune_boilerplate` on a tree whose scripts and styles are gone already. Returns the paragraph text
    (characters) of the navigation and named blocks it removed, and the paragraph text left (kept up to date
    as blocks go rather than measured again over the whole page)."""
    for element in list(tree.iter(*_ALWAYS_PRUNED)):
        _drop(element)
    removed = 0
    left = _paragraph_chars(tree)

    def drop(element: lxml.html.HtmlElement, chars: int, paragraphs_around: int) -> None:
        nonlocal removed, left
        removed += chars
        # Its paragraphs go, and its text leaves every paragraph it sits in (its tail stays).
        left -= chars + (len(element.text_content()) * paragraphs_around if paragraphs_around else 0)
        _drop(element)

    # Navigation, asides and footers trafilatura deletes too, but only after running its XPath lists over
    # them (a mega-menu is most of a big page's elements): gone first, unless one holds much of the text.
    if rules.chrome:
        total = left or 1
        for element in list(tree.iter(*_CHROME)):
            around = _paragraphs_around(element, tree)
            if around is not None and (chars := _paragraph_chars(element)) <= MAX_PRUNED_SHARE * total:
                drop(element, chars, around)
    if rules.named_blocks:
        total = left or 1
        for element in _boilerplate_named(tree):
            around = _paragraphs_around(element, tree)
            if around is None:
                continue  # inside a block removed already
            chars = _paragraph_chars(element)
            if chars > MAX_PRUNED_SHARE * total:
                continue
            drop(element, chars, around)
    return removed, left


def _paragraphs_around(element: lxml.html.HtmlElement, root: lxml.html.HtmlElement) -> int | None:
    """How many paragraphs `element` sits in, or None when it is no longer in `root`'s tree (inside a block
    dropped already)."""
    paragraphs = 0
    for ancestor in element.iterancestors():
        if ancestor is root:
            return paragraphs
        if ancestor.tag == "p":
            paragraphs += 1
    return None


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


@functools.cache
def _extractor(precision: bool, fast: bool) -> Extractor:
    """trafilatura's options for one mode, built once: building them per call (reading its config, formatting
    today's date for the metadata it is not asked for) was 3 % of its extraction time."""
    # deduplicate=False: trafilatura's dedup cache is process-wide, so it would cut paragraphs of one
    # page because another page had them (copies must reach the dedupe stage intact).
    return Extractor(output_format="txt", precision=precision, fast=fast, comments=False, tables=True,
                     images=False, dedup=False, with_metadata=False)


def _trafilatura_text(tree: lxml.html.HtmlElement, url: str | None, *, precision: bool, fast: bool) -> str:
    options = copy.copy(_extractor(precision, fast))  # a copy: the page's URL is set on it
    options.url = options.source = url
    return trafilatura.extract(tree, options=options) or ""


_READABILITY_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td")


_LONG_SPACE = re.compile(r"\s{255,}")
_NEWLINE_SPACE = re.compile(r"\s*\n\s*")
_TAB_SPACES = re.compile(r"\t|[ \t]{2,}")


def _readability_clean(text: str) -> str:
    """readability's `clean` (its text measure, called for every candidate block: a third of its time), the
    same result: its patterns compiled once, and not run on a text none of them can match (no newline, no
    tab, no two spaces in a row: the text is only stripped)."""
    if "\n" not in text and "\t" not in text and "  " not in text:
        return text.strip()
    text = _LONG_SPACE.sub(" " * 255, text)
    text = _NEWLINE_SPACE.sub("\n", text)
    return _TAB_SPACES.sub(" ", text).strip()


readability.readability.clean = _readability_clean


class _Readability(ReadabilityDocument):
    """readability-lxml on a tree parsed here, without a copy of our own (its cleaner works on a copy anyway)
    and without making links absolute (on pages with a <base href> it rewrote every link; only text is used)."""

    def _parse(self, input: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
        for element in input.xpath("//*[@hidden]"):
            element.drop_tree()
        for element in input.xpath("//*[@style]"):
            if READABILITY_REGEXES["displayNoneRe"].search(element.get("style")):
                element.drop_tree()
        # A cleaned copy: readability mutates it, and a second (lenient) pass starts again from the input.
        return readability_cleaner.clean_html(input)


def _readability_text(tree: lxml.html.HtmlElement) -> str:
    """readability's text of the page. It drops hidden blocks from `tree` (its cleaned copies take the rest)."""
    try:
        summary = _Readability(tree).summary(html_partial=True)
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


def _block_text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


_INLINE = frozenset(("a", "abbr", "b", "bdi", "bdo", "br", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
                     "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "wbr"))


# Elements that hold blocks and may hold loose text beside them.
_CONTAINERS = ("body", "div", "section", "article", "main", "header", "center", "td", "th", "details", "figure")


def wrap_loose_text(tree: lxml.html.HtmlElement) -> None:
    """Runs of prose (at least RECOVER_PROSE_CHARS characters) lying loose in a container beside its blocks
    (text and inline elements between two <div>s) become paragraphs, so that the recovery sees them as blocks."""
    body = tree.find("body")
    for container in list((tree if body is None else body).iter(*_CONTAINERS)):
        children = list(container)
        if not any(child.tag not in _INLINE for child in children if isinstance(child.tag, str)):
            continue  # a text block itself, not a container of blocks
        run: list[lxml.html.HtmlElement] = []
        lead, holder = container.text, None  # holder: the block whose tail starts the run (None: the container)
        for child in [*children, None]:
            if child is not None and (not isinstance(child.tag, str) or child.tag in _INLINE):
                run.append(child)
                continue
            text = (lead or "") + "".join(
                (element.text_content() if isinstance(element.tag, str) else "") + (element.tail or "")
                for element in run)
            if len(" ".join(text.split())) >= RECOVER_PROSE_CHARS:
                paragraph = container.makeelement("p", {})
                paragraph.text = lead
                for element in run:
                    paragraph.append(element)
                if holder is None:
                    container.text = None
                    container.insert(0, paragraph)
                else:
                    holder.tail = None
                    holder.addnext(paragraph)
            if child is None:
                break
            run, lead, holder = [], child.tail, child


def _normal_address(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return (parts.netloc.lower().removeprefix("www."), parts.path.rstrip("/"), parts.query)


def is_own_link(link: lxml.html.HtmlElement, page_url: str | None) -> bool:
    """Whether a link is part of the text rather than a way elsewhere: its text is its own address (a cited
    URL), or it points to the page itself (a title permalinked to its own page)."""
    href = (link.get("href") or "").strip()
    if not href or href.startswith("#"):
        return False
    text = " ".join(link.text_content().split())
    if text and text.rstrip("/") == href.rstrip("/"):
        return True
    if not page_url:
        return False
    try:
        return _normal_address(urljoin(page_url, href)) == _normal_address(page_url)
    except ValueError:
        return False


def recover_dropped_blocks(tree: lxml.html.HtmlElement, lines: list[str], page_url: str | None = None,
                           rules: Rules = DEFAULT_RULES) -> list[str]:
    """`lines` (an extraction of `tree`) with the prose blocks it dropped from beside blocks it kept put back
    in place: a heading over a kept block, a block between two kept ones, a long paragraph next to a kept one
    (trafilatura's precision mode drops such blocks one at a time: a question heading, a lead paragraph).
    Link lines never come back. Reads no labels: only the tree and the text kept."""
    if not lines:
        return lines
    # Compared by their word tokens: trafilatura rewrites punctuation, spacing and format characters.
    folded_lines = [_fold(line) for line in lines]
    kept_text = " ".join(folded_lines)
    texts: dict[lxml.html.HtmlElement, str] = {}

    def text_of(element: lxml.html.HtmlElement) -> str:
        text = texts.get(element)
        if text is None:
            text = texts[element] = _fold(element.text_content())
        return text

    def neighbour(element: lxml.html.HtmlElement, forward: bool) -> lxml.html.HtmlElement | None:
        sibling = element.getnext() if forward else element.getprevious()
        while sibling is not None and not (isinstance(sibling.tag, str) and text_of(sibling)):
            sibling = sibling.getnext() if forward else sibling.getprevious()
        return sibling

    def kept(element: lxml.html.HtmlElement | None) -> bool:
        return element is not None and element.tag in _RECOVER_BLOCKS and text_of(element) in kept_text

    recovered: list[tuple[str | None, str | None, str]] = []
    for element in tree.iter(*_RECOVER_BLOCKS):
        text = text_of(element)
        if len(text) < RECOVER_MIN_CHARS or text in kept_text:
            continue
        if any(ancestor.tag in _RECOVER_BLOCKS for ancestor in element.iterancestors()):
            continue  # nested block: the outer one decides
        before, after = neighbour(element, False), neighbour(element, True)
        kept_before, kept_after = kept(before), kept(after)
        if not (kept_before or kept_after):
            continue
        written = _block_text(element)
        link_chars = sum(len(_block_text(link)) for link in element.iter("a")
                         if not (rules.own_links and is_own_link(link, page_url)))
        if link_chars > RECOVER_MAX_LINK_SHARE * len(written):
            continue
        heading = element.tag in _HEADINGS
        announced = rules.colon and kept_before and _block_text(before).endswith((":", "\uff1a"))
        if ((kept_before and kept_after) or (heading and kept_after) or announced
                or (not heading and len(written) >= RECOVER_PROSE_CHARS)):
            recovered.append((text_of(before) if kept_before else None, text_of(after) if kept_after else None,
                              written, text))
    if not recovered:
        return lines
    result, keys = list(lines), folded_lines
    for before_text, after_text, written, key in recovered:
        at = None
        if before_text is not None:
            at = next((i + 1 for i, line in enumerate(keys) if before_text in line), None)
        if at is None and after_text is not None:
            at = next((i for i, line in enumerate(keys) if after_text in line), None)
        at = len(result) if at is None else at
        result.insert(at, written)
        keys.insert(at, key)
    return result


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


def _fold(text: str) -> str:
    return " ".join(_TOKEN.findall(text.casefold()))


def drop_leading_furniture(lines: list[str], furniture: set[str]) -> list[str]:
    """Lines at the top that repeat the headline or the description (a standfirst), while body follows."""
    while len(lines) > 1 and _fold(lines[0]) in furniture:
        lines = lines[1:]
    return lines


def extract_from_tree(tree: lxml.html.HtmlElement, url: str | None = None, html: str | bytes | None = None,
                      rules: Rules = DEFAULT_RULES) -> str:
    """The main text of a parsed page (pruned in place). `html` is the page the tree was parsed from: the
    safety net parses it again for plain trafilatura (without it, the net works on the tree before pruning)."""
    furniture = _page_furniture(tree) if rules.furniture else set()
    drop_never_text(tree)
    # The safety net reads the page as served: parsed again from `html`, or a copy taken before pruning.
    original = copy.deepcopy(tree) if html is None and rules.net_ratio > 0 else None
    pruned_chars, paragraph_chars = _prune_blocks(tree, rules)  # scripts and styles went above
    net_bound = text_outside_links(tree) if rules.net_ratio > 0 else 0
    main = _trafilatura_text(tree, url, precision=rules.precision, fast=True)
    recover = rules.recover
    # (trafilatura extracts from a copy: the tree is as pruning left it)
    if rules.readability and len(main) * RECHECK_RATIO < paragraph_chars:
        alternative = _readability_text(tree)
        if not main or (len(alternative) > REPLACE_RATIO * len(main)
                        and containment(main, alternative) >= REPLACE_CONTAINMENT):
            main, recover = alternative, False  # readability's blocks are whole: nothing to recover
    if recover:
        if rules.loose_text:
            wrap_loose_text(tree)
        main = "\n".join(recover_dropped_blocks(tree, _plain_lines(main), url, rules))
    lines = tidy_lines(main) if rules.tidy else _plain_lines(main)
    text = "\n\n".join(drop_leading_furniture(lines, furniture))
    if len(text) < rules.net_ratio * max(NET_TRIGGER_SHARE * net_bound, pruned_chars):
        page = original if original is not None else parse_html(html)
        if page is not None:
            plain = _plain_lines(_trafilatura_text(page, url, precision=False, fast=False))
            if (len(text) < rules.net_ratio * sum(map(len, plain))
                    and link_share(plain, {_fold(a.text_content()) for a in page.iter("a")}) <= MAX_NET_LINK_SHARE):
                return "\n\n".join(plain)
    return text


def link_share(lines: list[str], link_texts: set[str]) -> float:
    """Share of the characters of `lines` in lines that are a link's whole text (a list of links, not a body)."""
    total = sum(map(len, lines)) or 1
    return sum(len(line) for line in lines if _fold(line) in link_texts) / total


def _plain_lines(text: str) -> list[str]:
    return [folded for line in text.split("\n") if (folded := " ".join(line.split()))]


def extract_text(html: str | bytes, url: str | None = None, rules: Rules = DEFAULT_RULES) -> str:
    """The article's main text, paragraphs separated by blank lines ('' when there is none)."""
    tree = parse_html(html)
    if tree is None:
        return ""
    return extract_from_tree(tree, url, html, rules)
