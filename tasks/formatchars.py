"""Joiners and bidi marks that extraction drops, put back where the page had them.

trafilatura removes every non-printable character from the text it extracts, and Unicode's format
characters count as such: the zero-width non-joiner and joiner (ZWNJ, ZWJ) that spell Persian, Urdu and
Indic words and join emoji, and the bidi marks, embeddings and isolates (LRM, RLM, LRE ... PDF,
LRI ... PDI) that order right-to-left text with numbers and Latin words in it. "می‌خواهم" comes out as
"میخواهم". The page still has them: each word it writes with one is looked up by its spelling without
them, and given back its own spelling, unless the page also writes that bare spelling (then which one a
word of the text was cannot be told, and it stays as extracted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_FORMAT = re.compile("[\u200c-\u200f\u202a-\u202e\u2066-\u2069]")
# The same characters in the page's source, raw or as character references: no lookup for pages without.
_IN_SOURCE = re.compile(
    "[\u200c-\u200f\u202a-\u202e\u2066-\u2069]|&(?:zwn?j|lrm|rlm);|"
    "&#(?:x0*(?:200[c-f]|202[a-e]|206[6-9])|0*(?:820[4-7]|823[4-8]|829[4-7]));", re.IGNORECASE)
_WORD = re.compile(r"\S+")


def may_hold_format_chars(html: str) -> bool:
    """Whether a page's source holds joiners or bidi controls, written out or as references."""
    return _IN_SOURCE.search(html) is not None


def spelled_words(texts: Iterable[str]) -> dict[str, str]:
    """Words the texts write with joiners or bidi controls, by their spelling without them; a spelling the
    texts also use bare, or with other controls, is left out."""
    spelled: dict[str, str] = {}
    ambiguous: set[str] = set()
    bare_words: set[str] = set()
    for text in texts:
        for word in _WORD.findall(text):
            if not _FORMAT.search(word):
                bare_words.add(word)
                continue
            bare = _FORMAT.sub("", word)
            if bare and spelled.setdefault(bare, word) != word:
                ambiguous.add(bare)
    return {bare: word for bare, word in spelled.items() if bare not in ambiguous and bare not in bare_words}


def restore_format_chars(text: str, spelled: dict[str, str]) -> str:
    """`text` with each word found in `spelled` written as the page wrote it."""
    if not spelled:
        return text
    return _WORD.sub(lambda match: spelled.get(match.group(), match.group()), text)
