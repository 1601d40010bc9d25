"""Leftover markup in a cleaned text: tags that still structure it, not tags or '<' that its prose mentions.

An article about HTML ("the <p> element", "a quoted <br>"), a maths article ("a < b", "x<y") and a
leftover `<div class="x">` or `</p><p>` all hold '<'. Tag-like spans are read as HTML's tokenizer reads
them ('<' or '</' then an element name, up to '>', on one line; comments and declarations), and only
names of HTML elements (lxml's list) written in lower or upper case count: `<Main Street>` or `<Time Out>`,
titles of works as Korean and Japanese pages bracket them, are prose. A tag is then taken for leftover
markup when it shows itself doing a tag's work rather than being talked about:

- it carries an attribute value (`class="x"`, `href=...`): prose names a tag, markup configures it;
- it stands next to another tag, with only whitespace between (`</p><p>`, `</div>\\n<div>`);
- it opens or closes a line of text (`<p>A paragraph`, `...end.</p>`, `<div>` alone): it wraps the text;
- it is a script or style element with its end tag (code between them, not prose);
- comments and declarations (`<!-- ad slot -->`, `<!DOCTYPE html>`) are markup wherever they are.

A bare tag inside a sentence (`use <br> for a line break`, `between <p> and </p>`) is a mention.
"""

from __future__ import annotations

import re

from lxml.html.defs import tags as HTML_ELEMENTS

# HTML's tokenizer: '<' then an ASCII letter opens a start tag, '</' then a letter an end tag; the tag
# runs to the next '>'. ('a < b' and '3 <4' are text.) One line at most, with no '<' inside.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)([^<>\n]*)>")
_COMMENT_OR_DECLARATION = re.compile(r"<!--.*?-->|<!\[CDATA\[|<!doctype\b[^<>\n]*>", re.IGNORECASE | re.DOTALL)
_ATTRIBUTE_VALUE = re.compile(r"""[^\s"'=<>/]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+)""")
_CODE_ELEMENTS = frozenset({"script", "style"})
_ELEMENTS = frozenset(HTML_ELEMENTS)


def leftover_markup(text: str) -> str | None:
    """The first piece of leftover markup in `text` and why it is taken for one; None when there is none."""
    if "<" not in text:
        return None
    if match := _COMMENT_OR_DECLARATION.search(text):
        return f"{_shown(match.group())}: a comment or declaration"
    tags = [m for m in _TAG.finditer(text) if _is_element_name(m.group(2))]
    previous_end = -1
    for index, tag in enumerate(tags):
        closing, name, rest = tag.group(1), tag.group(2).lower(), tag.group(3)
        if not closing and _ATTRIBUTE_VALUE.search(rest):
            return f"{_shown(tag.group())}: a tag with attribute values"
        if previous_end >= 0 and not text[previous_end:tag.start()].strip():
            return f"{_shown(text[tags[index - 1].start():tag.end()])}: tags next to each other"
        if _opens_or_closes_line(text, tag):
            return f"{_shown(tag.group())}: a tag opening or closing a line of text"
        if not closing and name in _CODE_ELEMENTS and re.search(f"</{name}\\s*>", text[tag.end():], re.IGNORECASE):
            return f"{_shown(tag.group())}: a {name} element with its end tag"
        previous_end = tag.end()
    return None


def has_markup(text: str) -> bool:
    """Whether markup is left in the text (see `leftover_markup`)."""
    return leftover_markup(text) is not None


def _is_element_name(name: str) -> bool:
    return name.lower() in _ELEMENTS and (name.islower() or name.isupper())


def _opens_or_closes_line(text: str, tag: re.Match[str]) -> bool:
    """A tag with nothing but whitespace between it and its line's start or end (or alone on its line)."""
    line_start = text.rfind("\n", 0, tag.start()) + 1
    line_end = text.find("\n", tag.end())
    line_end = len(text) if line_end < 0 else line_end
    before, after = text[line_start:tag.start()], text[tag.end():line_end]
    return not before.strip() or not after.strip()


def _shown(snippet: str, limit: int = 60) -> str:
    snippet = " ".join(snippet.split())
    return snippet if len(snippet) <= limit else snippet[: limit - 1] + "…"
